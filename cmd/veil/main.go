// Command veil is the Veil privacy gateway: one binary for the server and
// for every operator, integrator and auditor command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks a usage error (exit 2); the message was printed already.
var errUsage = errors.New("usage")

const usage = `veil: a privacy gateway for recruiting webhooks.

Usage: veil <command> [--config veil.yaml] [flags]

Commands:
  serve                     run the gateway
  send --source NAME FILE   sign FILE as that source's vendor would and POST it to Veil
  policy test [DIR]         run the Rego tests (OPA's tester); exit 1 on failure
  policy preview --destination NAME [--source NAME] [--policies DIR] FILE
                            what that destination would receive, with kept/dropped/pseudonymised paths
  policy diff --policies NEW_DIR [--samples DIR]
                            per destination, the fields that would newly leave or stop leaving
  sink [--listen ADDR] [--secret whsec_…]
                            a local destination that prints each delivery and checks its signature
  dlq list | dlq replay ID|--all
                            the dead-letter inbox (through the running server's admin API)
  audit export [--format csv|jsonl] [--since T] [--until T] [--destination D] [--action A] [--subject REF] [--out FILE]
  audit verify [FILE]       verify the hash chain of the database or of an exported JSONL file
  audit purge [--dry-run]   apply retention now
  erase --subject REF       erase one data subject (greenhouse:candidate:123)
  consumer add NAME --purpose P[,P…] | consumer list | consumer revoke NAME
                            lookup consumers; add prints the key once
  report processing [--format md|json] [--samples DIR]
                            the records of processing (GDPR Art. 30), per destination
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit code: 0 success, 1
// failure, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "send":
		err = runSend(ctx, args[1:], stdout, stderr)
	case "policy":
		err = runPolicy(ctx, args[1:], stdout, stderr)
	case "sink":
		err = runSink(ctx, args[1:], stdout, stderr)
	case "dlq":
		err = runDLQ(ctx, args[1:], stdout, stderr)
	case "audit":
		err = runAudit(ctx, args[1:], stdout, stderr)
	case "erase":
		err = runErase(ctx, args[1:], stdout, stderr)
	case "report":
		err = runReport(ctx, args[1:], stdout, stderr)
	case "consumer":
		err = runConsumer(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "veil: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 2
	default:
		fmt.Fprintf(stderr, "veil %s: %v\n", args[0], err)
		return 1
	}
}

// newFlagSet returns a flag set whose parse errors are usage errors, with
// the shared --config flag.
func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("veil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "veil.yaml", "path of the config file")
	return fs, config
}

// parseFlags parses args, allowing flags after positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newLogger returns the JSON logger every command shares.
func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("VEIL_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
