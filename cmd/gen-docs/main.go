// Command gen-docs regenerates the files derived from ncmcp's command tree:
// the shell completions in completions/. Run it from the repository root:
//
//	go run ./cmd/gen-docs
//
// A test fails when the checked-in files are stale.
package main

import (
	"fmt"
	"os"

	"github.com/ncmcp/ncmcp/pkg/cli"
)

func main() {
	if err := cli.WriteCompletions("completions"); err != nil {
		fmt.Fprintln(os.Stderr, "gen-docs:", err)
		os.Exit(1)
	}
}
