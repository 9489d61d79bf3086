package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
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
string), and print its result: the text of its text items, and a line of
type and URI or MIME type for each other item ("[image] image/png",
"[resource_link] file:///notes/1.md"); with no text item, its structured
content. --json prints the whole result (the MCP CallToolResult) as the
server sent it: content of every type, structuredContent, isError, _meta.
A result the tool flags as an error exits 1.

A tool may ask for input while it runs (MCP elicitation). On a terminal
(stdin and stderr), ncmcp asks on stderr. A form: first "[a]ccept,
[d]ecline or [c]ancel?" (Enter accepts), then each field in turn, with
its type, its choices (numbered: type the number, the value or its title;
several separated by commas where the field takes several), and its
default, which Enter keeps; yes/no for a boolean. A wrong answer is asked
again; Ctrl-D cancels the form. A page to open: ncmcp shows the whole URL
and its host and asks "Open URL in your browser? [Y/n]"; a yes opens it
and accepts, a no declines (NCMCP_NO_BROWSER=1: ncmcp never opens it and
asks whether to accept). Without a terminal ncmcp declares no elicitation
support, and such tools answer as they do for clients without it.`,
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
// or without a token when there is none yet. With elicit, on a terminal,
// the session answers the tool's elicitations there (toolElicitor).
func toolsSession(ctx context.Context, opts *ToolsOptions, elicit bool) (*mcpclient.Session, error) {
	g, d := opts.g, opts.g.deps
	st, srv, acct, err := g.mcpTarget()
	if err != nil {
		return nil, err
	}
	noBrowser := envBool(d.Getenv("NCMCP_NO_BROWSER"))
	var onElicit func(context.Context, mcpclient.Elicitation) (mcpclient.ElicitAction, map[string]any)
	if elicit && d.StdinIsTerminal != nil && d.StdinIsTerminal() && d.StderrIsTerminal != nil && d.StderrIsTerminal() {
		onElicit = (&toolElicitor{g: g, server: srv.URL, tool: opts.Tool, noBrowser: noBrowser}).OnElicit
	}
	return connectMCP(ctx, g, st, srv, acct, loginPolicy{Allowed: !opts.NoLogin, NoBrowser: noBrowser}, onElicit)
}

// ToolJSON is one tool in the output of 'ncmcp tools list --json'.
type ToolJSON struct {
	Name        string   `json:"name"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description,omitempty"`
	Arguments   []string `json:"arguments"`
	// InputSchema is the tool's input schema as the server sent it.
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

func runToolsList(ctx context.Context, opts *ToolsOptions) error {
	sess, err := toolsSession(ctx, opts, false)
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
			schema := t.InputSchema
			if !json.Valid(schema) {
				schema = nil
			}
			list = append(list, ToolJSON{Name: t.Name, Title: t.Title, Description: t.Description, Arguments: append([]string{}, t.Args...), InputSchema: schema})
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

func runToolsCall(ctx context.Context, opts *ToolsOptions) error {
	sess, err := toolsSession(ctx, opts, true)
	if err != nil {
		return err
	}
	defer sess.Close()
	res, err := sess.CallRaw(ctx, opts.Tool, opts.Args)
	var unknown *mcpclient.UnknownToolError
	if errors.As(err, &unknown) {
		return failure(err, unknownToolHint(opts))
	}
	if err != nil {
		return toolFailure(err, opts.g.Server)
	}
	out := opts.g.deps.Stdout
	if opts.JSON {
		if err := printRawJSON(out, res.Raw); err != nil {
			return err
		}
	} else if err := printResult(out, res); err != nil {
		return err
	}
	if res.UnknownTool {
		return failure(fmt.Errorf("the server has no tool %s (its answer is above)", opts.Tool), unknownToolHint(opts))
	}
	if res.IsError {
		return failure(fmt.Errorf("the tool %s answered with an error", opts.Tool), "this is the server's answer: see its text above")
	}
	return nil
}

// unknownToolHint points to the list of the server's tools.
func unknownToolHint(opts *ToolsOptions) string {
	list := "ncmcp tools list"
	if opts.g.Server != "" {
		list += " --server " + opts.g.Server
	}
	return "'" + list + "' lists the tools the server offers"
}

// printRawJSON prints a JSON document as the server sent it, indented.
func printRawJSON(w io.Writer, raw json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return failure(fmt.Errorf("the server's result is not JSON: %w", err), "")
	}
	b.WriteByte('\n')
	_, err := w.Write(terminalSafeJSON(b.Bytes()))
	return err
}

// terminalSafeJSON escapes the characters that stdout's filter would drop
// (C1 controls, bidirectional overrides): a JSON document holds them only
// in strings, where \uXXXX means the same, so the filter leaves the
// document whole.
func terminalSafeJSON(doc []byte) []byte {
	var out []byte
	for i := 0; i < len(doc); {
		r, size := utf8.DecodeRune(doc[i:])
		if r >= 0x7f && r != utf8.RuneError && termsafe.String(string(r)) == "" {
			if out == nil {
				out = append([]byte(nil), doc[:i]...)
			}
			out = fmt.Appendf(out, "\\u%04x", r)
		} else if out != nil {
			out = append(out, doc[i:i+size]...)
		}
		i += size
	}
	if out == nil {
		return doc
	}
	return out
}

// printResult prints a result for people: the text of its text items, a
// line of type and URI or MIME type for each other item, and with no text
// its structured content.
func printResult(w io.Writer, res *mcpclient.Result) error {
	for _, c := range res.Content {
		switch {
		case c.Type == "text":
			fmt.Fprintln(w, c.Text)
		case c.URI != "":
			fmt.Fprintf(w, "[%s] %s\n", termsafe.String(c.Type), termsafe.String(c.URI))
		case c.MIMEType != "":
			fmt.Fprintf(w, "[%s] %s\n", termsafe.String(c.Type), termsafe.String(c.MIMEType))
		default:
			fmt.Fprintf(w, "[%s]\n", termsafe.String(c.Type))
		}
	}
	if len(res.Text) == 0 && res.Structured != nil {
		// As sent, to the last digit.
		return printRawJSON(w, res.Structured)
	}
	return nil
}
