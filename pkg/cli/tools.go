package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/spf13/cobra"
)

// ToolsOptions are the inputs of 'ncmcp tools list' and 'ncmcp tools call'.
type ToolsOptions struct {
	g *globalOptions

	JSON bool
	// NoLogin fails instead of logging in (in the browser) when the
	// server wants a login or more scopes.
	NoLogin bool
	// Tool and Args are the tool to call and its arguments.
	Tool string
	Args map[string]any
}

func newToolsCmd(g *globalOptions, listF, callF func(context.Context, *ToolsOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "List and call the MCP server's tools as the logged-in account",
		Long: `Talk MCP to the server as the selected account: list its tools or call one.
A token about to expire is refreshed first. When the server refuses the
token, ncmcp refreshes it, or logs in (in the browser) if that does not
help; when it asks for more scopes (403 insufficient_scope), ncmcp logs in
again for them, at most a few times. --no-login fails instead. A server
that needs no login is called without a token.`,
	}
	opts := &ToolsOptions{g: g}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the server's tools",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listF != nil {
				return listF(cmd.Context(), opts)
			}
			return runToolsList(cmd.Context(), opts)
		},
	}
	var argFlags []string
	call := &cobra.Command{
		Use:   "call TOOL [ARGUMENTS_JSON]",
		Short: "Call one of the server's tools and print its result",
		Long: `Call a tool with the arguments of a JSON object, or of --arg name=value
(values that are JSON stay JSON: --arg a=5 is a number, --arg q=notes a
string), and print the text of its result (--json: the whole result). A
result the tool flags as an error exits 1.`,
		Example: `  ncmcp tools call nc_auth_check_status
  ncmcp tools call add_numbers '{"a": 5, "b": 3}'
  ncmcp tools call nc_notes_search --arg query=groceries --json`,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tool, opts.Args = args[0], map[string]any{}
			if len(args) == 2 {
				if err := json.Unmarshal([]byte(args[1]), &opts.Args); err != nil || opts.Args == nil {
					return usageErrorf(`pass the arguments as a JSON object, e.g. '{"a": 5}'`, "invalid arguments %q", args[1])
				}
			}
			for _, a := range argFlags {
				name, value, ok := strings.Cut(a, "=")
				if !ok || name == "" {
					return usageErrorf("use --arg name=value", "invalid --arg %q", a)
				}
				var v any
				if json.Unmarshal([]byte(value), &v) != nil {
					v = value
				}
				opts.Args[name] = v
			}
			if callF != nil {
				return callF(cmd.Context(), opts)
			}
			return runToolsCall(cmd.Context(), opts)
		},
	}
	call.Flags().StringArrayVar(&argFlags, "arg", nil, "an argument as name=value (repeatable)")
	for _, c := range []*cobra.Command{list, call} {
		c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON on stdout")
		c.Flags().BoolVar(&opts.NoLogin, "no-login", false, "fail instead of logging in when the server wants a login or more scopes")
	}
	cmd.AddCommand(list, call)
	return cmd
}

// toolsSession connects to the selected server as its selected account,
// or without a token when there is none yet.
func toolsSession(ctx context.Context, opts *ToolsOptions) (*mcpclient.Session, error) {
	g := opts.g
	st, srv, acct, err := g.mcpTarget()
	if err != nil {
		return nil, err
	}
	return connectMCP(ctx, g, st, srv, acct, loginPolicy{Allowed: !opts.NoLogin, NoBrowser: envBool(g.deps.Getenv("NCMCP_NO_BROWSER"))}, nil)
}

// ToolJSON is one tool in the output of 'ncmcp tools list --json'.
type ToolJSON struct {
	Name        string   `json:"name"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description,omitempty"`
	Arguments   []string `json:"arguments"`
}

func runToolsList(ctx context.Context, opts *ToolsOptions) error {
	sess, err := toolsSession(ctx, opts)
	if err != nil {
		return err
	}
	defer sess.Close()
	tools, err := sess.Tools(ctx)
	if err != nil {
		return toolFailure(err, opts.g.Server)
	}
	out := opts.g.deps.Stdout
	if opts.JSON {
		list := make([]ToolJSON, 0, len(tools))
		for _, t := range tools {
			list = append(list, ToolJSON{Name: t.Name, Title: t.Title, Description: t.Description, Arguments: append([]string{}, t.Args...)})
		}
		return printJSON(out, list)
	}
	for _, t := range tools {
		about := t.Title
		if about == "" {
			about, _, _ = strings.Cut(strings.TrimSpace(t.Description), "\n")
		}
		fmt.Fprintf(out, "%s\t%s\n", t.Name, about)
	}
	return nil
}

// CallJSON is the output of 'ncmcp tools call --json'.
type CallJSON struct {
	Text       []string `json:"text"`
	Structured any      `json:"structured,omitempty"`
	IsError    bool     `json:"is_error"`
}

func runToolsCall(ctx context.Context, opts *ToolsOptions) error {
	sess, err := toolsSession(ctx, opts)
	if err != nil {
		return err
	}
	defer sess.Close()
	res, err := sess.CallRaw(ctx, opts.Tool, opts.Args)
	if err != nil {
		return toolFailure(err, opts.g.Server)
	}
	out := opts.g.deps.Stdout
	if opts.JSON {
		j := CallJSON{Text: res.Text, Structured: res.Structured, IsError: res.IsError}
		if j.Text == nil {
			j.Text = []string{}
		}
		if err := printJSON(out, j); err != nil {
			return err
		}
	} else {
		for _, t := range res.Text {
			fmt.Fprintln(out, t)
		}
		if len(res.Text) == 0 && res.Structured != nil {
			if err := printJSON(out, res.Structured); err != nil {
				return err
			}
		}
	}
	if res.IsError {
		return failure(fmt.Errorf("the tool %s answered with an error", opts.Tool), "this is the server's answer: see its text above")
	}
	return nil
}
