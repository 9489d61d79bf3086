package mcpclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// formSchema has a field of each kind, listed out of alphabetical order.
const formSchema = `{"type":"object","properties":{
	"title":{"type":"string","title":"Title","minLength":2,"maxLength":20},
	"priority":{"type":"string","enum":["low","normal","high"],"default":"normal"},
	"size":{"type":"string","oneOf":[{"const":"s","title":"Small"},{"const":"l","title":"Large"}]},
	"count":{"type":"integer","minimum":1,"maximum":10},
	"ratio":{"type":"number"},
	"urgent":{"type":"boolean","default":false},
	"tags":{"type":"array","items":{"type":"string","enum":["home","work"]},"maxItems":2},
	"mail":{"type":"string","format":"email"}
},"required":["title","count"]}`

// TestFormFields: a form elicitation's fields reach OnElicit in the order
// the server listed them (the SDK hands schemas on as maps), with their
// types, choices, bounds and defaults.
func TestFormFields(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
	server.AddTool(&mcp.Tool{Name: "ask", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Mode: "form", Message: "Describe it", RequestedSchema: json.RawMessage(formSchema)})
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(res.Content)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seen Elicitation
	sess, err := Connect(ctx, &http.Client{}, srv.URL, StaticToken("t"), Options{OnElicit: func(_ context.Context, e Elicitation) (ElicitAction, map[string]any) {
		seen = e
		return ElicitAccept, map[string]any{"title": "Groceries", "count": 3.0}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.CallRaw(ctx, "ask", nil)
	if err != nil || len(res.Text) != 1 {
		t.Fatalf("call: %+v, %v", res, err)
	}
	var names []string
	for _, f := range seen.Fields {
		names = append(names, f.Name)
	}
	if want := "title priority size count ratio urgent tags mail"; strings.Join(names, " ") != want {
		t.Errorf("fields in the order %v, want %s", names, want)
	}
	byName := map[string]Field{}
	for _, f := range seen.Fields {
		byName[f.Name] = f
	}
	if f := byName["title"]; f.Title != "Title" || !f.Required || f.Type != "string" || *f.MinLength != 2 || *f.MaxLength != 20 {
		t.Errorf("title: %+v", f)
	}
	if f := byName["priority"]; f.Default != "normal" || !reflect.DeepEqual(f.Choices, []Choice{{Value: "low"}, {Value: "normal"}, {Value: "high"}}) {
		t.Errorf("priority: %+v", f)
	}
	if f := byName["size"]; !reflect.DeepEqual(f.Choices, []Choice{{Value: "s", Title: "Small"}, {Value: "l", Title: "Large"}}) {
		t.Errorf("size: %+v", f)
	}
	if f := byName["tags"]; f.Type != "array" || len(f.Choices) != 2 || *f.MaxItems != 2 {
		t.Errorf("tags: %+v", f)
	}
	var content map[string]any
	if err := json.Unmarshal([]byte(res.Text[0]), &content); err != nil {
		t.Fatal(err)
	}
	// The defaults fill in what the answer leaves out.
	want := map[string]any{"title": "Groceries", "count": 3.0, "priority": "normal", "urgent": false}
	if !reflect.DeepEqual(content, want) {
		t.Errorf("the server got %v, want %v", content, want)
	}
}

// TestFieldParse: answers are read by the field's type, choices and
// bounds; an empty answer is the default, refused for a required field
// without one.
func TestFieldParse(t *testing.T) {
	fields := map[string]Field{}
	for _, f := range formFields(json.RawMessage(formSchema)) {
		fields[f.Name] = f
	}
	tests := []struct {
		field, answer string
		want          any
		bad           bool
	}{
		{"title", "Groceries", "Groceries", false},
		{"title", "x", nil, true},
		{"title", "", nil, true},
		{"priority", "", "normal", false},
		{"priority", "3", "high", false},
		{"priority", "LOW", "low", false},
		{"priority", "urgent", nil, true},
		{"size", "large", "l", false},
		{"size", "s", "s", false},
		{"count", "5", 5.0, false},
		{"count", "5.5", nil, true},
		{"count", "11", nil, true},
		{"count", "", nil, true},
		{"ratio", "0.25", 0.25, false},
		{"ratio", "", nil, false},
		{"ratio", "abc", nil, true},
		{"urgent", "y", true, false},
		{"urgent", "", false, false},
		{"urgent", "maybe", nil, true},
		{"tags", "2, home", []any{"work", "home"}, false},
		{"tags", "home,work,home", nil, true},
		{"mail", "a@example.com", "a@example.com", false},
		{"mail", "not mail", nil, true},
	}
	for _, tt := range tests {
		got, err := fields[tt.field].Parse(tt.answer)
		if (err != nil) != tt.bad || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %q = %#v, %v; want %#v (refused: %v)", tt.field, tt.answer, got, err, tt.want, tt.bad)
		}
	}
}

// TestCloseEndsElicitation: closing the session ends an elicitation that
// still waits for the user (its context ends) instead of waiting for it:
// a call that gave up on it must not hold ncmcp.
func TestCloseEndsElicitation(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "0"}, nil)
	stop := make(chan struct{})
	server.AddTool(&mcp.Tool{Name: "ask", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		// The server waits for the answer until the client has given up.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		_, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Mode: "form", Message: "?", RequestedSchema: json.RawMessage(formSchema)})
		return nil, err
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer srv.Close()
	asked := make(chan struct{})
	ended := make(chan error, 1)
	sess, err := Connect(context.Background(), &http.Client{}, srv.URL, StaticToken("t"), Options{RequestTimeout: 2 * time.Second,
		OnElicit: func(ctx context.Context, _ Elicitation) (ElicitAction, map[string]any) {
			close(asked)
			<-ctx.Done() // the user does not answer
			ended <- ctx.Err()
			return ElicitCancel, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.CallRaw(context.Background(), "ask", nil); err == nil {
		t.Fatal("the call returned without an answer to its elicitation")
	}
	close(stop)
	<-asked
	closed := make(chan error, 1)
	go func() { closed <- sess.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waits for the elicitation after 10s")
	}
	if err := <-ended; err == nil {
		t.Error("the elicitation's context did not end")
	}
}

// TestPropertyOrder: the property names of a schema in document order,
// whatever comes before or after them.
func TestPropertyOrder(t *testing.T) {
	got := propertyOrder([]byte(`{"type":"object","x":{"properties":{"no":1}},"properties":{"b":{"type":"string","properties":{}},"a":{},"c":{"enum":["x"]}},"required":["a"]}`))
	if !reflect.DeepEqual(got, []string{"b", "a", "c"}) {
		t.Errorf("order %v", got)
	}
	if got := propertyOrder([]byte(`[1]`)); got != nil {
		t.Errorf("order of an array %v", got)
	}
}
