package osssim_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

func jobIDs(ds []job.Detail) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

func TestListJobsPaging(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 2500, Seed: 7})
	c := b.client(osssim.DefaultCredential)
	world := b.sim.Jobs()
	for _, maxKeys := range []string{"7", "1000"} {
		t.Run("max-keys="+maxKeys, func(t *testing.T) {
			t.Parallel()
			ids, tokens := listAll(t, c, map[string]string{"max-keys": maxKeys})
			if !slices.Equal(ids, jobIDs(world)) {
				t.Fatalf("listed %d jobs, want each of %d exactly once in JobId order", len(ids), len(world))
			}
			if len(tokens) == 0 {
				t.Fatalf("no NextToken on a multi-page listing")
			}
			for _, tok := range tokens {
				for _, ch := range "+/=:?#" {
					if !strings.ContainsRune(tok, ch) {
						t.Fatalf("token %q lacks %q", tok, ch)
					}
				}
				if len(tok) > 1024 {
					t.Fatalf("token longer than 1024: %d", len(tok))
				}
			}
		})
	}
	t.Run("filtered", func(t *testing.T) {
		t.Parallel()
		ids, _ := listAll(t, c, map[string]string{"max-keys": "50", "batchJobStatuses": "Complete|Active"})
		var want []string
		for _, d := range world {
			if d.Status == job.StatusActive || d.Status == job.StatusComplete {
				want = append(want, d.ID)
			}
		}
		if len(want) == 0 || !slices.Equal(ids, want) {
			t.Fatalf("filtered listing has %d jobs, want %d", len(ids), len(want))
		}
	})
}

// The pager is keyset-based: a job removed after the cursor vanishes, one
// added before it is not seen, and nothing repeats.
func TestListJobsKeyset(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 30})
	c := b.client(osssim.DefaultCredential)
	world := jobIDs(b.sim.Jobs())
	first := list(t, c, map[string]string{"max-keys": "10"})
	if len(first.Jobs) != 10 || first.NextToken == nil {
		t.Fatalf("first page: %d jobs, token %v", len(first.Jobs), first.NextToken)
	}
	if !b.sim.Remove(world[15]) {
		t.Fatalf("Remove(%s) = false", world[15])
	}
	early := job.Detail{Job: job.Job{ID: "AAAA-early", Status: job.StatusNew}}
	late := job.Detail{Job: job.Job{ID: "zzzz-late", Status: job.StatusNew}}
	b.sim.Put(early)
	b.sim.Put(late)
	ids, _ := listAll(t, c, map[string]string{"max-keys": "10", "continuation-token": *first.NextToken})
	want := append(slices.Concat(world[10:15], world[16:]), late.ID)
	if !slices.Equal(ids, want) {
		t.Fatalf("after the cursor got\n%v\nwant\n%v", ids, want)
	}
}

func TestListJobsInvalid(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 30})
	c := b.client(osssim.DefaultCredential)
	valid := *list(t, c, map[string]string{"max-keys": "5"}).NextToken
	tampered := []byte(valid)
	tampered[5] ^= 1
	tests := []struct {
		name   string
		params map[string]string
		arg    string
	}{
		{"max-keys 0", map[string]string{"max-keys": "0"}, "max-keys"},
		{"max-keys 1001", map[string]string{"max-keys": "1001"}, "max-keys"},
		{"max-keys abc", map[string]string{"max-keys": "abc"}, "max-keys"},
		{"max-keys empty", map[string]string{"max-keys": ""}, "max-keys"},
		{"unknown status", map[string]string{"batchJobStatuses": "Running"}, "batchJobStatuses"},
		{"empty status", map[string]string{"batchJobStatuses": "Active||Complete"}, "batchJobStatuses"},
		{"lower-case status", map[string]string{"batchJobStatuses": "active"}, "batchJobStatuses"},
		{"forged token", map[string]string{"continuation-token": "v1:" + base64.StdEncoding.EncodeToString([]byte("M2Q1NjU2YzdlNjRk")) + "?#"}, "continuation-token"},
		{"tampered token", map[string]string{"continuation-token": string(tampered)}, "continuation-token"},
		{"foreign token", map[string]string{"continuation-token": "next-page-token-123"}, "continuation-token"},
		{"empty token", map[string]string{"continuation-token": ""}, "continuation-token"},
		{"long token", map[string]string{"continuation-token": strings.Repeat("a", 1025)}, "continuation-token"},
		{"token for another filter", map[string]string{"continuation-token": valid, "batchJobStatuses": "Active"}, "continuation-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := invoke(t, c, "ListJobs", tt.params)
			se := serviceError(t, err, 400, "InvalidArgument")
			if !strings.Contains(se.Message, tt.arg) || !bytes.Contains(se.Snapshot, []byte("<ArgumentName>"+tt.arg+"</ArgumentName>")) {
				t.Fatalf("error does not name %s:\n%s", tt.arg, se.Snapshot)
			}
		})
	}
}

// A client that does not URL-encode the token sends '+' as a space and
// loses everything after '#': the simulator must refuse that.
func TestListJobsUnencodedToken(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 30})
	tok := *list(t, b.client(osssim.DefaultCredential), map[string]string{"max-keys": "5"}).NextToken
	resp := b.rawSigned(t, http.MethodGet, "batchJob&max-keys=5&continuation-token="+tok, osssim.DefaultCredential)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unencoded token: status %d, want 400", resp.StatusCode)
	}
	resp = b.rawSigned(t, http.MethodGet, "batchJob&max-keys=5&continuation-token="+url.QueryEscape(tok), osssim.DefaultCredential)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("encoded token: status %d, want 200:\n%s", resp.StatusCode, readAll(t, resp))
	}
}

func TestListJobsXML(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true, UnknownElements: true})
	created := time.Unix(1749983400, 0)
	var put []job.Detail
	for i, desc := range []string{`a & b < c > "d" 'e'`, "批量 ]]> <![CDATA[", ""} {
		d := job.Detail{Job: job.Job{
			ID: string(rune('A'+i)) + "-job", Description: desc, Operation: "PutObjectTagging", Priority: int64(i),
			Status: job.StatusActive, CreationTime: created, ElapsedActiveSeconds: 3600 + int64(i),
			Tasks: job.Tasks{Total: 1000, Succeeded: 10, Failed: 1},
		}}
		b.sim.Put(d)
		put = append(put, d)
	}
	// Find jobs of each shape among many ids so both variants are checked.
	for i := range 64 {
		b.sim.Put(job.Detail{Job: job.Job{ID: "shape-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Status: job.StatusNew}})
	}
	body, _, err := invoke(t, b.client(osssim.DefaultCredential), "ListJobs", map[string]string{"max-keys": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	for _, el := range []string{"<Tags>", "<StorageClassHint>"} {
		if !bytes.Contains(body, []byte(el)) {
			t.Fatalf("UnknownElements is on but no %s was written", el)
		}
	}
	res := decode[listResult](t, body)
	byID := map[string]descriptor{}
	for _, d := range res.Jobs {
		byID[d.JobID] = d
	}
	for _, want := range put {
		got := byID[want.ID]
		if got.Description != want.Description || got.CreationTime != 1749983400 || got.ProgressSummary.Total != 1000 {
			t.Fatalf("job %s decoded as %+v", want.ID, got)
		}
	}
	seen := map[string]bool{}
	for id, d := range byID {
		sh := osssim.ShapeOf(id)
		nested := d.ProgressSummary.Timers != nil
		if nested != sh.NestedTimers || nested == (d.ProgressSummary.Elapsed != nil) {
			t.Fatalf("job %s: Timers present %v, direct element present %v, shape %+v", id, nested, d.ProgressSummary.Elapsed != nil, sh)
		}
		if (d.TerminationDate != nil) != sh.ZeroTerminationDate {
			t.Fatalf("job %s: TerminationDate %v with shape %+v", id, d.TerminationDate, sh)
		}
		seen["nested="+boolStr(sh.NestedTimers)] = true
		seen["zero="+boolStr(sh.ZeroTerminationDate)] = true
		seen["unknown="+sh.UnknownElement] = true
	}
	if len(seen) != 7 {
		t.Fatalf("not every shape variant was exercised: %v", seen)
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestDescribeJob(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	c := b.client(osssim.DefaultCredential)
	failed := job.Detail{
		Job: job.Job{ID: "MzRjZGU2NGQ3YTY5NGRhMTkxZmZhYzY5OTM5YTcxYWU=", Operation: "RestoreObject", Status: job.StatusFailed,
			CreationTime: time.Unix(1749983400, 0), TerminationTime: time.Unix(1749987000, 0), Tasks: job.Tasks{Total: 5, Succeeded: 1, Failed: 4}},
		FailureReasons:     []job.FailureReason{{Code: "ManifestNotFound", Reason: "no <manifest> & no luck"}},
		StatusUpdateReason: "stopped",
		RoleARN:            "acs:ram::1:role/x",
	}
	suspended := job.Detail{Job: job.Job{ID: "suspended-job", Status: job.StatusSuspended}, ConfirmationRequired: true}
	b.sim.Put(failed)
	b.sim.Put(suspended)

	body, _, err := invoke(t, c, "DescribeJob", map[string]string{"batchJobId": failed.ID})
	if err != nil {
		t.Fatal(err)
	}
	got := decode[struct {
		Job descriptor `xml:"Job"`
	}](t, body).Job
	switch {
	case got.JobID != failed.ID || got.Status != "Failed" || got.TerminationDate == nil || *got.TerminationDate != 1749987000:
		t.Fatalf("descriptor fields: %+v", got)
	case got.FailureReasons == nil || len(got.FailureReasons.Failures) != 1 || got.FailureReasons.Failures[0].Reason != "no <manifest> & no luck":
		t.Fatalf("FailureReasons: %+v", got.FailureReasons)
	case got.ConfirmationRequired == nil || *got.ConfirmationRequired || got.StatusUpdateReason == nil || *got.StatusUpdateReason != "stopped":
		t.Fatalf("ConfirmationRequired/StatusUpdateReason: %+v", got)
	case got.RoleArn == nil || *got.RoleArn != "acs:ram::1:role/x" || got.Manifest == nil || got.Manifest.Format == "" || got.Report == nil:
		t.Fatalf("RoleArn/Manifest/Report: %+v", got)
	}

	body, _, err = invoke(t, c, "DescribeJob", map[string]string{"batchJobId": suspended.ID})
	if err != nil {
		t.Fatal(err)
	}
	got = decode[struct {
		Job descriptor `xml:"Job"`
	}](t, body).Job
	if got.ConfirmationRequired == nil || !*got.ConfirmationRequired || got.FailureReasons == nil {
		t.Fatalf("suspended job: %+v", got)
	}
	for _, f := range got.FailureReasons.Failures {
		if f.Code != "" || !osssim.ShapeOf(suspended.ID).EmptyJobFailure {
			t.Fatalf("a job without failures shows %+v", got.FailureReasons)
		}
	}

	for _, tt := range []struct {
		id     string
		status int
		code   string
	}{{"Tm9TdWNoSm9i", 404, "NoSuchJob"}, {"", 400, "InvalidArgument"}} {
		_, _, err = invoke(t, c, "DescribeJob", map[string]string{"batchJobId": tt.id})
		if se := serviceError(t, err, tt.status, tt.code); se.EC != "0017-00001002" || se.Headers.Get("x-oss-ec") != se.EC {
			t.Fatalf("DescribeJob(%q): EC = %q, want 0017-00001002", tt.id, se.EC)
		}
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 5})
	tests := []struct {
		name, method, query string
		status              int
		code                string
	}{
		{"POST", http.MethodPost, "batchJob", 405, "MethodNotAllowed"},
		{"no batchJob", http.MethodGet, "max-keys=5", 400, "InvalidArgument"},
		{"bad escape", http.MethodGet, "batchJob&max-keys=%zz", 400, "InvalidArgument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := b.rawSigned(t, tt.method, tt.query, osssim.DefaultCredential)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if e := decode[errorBody](t, readAll(t, resp)); e.Code != tt.code {
				t.Fatalf("code %q, want %q", e.Code, tt.code)
			}
		})
	}
}
