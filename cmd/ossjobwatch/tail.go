package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/app"
	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/publisher"
)

func init() {
	verbs["tail"] = verb{summary: "print live events from NATS, one line each", run: runTail}
}

func runTail(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(c.stderr, "Usage: ossjobwatch tail [flags] [SUBJECT-FILTER]")
		fmt.Fprintln(c.stderr, "  SUBJECT-FILTER defaults to <prefix>.>, e.g. 'ossjobs.*.status.*.Failed'")
		fs.PrintDefaults()
	}
	f := &config.Flags{}
	fs.StringVar(&f.ConfigFile, "config", "", "YAML config file (env OSSJOBWATCH_CONFIG)")
	fs.StringVar(&f.NATSURL, "nats-url", "", "NATS URL (env OSSJOBWATCH_NATS_URL, default "+config.DefaultNATSURL+")")
	fs.StringVar(&f.Stream, "stream", "", "JetStream stream (env OSSJOBWATCH_STREAM, default OSSJOBS)")
	fs.StringVar(&f.SubjectPrefix, "subject-prefix", "", "subject prefix (env OSSJOBWATCH_SUBJECT_PREFIX, default ossjobs)")
	asJSON := fs.Bool("json", false, "print each event's raw JSON")
	all := fs.Bool("all", false, "start from the first event in the stream, not the next one")
	count := fs.Int("count", 0, "exit after this many events (0: run until Ctrl-C)")
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitUsage
	}
	cfg, ok := loadConfig(c, *f, config.Needs{NATS: true})
	if !ok {
		return exitUsage
	}
	filter := cfg.SubjectPrefix + ".>"
	if fs.NArg() == 1 {
		filter = fs.Arg(0)
	}
	nc, err := publisher.Connect(cfg.NATSURL, "ossjobwatch-tail", slog.New(slog.DiscardHandler), app.NATSOptions(cfg)...)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch tail: %v\n", err)
		return exitFailure
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch tail: %v\n", err)
		return exitFailure
	}
	policy := jetstream.DeliverNewPolicy
	if *all {
		policy = jetstream.DeliverAllPolicy
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	seen := 0
	colour := isTerminal(c.stdout)
	err = follow(ctx, js, cfg.Stream.Name, filter, policy, func(m jetstream.Msg) {
		if *count > 0 && seen >= *count {
			return
		}
		if *asJSON {
			fmt.Fprintf(c.stdout, "%s\n", m.Data())
		} else {
			fmt.Fprintln(c.stdout, formatEvent(m.Data(), colour))
		}
		if seen++; *count > 0 && seen >= *count {
			stop()
		}
	}, func() {
		fmt.Fprintf(c.stderr, "following %s on stream %s at %s (Ctrl-C to stop)\n", filter, cfg.Stream.Name, publisher.RedactURL(cfg.NATSURL))
	})
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch tail: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// follow delivers the stream's messages matching filter to fn, in order,
// until ctx is done. ready is called once the consumer exists.
func follow(ctx context.Context, js jetstream.JetStream, stream, filter string, policy jetstream.DeliverPolicy, fn func(jetstream.Msg), ready func()) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(cctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  policy,
	})
	if err != nil {
		return fmt.Errorf("follow %s on stream %s: %w", filter, stream, err)
	}
	cc, err := cons.Consume(fn)
	if err != nil {
		return fmt.Errorf("follow %s on stream %s: %w", filter, stream, err)
	}
	defer cc.Stop()
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	return nil
}

// tailData is what a line shows of an event.
type tailData struct {
	JobID          string `json:"jobId"`
	Target         string `json:"target"`
	Status         string `json:"status"`
	PreviousStatus string `json:"previousStatus"`
	Operation      string `json:"operation"`
	Tasks          struct {
		Total, Succeeded, Failed int64
	} `json:"tasks"`
	FailedDelta    int64  `json:"failedDelta"`
	SucceededDelta int64  `json:"succeededDelta"`
	Sequence       int64  `json:"sequence"`
	Baseline       bool   `json:"baseline"`
	Reason         string `json:"reason"`
	FailureReasons []struct {
		Code string `json:"code"`
	} `json:"failureReasons"`
	StalledSince time.Time `json:"stalledSince"`
	FailsAt      time.Time `json:"failsAt"`
}

const (
	ansiReset  = "\033[0m"
	ansiDim    = "\033[2m"
	ansiRed    = "\033[31m"
	ansiGreen  = "\033[32m"
	ansiYellow = "\033[33m"
	ansiBlue   = "\033[34m"
	ansiCyan   = "\033[36m"
)

// formatEvent renders one event as a line: time, target, job, transition,
// task counts. An unreadable payload is shown as it is.
func formatEvent(payload []byte, colour bool) string {
	var ev struct {
		Type string    `json:"type"`
		Time time.Time `json:"time"`
		Data tailData  `json:"data"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return "unreadable event: " + string(payload)
	}
	d := ev.Data
	// Each part is padded before it is painted, so that colour codes do not
	// throw the columns off.
	paint := func(code, s string, width int) string {
		if pad := width - utf8.RuneCountInString(s); pad > 0 {
			s += strings.Repeat(" ", pad)
		}
		if !colour || code == "" {
			return s
		}
		return code + s + ansiReset
	}
	var what, code string
	switch strings.TrimPrefix(ev.Type, "ossjobwatch.job.") {
	case "discovered":
		what, code = "discovered "+d.Status, ansiBlue
		if d.Baseline {
			what += " (baseline)"
		}
	case "status_changed":
		what, code = d.PreviousStatus+" → "+d.Status, ansiCyan
		switch d.Status {
		case "Failed", "Failing", "Cancelled", "Cancelling":
			code = ansiRed
		case "Complete":
			code = ansiGreen
		case "Suspended":
			code = ansiYellow
		}
		for _, r := range d.FailureReasons {
			what += " " + r.Code
		}
	case "tasks_failed":
		what, code = fmt.Sprintf("+%d tasks failed", d.FailedDelta), ansiRed
	case "progress":
		what = fmt.Sprintf("progress %+d", d.SucceededDelta)
	case "stalled":
		what, code = stalledWhat(ev.Time, d.StalledSince), ansiRed
	case "confirmation_due":
		what, code = confirmationWhat(ev.Time, d.FailsAt), ansiYellow
		if d.FailsAt.Sub(ev.Time) < urgentBefore {
			code = ansiRed
		}
	case "removed":
		what, code = "removed ("+d.Reason+")", ansiDim
	default:
		what = ev.Type
	}
	tasks := fmt.Sprintf("%d/%d ok, %d failed", d.Tasks.Succeeded, d.Tasks.Total, d.Tasks.Failed)
	return fmt.Sprintf("%s  %-12s %-14s #%-3d %s %s",
		paint(ansiDim, ev.Time.Local().Format("15:04:05"), 0), d.Target, shorten(d.JobID, 14), d.Sequence,
		paint(code, what, 40), paint(ansiDim, tasks, 0))
}

// stalledWhat describes a stalled event observed at observed: how long the
// job had shown no change.
func stalledWhat(observed, since time.Time) string {
	if since.IsZero() {
		return "stalled"
	}
	return "stalled: no change for " + humanDuration(observed.Sub(since))
}

// confirmationWhat describes a confirmation_due event observed at observed:
// how long is left before OSS fails the unconfirmed job.
func confirmationWhat(observed, failsAt time.Time) string {
	if failsAt.IsZero() {
		return "confirmation due"
	}
	if left := failsAt.Sub(observed); left > 0 {
		return "confirmation due: fails in " + humanDuration(left)
	}
	return "confirmation due: past its 14 days"
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// isTerminal reports whether w is a character device, to colour output
// only where a person reads it (and not when NO_COLOR is set).
func isTerminal(w io.Writer) bool {
	return os.Getenv("NO_COLOR") == "" && isCharDevice(w)
}

// isCharDevice reports whether w is a terminal (a character device), to
// lay output out for a person rather than for a pipe.
func isCharDevice(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
