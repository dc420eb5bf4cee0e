package event_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/job"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	observed = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	meta     = event.Meta{Target: "prod-hz", Region: "cn-hangzhou", SubjectPrefix: "ossjobs", SweepID: "01937a2e-0000-7000-8000-00000000aaaa", ObservedAt: observed}
	sample   = job.Job{
		ID: "MzRjZGU2NGQ3YTY5NGRhMTkxZmZhYzY5OTM5YTcxYWU=", Operation: "PutObjectTagging",
		Description: "Tag <archive> & logs", Priority: 10, Status: job.StatusActive,
		CreationTime: time.Unix(1749983400, 0), Tasks: job.Tasks{Total: 1000, Succeeded: 600, Failed: 4},
		ElapsedActiveSeconds: 3600,
	}
)

func ptr(j job.Job) *job.Job { return &j }

func withStatus(j job.Job, s job.Status, terminated bool) job.Job {
	j.Status = s
	if terminated {
		j.TerminationTime = time.Unix(1749987000, 0)
	}
	return j
}

func TestGolden(t *testing.T) {
	t.Parallel()
	failedDetail := &job.Detail{
		Job:                withStatus(sample, job.StatusFailed, true),
		FailureReasons:     []job.FailureReason{{Code: "ManifestNotFound", Reason: "manifest.csv is missing"}},
		StatusUpdateReason: "stopped by system",
	}
	tests := []struct {
		golden  string
		subject string
		change  diff.Change
		detail  *job.Detail
		enrErr  string
	}{
		{"discovered", "ossjobs.prod-hz.discovered",
			diff.Change{Kind: diff.Discovered, Sequence: 1, Job: &sample, Baseline: true}, nil, ""},
		{"status_changed", "ossjobs.prod-hz.status.Active.Complete",
			diff.Change{Kind: diff.StatusChanged, Sequence: 2, Job: ptr(withStatus(sample, job.StatusComplete, true)), From: job.StatusActive}, nil, ""},
		{"status_changed_enriched", "ossjobs.prod-hz.status.Active.Failed",
			diff.Change{Kind: diff.StatusChanged, Sequence: 2, Job: ptr(withStatus(sample, job.StatusFailed, true)), From: job.StatusActive}, failedDetail, ""},
		{"status_changed_enrichment_error", "ossjobs.prod-hz.status.Active.Failed",
			diff.Change{Kind: diff.StatusChanged, Sequence: 2, Job: ptr(withStatus(sample, job.StatusFailed, true)), From: job.StatusActive}, nil, "NoSuchJob"},
		{"status_changed_unknown", "ossjobs.prod-hz.status.Active.Archiving_v2",
			diff.Change{Kind: diff.StatusChanged, Sequence: 2, Job: ptr(withStatus(sample, "Archiving.v2", false)), From: job.StatusActive}, nil, ""},
		{"tasks_failed", "ossjobs.prod-hz.tasks_failed",
			diff.Change{Kind: diff.TasksFailed, Sequence: 3, Job: &sample, FailedDelta: 4, SucceededDelta: 100}, nil, ""},
		{"progress", "ossjobs.prod-hz.progress",
			diff.Change{Kind: diff.Progress, Sequence: 4, Job: &sample, FailedDelta: 4, SucceededDelta: 100}, nil, ""},
		{"stalled", "ossjobs.prod-hz.stalled",
			diff.Change{Kind: diff.Stalled, Sequence: 5, Job: &sample, StalledSince: time.Date(2026, 11, 24, 7, 30, 0, 0, time.UTC)}, nil, ""},
		{"confirmation_due", "ossjobs.prod-hz.confirmation_due",
			diff.Change{Kind: diff.ConfirmationDue, Sequence: 5, Job: ptr(withStatus(sample, job.StatusSuspended, false)),
				SuspendedSince: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), FailsAt: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}, nil, ""},
		{"removed", "ossjobs.prod-hz.removed",
			diff.Change{Kind: diff.Removed, Sequence: 5, Job: ptr(withStatus(sample, job.StatusComplete, true)), Reason: diff.Expired}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			const id = "01937a2e-1111-7000-8000-000000000001"
			ev, err := event.Encode(id, tt.change, event.Enrichment{Detail: tt.detail, Err: tt.enrErr}, meta)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if ev.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", ev.Subject, tt.subject)
			}
			if ev.ID != id || ev.JobID != sample.ID || ev.Sequence != tt.change.Sequence {
				t.Errorf("event = %+v", ev)
			}
			checkCloudEvent(t, ev)

			var pretty bytes.Buffer
			if err := json.Indent(&pretty, ev.Payload, "", "  "); err != nil {
				t.Fatalf("payload is not JSON: %v", err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", tt.golden+".json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("payload differs from %s:\ngot:\n%s\nwant:\n%s", path, pretty.Bytes(), want)
			}
		})
	}
}

// checkCloudEvent reads the payload with the CloudEvents SDK, which
// validates it against the 1.0 spec, and checks the contract's attributes.
func checkCloudEvent(t *testing.T, ev event.Event) {
	t.Helper()
	var ce cloudevents.Event
	if err := json.Unmarshal(ev.Payload, &ce); err != nil {
		t.Fatalf("CloudEvents SDK cannot read the payload: %v", err)
	}
	if err := ce.Validate(); err != nil {
		t.Fatalf("not a valid CloudEvent: %v", err)
	}
	if ce.SpecVersion() != "1.0" || ce.ID() != ev.ID || ce.Source() != "/ossjobwatch/prod-hz" ||
		ce.Type() != ev.Type || ce.Subject() != ev.JobID || !ce.Time().Equal(observed) ||
		ce.DataContentType() != "application/json" {
		t.Errorf("attributes: %s", ce.String())
	}
	var data map[string]any
	if err := ce.DataAs(&data); err != nil {
		t.Fatalf("data: %v", err)
	}
	if data["sequence"] != float64(ev.Sequence) || data["jobId"] != ev.JobID || data["target"] != "prod-hz" {
		t.Errorf("data = %v", data)
	}
	_, hasPrev := data["previousStatus"]
	if isStatus := strings.HasSuffix(ev.Type, ".status_changed"); hasPrev != isStatus {
		t.Errorf("previousStatus present = %v on %s", hasPrev, ev.Type)
	}
}

func TestEncodeEnrichmentOnlyWhereTheContractSaysSo(t *testing.T) {
	t.Parallel()
	detail := &job.Detail{ConfirmationRequired: true, StatusUpdateReason: "awaiting confirmation"}
	for _, to := range append([]job.Status{}, job.Statuses...) {
		c := diff.Change{Kind: diff.StatusChanged, Sequence: 2, Job: ptr(withStatus(sample, to, false)), From: "Preparing"}
		ev, err := event.Encode("id", c, event.Enrichment{Detail: detail}, meta)
		if err != nil {
			t.Fatal(err)
		}
		var payload struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(ev.Payload, &payload); err != nil {
			t.Fatal(err)
		}
		_, enriched := payload.Data["confirmationRequired"]
		if enriched != to.NeedsDetail() {
			t.Errorf("status %s: enriched = %v, want %v", to, enriched, to.NeedsDetail())
		}
		if enriched && payload.Data["failureReasons"] == nil {
			t.Errorf("status %s: failureReasons is null, want []", to)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	t.Parallel()
	c := diff.Change{Kind: diff.Discovered, Sequence: 1, Job: &sample}
	if _, err := event.Encode("", c, event.Enrichment{}, meta); err == nil {
		t.Error("empty id: want an error")
	}
	noTime := meta
	noTime.ObservedAt = time.Time{}
	if _, err := event.Encode("id", c, event.Enrichment{}, noTime); err == nil {
		t.Error("zero observation time: want an error")
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{"cn-hangzhou": true, "prod_1": true, "": false, "a.b": false, "a b": false, "ä": false} {
		if got := event.ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{"ossjobs": true, "acme.ossjobs": true, "a..b": false, "": false, "a.*": false, "a.>": false} {
		if got := event.ValidPrefix(s); got != want {
			t.Errorf("ValidPrefix(%q) = %v, want %v", s, got, want)
		}
	}
	id1, _ := event.NewID()
	id2, _ := event.NewID()
	if id1 == id2 || len(id1) != 36 {
		t.Errorf("NewID gave %q and %q", id1, id2)
	}
}
