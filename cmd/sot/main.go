// Command sot is the scoped organization token server ("sot serve") and its
// command-line client (every other subcommand).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/sot-dev/sot/client"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit statuses of the client commands, part of the CLI contract: scripts
// and CI steps branch on them.
const (
	exitOK        = 0 // done, or allowed
	exitError     = 1 // anything else that went wrong
	exitUsage     = 2 // bad command line
	exitAuth      = 3 // unauthenticated: missing, unknown, expired or revoked credential
	exitForbidden = 4 // authenticated but not allowed
)

// cli is the whole command line. The client commands share the globals.
type cli struct {
	globals

	Serve       serveCmd       `cmd:"" help:"Run the sot server."`
	MigrateData migrateDataCmd `cmd:"" name:"migrate-data" help:"Copy a whole deployment into a new, empty database (such as SQLite to PostgreSQL), then check row counts."`
	Bench       benchCmd       `cmd:"" help:"Measure the token check under load on loopback: a seeded organization, the real server, /healthz and a bare net/http server in the same run."`

	Login  loginCmd  `cmd:"" help:"Save a server URL and token for the other commands (verified first)."`
	Logout logoutCmd `cmd:"" help:"Forget the saved URL and token."`
	Whoami whoamiCmd `cmd:"" help:"Show who the credential is: a user and their organizations, or an organization token."`

	Org     orgCmd     `cmd:"" help:"Manage organizations."`
	Project projectCmd `cmd:"" help:"Manage an organization's projects."`
	Member  memberCmd  `cmd:"" help:"Manage an organization's members."`
	Token   tokenCmd   `cmd:"" help:"Manage organization tokens."`
	Scan    scanCmd    `cmd:"" help:"Upload an analysis report of a project (the CI step)."`
	Check   checkCmd   `cmd:"" help:"Check whether the credential may act on a project: exit 0 allowed, 3 bad credential, 4 not allowed."`
	Audit   auditCmd   `cmd:"" help:"Show an organization's audit log."`
	Webhook webhookCmd `cmd:"" help:"Manage an organization's webhooks (token lifecycle events) and see their deliveries."`

	TrustPolicy trustPolicyCmd `cmd:"" name:"trust-policy" help:"Manage trust policies: which CI jobs may exchange their OIDC identity for a short-lived token (tokenless CI)."`

	Version    versionCmd    `cmd:"" help:"Print the version of sot."`
	Completion completionCmd `cmd:"" help:"Print a shell completion script (bash, zsh or fish)."`
}

func main() {
	os.Exit(run(os.Args[1:], &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
}

// stdio is where a command reads and writes: the process's standard files,
// bound into every Run method.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// run parses args, runs the command and returns the process exit status.
func run(args []string, std *stdio) int {
	var c cli
	parser, err := kong.New(&c, kong.Name("sot"),
		kong.Description("Scoped organization tokens: the server (sot serve) and its client."),
		kong.UsageOnError(),
		kong.Vars{"default_url": client.DefaultURL, "webhook_events": webhookEventsHelp},
		kong.Writers(std.out, std.err),
		kong.Bind(&c.globals, std),
		kong.Exit(func(code int) { panic(exitCode(code)) }))
	if err != nil {
		fmt.Fprintln(std.err, "sot:", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return parseAndRun(ctx, parser, args, std)
}

// exitCode carries kong's requested exit status (help, usage errors) out of
// its Exit hook so that deferred cleanup still runs.
type exitCode int

func parseAndRun(ctx context.Context, parser *kong.Kong, args []string, std *stdio) (code int) {
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
		fmt.Fprintln(std.err, "sot:", err)
		cmd := "sot"
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil {
			if n := pe.Context.Selected(); n != nil {
				cmd = n.FullPath()
			}
		}
		fmt.Fprintf(std.err, "Run %q for usage.\n", cmd+" --help")
		return exitUsage
	}
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(); err != nil {
		return reportError(std.err, err)
	}
	return exitOK
}

// reportError prints err for a person and returns the exit status for it.
// It is the one place where API errors become exit statuses: 401 is 3,
// 403 is 4, a usage error is 2, anything else 1. It prints the server's
// detail and field errors, never a stack.
func reportError(w io.Writer, err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(w, "sot:", ue.msg)
		return exitUsage
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		fmt.Fprintln(w, "sot:", err)
		return exitError
	}
	msg := ce.Detail
	if msg == "" {
		msg = ce.Title
	}
	fmt.Fprintf(w, "sot: %s (HTTP %d)\n", msg, ce.Status)
	for _, f := range ce.Errors {
		if f.Field != "" {
			fmt.Fprintf(w, "  %s: %s\n", f.Field, f.Message)
		} else {
			fmt.Fprintf(w, "  %s\n", f.Message)
		}
	}
	return exitStatus(ce.Status)
}

// exitStatus maps an HTTP status of a failed request to the exit status.
func exitStatus(httpStatus int) int {
	switch httpStatus {
	case 401:
		return exitAuth
	case 403:
		return exitForbidden
	}
	return exitError
}

// usageError is a command line that parsed but makes no sense (such as a
// malformed --expires); it exits with status 2 like a parse error.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}
