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
			_, err := fmt.Fprintln(d.Stdout, versionLine(d.Version, d.Commit, d.Date))
			return err
		},
	}
}

// versionLine is what 'ncmcp version' and 'ncmcp --version' print.
func versionLine(version, commit, date string) string {
	return fmt.Sprintf("ncmcp %s (commit %s, built %s)", version, orUnknown(commit), orUnknown(date))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
