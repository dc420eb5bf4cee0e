// Command ossjobwatch turns OSS Batch Operations job listings into
// CloudEvents on NATS JetStream. Each verb lives in a file of its own; main
// only dispatches, and signals never reach below this package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes shared by every verb.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// cli is what a verb gets from main: its arguments, the environment and
// the standard streams, so tests can run verbs in-process.
type cli struct {
	args   []string
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// verb is one subcommand.
type verb struct {
	summary string
	run     func(ctx context.Context, c cli) int
}

// verbs is filled by the verb files' init functions.
var verbs = map[string]verb{}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	v, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ossjobwatch: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return v.run(ctx, cli{args: args[1:], getenv: getenv, stdout: stdout, stderr: stderr})
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "ossjobwatch: the missing event source for OSS Batch Operations jobs")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: ossjobwatch <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(verbs))
	for name := range verbs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, verbs[name].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'ossjobwatch <command> -h' for a command's flags.")
}

// parseFlags parses a verb's flags and turns -h and bad flags into the
// verb's exit code: ok is false when the verb must return code at once.
func parseFlags(fs *flag.FlagSet, c cli) (code int, ok bool) {
	fs.SetOutput(c.stderr)
	if err := fs.Parse(c.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return exitOK, true
}
