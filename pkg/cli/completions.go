package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncmcp/ncmcp/pkg/discovery"
	"github.com/ncmcp/ncmcp/pkg/store"
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

// completeServers completes --server with the configured servers.
func (g *globalOptions) completeServers(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	cfg := g.configForCompletion()
	if cfg == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, u := range cfg.ServerURLs() {
		desc := fmt.Sprintf("%d account(s)", len(cfg.Servers[u].Accounts))
		if u == cfg.DefaultServer {
			desc += ", default"
		}
		out = append(out, cobra.CompletionWithDesc(u, desc))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeAccounts completes --account with the accounts of the selected
// server (--server, else the default or only one).
func (g *globalOptions) completeAccounts(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	cfg := g.configForCompletion()
	if cfg == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if s, err := cmd.Flags().GetString("server"); err == nil && s != "" {
		if u, err := discovery.NormalizeServerURL(s); err == nil {
			g.Server = u
		}
	}
	_, srv, err := g.selectServer(cfg)
	if err != nil || srv == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, id := range srv.AccountIDs() {
		a := srv.Accounts[id]
		name := a.Subject
		for _, n := range []string{a.Email, a.Username} {
			if n != "" {
				name = n
			}
		}
		out = append(out, cobra.CompletionWithDesc(name, "sub "+a.Subject))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (g *globalOptions) configForCompletion() *store.Config {
	dir, err := g.configDir()
	if err != nil {
		return nil
	}
	cfg, err := store.LoadConfig(dir)
	if err != nil {
		return nil
	}
	return cfg
}
