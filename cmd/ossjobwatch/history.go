package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/store"
)

func init() {
	verbs["history"] = verb{summary: "print one job's event history from SQL", run: runHistory}
}

func runHistory(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(c.stderr, "Usage: ossjobwatch history [flags] JOBID")
		fs.PrintDefaults()
	}
	f := commonFlags(fs)
	target := fs.String("target", "", "only this target's history")
	asJSON := fs.Bool("json", false, "print the stored events, one JSON object a line")
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(c.stderr, "ossjobwatch history: want exactly one JOBID")
		fs.Usage()
		return exitUsage
	}
	jobID := fs.Arg(0)
	cfg, ok := loadConfig(c, *f, config.Needs{Database: true})
	if !ok {
		return exitUsage
	}
	st, ok := openStore(ctx, c, "history", cfg)
	if !ok {
		return exitFailure
	}
	defer st.Close()
	events, err := st.History(ctx, jobID, *target)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch: %v\n", err)
		return exitFailure
	}
	if len(events) == 0 {
		where := ""
		if *target != "" {
			where = " in target " + *target
		}
		fmt.Fprintf(c.stderr, "ossjobwatch history: no events for job %s%s\n", jobID, where)
		return exitFailure
	}
	if *asJSON {
		for _, e := range events {
			fmt.Fprintf(c.stdout, "%s\n", e.Payload)
		}
		return exitOK
	}
	deliveries, err := st.JobDeliveries(ctx, jobID, *target)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch: %v\n", err)
		return exitFailure
	}
	printHistory(c.stdout, events, deliveries)
	return exitOK
}

// eventData is the part of an event's data the timeline shows.
type eventData struct {
	Operation   string `json:"operation"`
	Description string `json:"description"`
	Tasks       struct {
		Total, Succeeded, Failed int64
	} `json:"tasks"`
	FailedDelta    int64  `json:"failedDelta"`
	SucceededDelta int64  `json:"succeededDelta"`
	Baseline       bool   `json:"baseline"`
	Reason         string `json:"reason"`
	FailureReasons []struct {
		Code, Reason string
	} `json:"failureReasons"`
	StatusUpdateReason string    `json:"statusUpdateReason"`
	StalledSince       time.Time `json:"stalledSince"`
	SuspendedSince     time.Time `json:"suspendedSince"`
	FailsAt            time.Time `json:"failsAt"`
}

func printHistory(w io.Writer, events []store.HistoryEvent, deliveries []store.Delivery) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	told := map[string][]store.Delivery{}
	for _, d := range deliveries {
		told[d.EventID] = append(told[d.EventID], d)
	}
	lastTarget := ""
	for _, e := range events {
		var env struct {
			Data eventData `json:"data"`
		}
		_ = json.Unmarshal(e.Payload, &env) // the store holds valid JSON (a constraint checks it)
		d := env.Data
		if e.Target != lastTarget {
			if lastTarget != "" {
				fmt.Fprintln(tw)
			}
			fmt.Fprintf(tw, "job %s in target %s: %s %q\n", e.JobID, e.Target, d.Operation, d.Description)
			lastTarget = e.Target
		}
		what := strings.TrimPrefix(e.Type, "ossjobwatch.job.")
		detail := fmt.Sprintf("tasks %d/%d succeeded, %d failed", d.Tasks.Succeeded, d.Tasks.Total, d.Tasks.Failed)
		switch what {
		case "discovered":
			what = "discovered as " + e.ToStatus
			if d.Baseline {
				detail += " (baseline)"
			}
		case "status_changed":
			what = e.FromStatus + " → " + e.ToStatus
			for _, r := range d.FailureReasons {
				detail += fmt.Sprintf("; %s: %s", r.Code, r.Reason)
			}
			if d.StatusUpdateReason != "" {
				detail += "; " + d.StatusUpdateReason
			}
		case "tasks_failed":
			what = fmt.Sprintf("+%d tasks failed", d.FailedDelta)
		case "progress":
			what = fmt.Sprintf("progress %+d", d.SucceededDelta)
		case "stalled":
			what = stalledWhat(e.ObservedAt, d.StalledSince)
		case "confirmation_due":
			what = confirmationWhat(e.ObservedAt, d.FailsAt)
			detail += "; suspended since " + d.SuspendedSince.UTC().Format(time.RFC3339) + ", fails at " + d.FailsAt.UTC().Format(time.RFC3339)
		case "removed":
			what = "removed (" + d.Reason + ")"
		}
		published := "pending"
		if !e.PublishedAt.IsZero() {
			published = "published"
		}
		fmt.Fprintf(tw, "  %s\t#%d\t%s\t%s\t%s\n", e.ObservedAt.UTC().Format(time.RFC3339), e.Sequence, what, detail, published)
		for _, d := range told[e.ID] {
			fmt.Fprintf(tw, "  \t\t→ %s\t%s\n", d.Receiver, deliveryLine(d))
		}
	}
}

// deliveryLine says when a receiver was told, or what is still being
// tried.
func deliveryLine(d store.Delivery) string {
	if !d.DeliveredAt.IsZero() {
		s := "told " + d.DeliveredAt.UTC().Format(time.RFC3339) + " (route " + d.Route
		if d.DigestSize > 1 {
			s += fmt.Sprintf(", in a digest of %d", d.DigestSize)
		}
		if d.Attempts > 1 {
			s += fmt.Sprintf(", after %d attempts", d.Attempts)
		}
		return s + ")"
	}
	s := fmt.Sprintf("pending: %d attempts, the last %s", d.Attempts, d.LastAttemptAt.UTC().Format(time.RFC3339))
	if d.LastError != "" {
		msg := d.LastError
		if len(msg) > 120 {
			msg = msg[:120] + "…"
		}
		s += ": " + msg
	}
	return s
}
