package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ncmcp/ncmcp/pkg/mcpclient"
	"github.com/ncmcp/ncmcp/pkg/provision"
	"github.com/ncmcp/ncmcp/pkg/termsafe"
)

// toolElicitor answers a tool's requests for input (MCP elicitation) on
// the terminal: questions on stderr, answers from stdin. A form is asked
// field by field; a page (url mode) is shown with its host and opened
// after a yes, as provisioning does.
type toolElicitor struct {
	g *globalOptions
	// server is the MCP server's URL, to tell pages on its origin.
	server    string
	tool      string
	noBrowser bool

	mu sync.Mutex // one elicitation at a time on the terminal
}

// OnElicit answers one elicitation.
func (t *toolElicitor) OnElicit(ctx context.Context, e mcpclient.Elicitation) (mcpclient.ElicitAction, map[string]any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Mode == "url" {
		return t.page(ctx, e), nil
	}
	if e.Mode != "form" {
		fmt.Fprintf(t.g.deps.Stderr, "The tool %s asked for input in a way ncmcp does not know (%s): declined.\n", termsafe.String(t.tool), termsafe.String(e.Mode))
		return mcpclient.ElicitDecline, nil
	}
	return t.form(ctx, e)
}

// showMessage prints the server's message, indented.
func (t *toolElicitor) showMessage(msg string) {
	msg = strings.TrimSpace(termsafe.Lines(msg))
	if msg == "" {
		return
	}
	for _, l := range strings.Split(msg, "\n") {
		fmt.Fprintf(t.g.deps.Stderr, "  %s\n", l)
	}
}

// form asks whether to answer the form, then for each of its fields.
func (t *toolElicitor) form(ctx context.Context, e mcpclient.Elicitation) (mcpclient.ElicitAction, map[string]any) {
	w := t.g.deps.Stderr
	fmt.Fprintf(w, "\nThe tool %s asks for input:\n", termsafe.String(t.tool))
	t.showMessage(e.Message)
	question := "[a]ccept, [d]ecline or [c]ancel? [a] "
	if len(e.Fields) > 0 {
		question = fmt.Sprintf("[a]ccept and fill in %s, [d]ecline or [c]ancel? [a] ", plural(len(e.Fields), "field"))
	}
	for {
		answer, err := readAnswer(ctx, t.g.deps, question)
		if err != nil {
			return t.gaveUp(err), nil
		}
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "", "a", "accept":
		case "d", "decline":
			fmt.Fprintln(w, "Declined.")
			return mcpclient.ElicitDecline, nil
		case "c", "cancel":
			fmt.Fprintln(w, "Cancelled.")
			return mcpclient.ElicitCancel, nil
		default:
			fmt.Fprintln(w, "Answer a, d or c.")
			continue
		}
		break
	}
	content := map[string]any{}
	for _, f := range e.Fields {
		describeField(w, f)
		prompt := termsafe.String(f.Label()) + fieldHint(f) + ": "
		for {
			answer, err := readAnswer(ctx, t.g.deps, prompt)
			if err != nil {
				return t.gaveUp(err), nil
			}
			v, err := f.Parse(answer)
			if err != nil {
				fmt.Fprintf(w, "  %s; try again (Ctrl-D cancels).\n", termsafe.String(err.Error()))
				continue
			}
			if v != nil {
				content[f.Name] = v
			}
			break
		}
	}
	return mcpclient.ElicitAccept, content
}

// gaveUp answers an elicitation whose questions the user ended (end of
// input) or ncmcp stopped asking (interrupted): cancel.
func (t *toolElicitor) gaveUp(err error) mcpclient.ElicitAction {
	if errors.Is(err, io.EOF) {
		fmt.Fprintln(t.g.deps.Stderr, "\nCancelled.")
	}
	return mcpclient.ElicitCancel
}

// describeField prints a field's description and choices before its
// question.
func describeField(w io.Writer, f mcpclient.Field) {
	if d := strings.TrimSpace(termsafe.String(f.Description)); d != "" {
		fmt.Fprintf(w, "  %s\n", d)
	}
	for i, c := range f.Choices {
		if c.Title != "" && c.Title != c.Value {
			fmt.Fprintf(w, "    %d) %s (%s)\n", i+1, termsafe.String(c.Title), termsafe.String(c.Value))
		} else {
			fmt.Fprintf(w, "    %d) %s\n", i+1, termsafe.String(c.Value))
		}
	}
}

// fieldHint says what a field takes: " (number, 1 to 10, required)",
// " (yes/no, Enter: no)".
func fieldHint(f mcpclient.Field) string {
	var parts []string
	n := len(f.Choices)
	switch {
	case f.Type == "array":
		parts = append(parts, fmt.Sprintf("one or more of 1-%d, comma-separated", n))
	case n > 0:
		parts = append(parts, fmt.Sprintf("1-%d", n))
	case f.Type == "boolean":
		parts = append(parts, "yes/no")
	case f.Type == "number" || f.Type == "integer":
		kind := "number"
		if f.Type == "integer" {
			kind = "whole number"
		}
		switch {
		case f.Minimum != nil && f.Maximum != nil:
			kind += fmt.Sprintf(", %v to %v", *f.Minimum, *f.Maximum)
		case f.Minimum != nil:
			kind += fmt.Sprintf(", at least %v", *f.Minimum)
		case f.Maximum != nil:
			kind += fmt.Sprintf(", at most %v", *f.Maximum)
		}
		parts = append(parts, kind)
	default:
		kind := "text"
		if f.Format != "" {
			kind = termsafe.String(f.Format)
		}
		switch {
		case f.MinLength != nil && f.MaxLength != nil:
			kind += fmt.Sprintf(", %d to %d characters", *f.MinLength, *f.MaxLength)
		case f.MinLength != nil && *f.MinLength > 0:
			kind += fmt.Sprintf(", at least %d characters", *f.MinLength)
		case f.MaxLength != nil:
			kind += fmt.Sprintf(", at most %d characters", *f.MaxLength)
		}
		parts = append(parts, kind)
	}
	switch {
	case f.Default != nil:
		parts = append(parts, "Enter: "+termsafe.String(showValue(f.Default)))
	case f.Required:
		parts = append(parts, "required")
	default:
		parts = append(parts, "Enter: none")
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// showValue shows a field's value as the user would type it.
func showValue(v any) string {
	switch v := v.(type) {
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case []any:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = fmt.Sprint(x)
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprint(v)
}

// page shows a page the server asks the user to open, with its host, and
// opens it after a yes (the consent rules of provisioning: the whole URL
// and its host shown, nothing opened without the user's word).
func (t *toolElicitor) page(ctx context.Context, e mcpclient.Elicitation) mcpclient.ElicitAction {
	w := t.g.deps.Stderr
	p, err := provision.CheckPage(e.URL, t.server, "")
	if err != nil {
		fmt.Fprintf(w, "The tool %s asked to open a page that ncmcp refuses (declined): %s\n", termsafe.String(t.tool), oneLine(err.Error()))
		return mcpclient.ElicitDecline
	}
	where := "another host than the MCP server"
	if p.SameOrigin {
		where = "the MCP server's own origin"
	}
	fmt.Fprintf(w, "\nThe tool %s asks you to open a page:\n", termsafe.String(t.tool))
	t.showMessage(e.Message)
	fmt.Fprintf(w, "\n  %s\n  (on %s, %s)\n\n", termsafe.String(p.URL), termsafe.String(p.Host), where)
	if p.Insecure {
		fmt.Fprintf(w, "warning: %s is plain http to another machine: what you type there crosses the network unencrypted\n", termsafe.String(p.Origin))
	}
	if t.noBrowser {
		yes, err := askYes(ctx, t.g.deps, "Not opened (NCMCP_NO_BROWSER): open it yourself. Accept? [Y/n] ")
		if err != nil {
			return t.gaveUp(err)
		}
		if !yes {
			fmt.Fprintln(w, "Declined.")
			return mcpclient.ElicitDecline
		}
		return mcpclient.ElicitAccept
	}
	yes, err := askYes(ctx, t.g.deps, "Open URL in your browser? [Y/n] ")
	if err != nil {
		return t.gaveUp(err)
	}
	if !yes {
		fmt.Fprintln(w, "Not opened (declined).")
		return mcpclient.ElicitDecline
	}
	if err := t.g.openURL(p.URL); err != nil {
		fmt.Fprintf(w, "warning: could not open a browser (%s): open the URL above yourself\n", oneLine(err.Error()))
	}
	return mcpclient.ElicitAccept
}

// askYes asks a yes/no question with readAnswer; an empty answer is yes,
// any other than y or yes is no. The end of input (Ctrl-D) is an error,
// not a yes.
func askYes(ctx context.Context, d *Deps, question string) (bool, error) {
	answer, err := readAnswer(ctx, d, question)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "", "y", "yes":
		return true, nil
	}
	return false, nil
}

// readAnswer asks a question on stderr and reads one line from stdin. It
// reads byte by byte, so that nothing of the next answer is read ahead;
// io.EOF means the user ended the input (Ctrl-D). It gives up when ctx
// ends.
func readAnswer(ctx context.Context, d *Deps, question string) (string, error) {
	fmt.Fprint(d.Stderr, question)
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		var line []byte
		b := make([]byte, 1)
		for {
			n, err := d.Stdin.Read(b)
			if n == 1 {
				if b[0] == '\n' {
					ch <- answer{line: string(line)}
					return
				}
				if len(line) < 4096 {
					line = append(line, b[0])
				}
			}
			if err != nil {
				if len(line) > 0 && errors.Is(err, io.EOF) {
					err = nil
				}
				ch <- answer{line: string(line), err: err}
				return
			}
		}
	}()
	select {
	case a := <-ch:
		return strings.TrimSuffix(a.line, "\r"), a.err
	case <-ctx.Done():
		fmt.Fprintln(d.Stderr)
		return "", ctx.Err()
	}
}

// plural says "1 field", "3 fields".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
