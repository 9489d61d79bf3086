// Command ncmcp connects people and CI pipelines to a Nextcloud MCP server:
// it logs in with OAuth, keeps the tokens in the OS keyring and prints
// fresh access tokens for scripts.
package main

import (
	"context"
	"os"
	"syscall"

	"github.com/ncmcp/ncmcp/pkg/cli"
	"github.com/ncmcp/ncmcp/pkg/sigctx"
)

// Set by the linker: -X main.version=... -X main.commit=... -X main.date=...
var (
	version = "dev"
	commit  = ""
	date    = ""
)

func main() {
	// SIGTERM is also what Windows' console close sends Go programs;
	// SIGHUP is a closed terminal. The handling starts when a command
	// asks for it (cli.Deps.WatchSignals): a cached 'ncmcp token' does not.
	ctx := sigctx.New(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := cli.Run(ctx, os.Args[1:], cli.Deps{Version: version, Commit: commit, Date: date, StderrIsTerminal: isTerminal(os.Stderr), StdinIsTerminal: isTerminal(os.Stdin), WatchSignals: ctx.Watch})
	ctx.Stop()
	os.Exit(code)
}

// isTerminal returns whether f is a terminal (a character device).
func isTerminal(f *os.File) func() bool {
	return func() bool {
		fi, err := f.Stat()
		return err == nil && fi.Mode()&os.ModeCharDevice != 0
	}
}
