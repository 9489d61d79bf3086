package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCompletionsUpToDate fails when completions/ no longer matches the
// command tree: run 'go run ./cmd/gen-docs'.
func TestCompletionsUpToDate(t *testing.T) {
	files, err := CompletionFiles()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("..", "..", "completions", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("completions/%s is stale or missing: run 'go run ./cmd/gen-docs'", name)
		}
	}
}
