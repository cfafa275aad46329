// Command sot is the scoped organization token server ("sot serve") and its
// command-line client (every other subcommand).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// cli is the whole command line. The client commands share the globals.
type cli struct {
	Serve serveCmd `cmd:"" help:"Run the sot server."`
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run parses args, runs the command and returns the process exit status.
func run(args []string) int {
	var c cli
	parser, err := kong.New(&c, kong.Name("sot"),
		kong.Description("Scoped organization tokens: the server (sot serve) and its client."),
		kong.UsageOnError(),
		kong.Exit(func(code int) { panic(exitCode(code)) }))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sot:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return parseAndRun(ctx, parser, args)
}

// exitCode carries kong's requested exit status (help, usage errors) out of
// its Exit hook so that deferred cleanup still runs.
type exitCode int

func parseAndRun(ctx context.Context, parser *kong.Kong, args []string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			if c, ok := r.(exitCode); ok {
				code = int(c)
				return
			}
			panic(r)
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sot:", err)
		return 2
	}
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(); err != nil {
		return reportError(err)
	}
	return 0
}

// reportError prints err for a person and returns the exit status for it.
func reportError(err error) int {
	fmt.Fprintln(os.Stderr, "sot:", err)
	return 1
}
