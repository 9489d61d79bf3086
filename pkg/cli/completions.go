package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// CompletionFiles returns the shell completion scripts generated from the
// command tree, by file name: ncmcp.bash, _ncmcp (zsh), ncmcp.fish and
// ncmcp.ps1.
func CompletionFiles() (map[string][]byte, error) {
	root := newRootCmd(&Deps{})
	out := map[string][]byte{}
	gens := map[string]func(*bytes.Buffer) error{
		"ncmcp.bash": func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) },
		"_ncmcp":     func(b *bytes.Buffer) error { return root.GenZshCompletion(b) },
		"ncmcp.fish": func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) },
		"ncmcp.ps1":  func(b *bytes.Buffer) error { return root.GenPowerShellCompletionWithDesc(b) },
	}
	for name, gen := range gens {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return nil, fmt.Errorf("generate %s: %w", name, err)
		}
		out[name] = b.Bytes()
	}
	return out, nil
}

// WriteCompletions writes CompletionFiles into dir.
func WriteCompletions(dir string) error {
	files, err := CompletionFiles()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// NewRootCommand returns the whole ncmcp command tree built with default
// dependencies, for generated documentation.
func NewRootCommand() *cobra.Command {
	root := newRootCmd(&Deps{})
	root.DisableAutoGenTag = true
	return root
}
