package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := g.deps
			_, err := fmt.Fprintf(d.Stdout, "ncmcp %s (commit %s, built %s)\n", d.Version, orUnknown(d.Commit), orUnknown(d.Date))
			return err
		},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
