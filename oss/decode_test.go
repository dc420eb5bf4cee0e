package oss

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
)

// referenceExample is the response example of the ListJobs API page.
const referenceExample = `<?xml version="1.0" encoding="UTF-8"?> <ListJobsResult> <NextToken>next-page-token-456</NextToken> <Jobs> <JobListDescriptor> <CreationTime>1749983400</CreationTime> <Description>Batch job for setting object tags</Description> <JobId>MzRjZGU2NGQ3YTY5NGRhMTkxZmZhYzY5OTM5YTcxYWU=</JobId> <Operation>PutObjectTagging</Operation> <Priority>10</Priority> <ProgressSummary> <NumberOfTasksFailed>0</NumberOfTasksFailed> <NumberOfTasksSucceeded>1000</NumberOfTasksSucceeded> <Timers> <ElapsedTimeInActiveSeconds>3600</ElapsedTimeInActiveSeconds> </Timers> <TotalNumberOfTasks>1000</TotalNumberOfTasks> </ProgressSummary> <Status>Complete</Status> <TerminationDate>1749987000</TerminationDate> </JobListDescriptor> </Jobs> </ListJobsResult>`

func TestDecodeListJobsReferenceExample(t *testing.T) {
	t.Parallel()
	page, err := DecodeListJobs([]byte(referenceExample))
	if err != nil {
		t.Fatalf("DecodeListJobs: %v", err)
	}
	want := job.Job{
		ID:                   "MzRjZGU2NGQ3YTY5NGRhMTkxZmZhYzY5OTM5YTcxYWU=",
		Operation:            "PutObjectTagging",
		Description:          "Batch job for setting object tags",
		Priority:             10,
		Status:               job.StatusComplete,
		CreationTime:         time.Unix(1749983400, 0).UTC(),
		TerminationTime:      time.Unix(1749987000, 0).UTC(),
		Tasks:                job.Tasks{Total: 1000, Succeeded: 1000, Failed: 0},
		ElapsedActiveSeconds: 3600,
	}
	if page.NextToken != "next-page-token-456" {
		t.Errorf("NextToken = %q, want next-page-token-456", page.NextToken)
	}
	if len(page.Jobs) != 1 || !page.Jobs[0].Equal(want) {
		t.Fatalf("Jobs = %+v\nwant [%+v]", page.Jobs, want)
	}
}

func TestDecodeListJobsTolerance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		inner string // the JobListDescriptor's children
		check func(t *testing.T, j job.Job)
	}{
		{
			name:  "elapsed directly under ProgressSummary",
			inner: `<JobId>a</JobId><Status>Active</Status><ProgressSummary><ElapsedTimeInActiveSeconds>42</ElapsedTimeInActiveSeconds></ProgressSummary>`,
			check: func(t *testing.T, j job.Job) {
				if j.ElapsedActiveSeconds != 42 {
					t.Errorf("ElapsedActiveSeconds = %d, want 42", j.ElapsedActiveSeconds)
				}
			},
		},
		{
			name:  "unknown elements anywhere",
			inner: `<JobId>a</JobId><Future><Deep>x</Deep></Future><Status>Active</Status><ProgressSummary><Timers><NewTimer>1</NewTimer></Timers><Bytes>9</Bytes></ProgressSummary>`,
			check: func(t *testing.T, j job.Job) {
				if j.ID != "a" || j.Status != job.StatusActive {
					t.Errorf("got %+v", j)
				}
			},
		},
		{
			name:  "no job id: left to the sweep to name, not a page error",
			inner: `<Status>Active</Status>`,
			check: func(t *testing.T, j job.Job) {
				if j.ID != "" {
					t.Errorf("ID = %q, want empty", j.ID)
				}
			},
		},
		{
			name:  "blank job id is none",
			inner: "<JobId> \n </JobId><Status>Active</Status>",
			check: func(t *testing.T, j job.Job) {
				if j.ID != "" {
					t.Errorf("ID = %q, want empty", j.ID)
				}
			},
		},
		{
			name:  "unknown status kept verbatim",
			inner: `<JobId>a</JobId><Status>Archiving.v2</Status>`,
			check: func(t *testing.T, j job.Job) {
				if j.Status != "Archiving.v2" || j.Status.Known() {
					t.Errorf("Status = %q (known %v), want verbatim unknown", j.Status, j.Status.Known())
				}
			},
		},
		{
			name:  "termination date 0 and absent creation time",
			inner: `<JobId>a</JobId><Status>Active</Status><TerminationDate>0</TerminationDate>`,
			check: func(t *testing.T, j job.Job) {
				if !j.TerminationTime.IsZero() || !j.CreationTime.IsZero() {
					t.Errorf("times = %v, %v, want zero", j.CreationTime, j.TerminationTime)
				}
			},
		},
		{
			name:  "ISO 8601 times",
			inner: `<JobId>a</JobId><Status>Complete</Status><CreationTime>2025-06-15T10:30:00Z</CreationTime><TerminationDate>2025-06-15T19:30:00+08:00</TerminationDate>`,
			check: func(t *testing.T, j job.Job) {
				if want := time.Date(2025, 6, 15, 10, 30, 0, 0, time.UTC); !j.CreationTime.Equal(want) {
					t.Errorf("CreationTime = %v, want %v", j.CreationTime, want)
				}
				if want := time.Date(2025, 6, 15, 11, 30, 0, 0, time.UTC); !j.TerminationTime.Equal(want) {
					t.Errorf("TerminationTime = %v, want %v", j.TerminationTime, want)
				}
			},
		},
		{
			name:  "job id kept byte for byte",
			inner: `<JobId> job 1 </JobId><Status>Active</Status>`,
			check: func(t *testing.T, j job.Job) {
				if j.ID != " job 1 " {
					t.Errorf("ID = %q, want \" job 1 \" with its spaces", j.ID)
				}
			},
		},
		{
			name:  "job id with escapes, tabs, newlines and non-ASCII",
			inner: "<JobId>\tj+%2F/&amp;&#xD;\n任务 </JobId><Status>Active</Status>",
			check: func(t *testing.T, j job.Job) {
				if want := "\tj+%2F/&\r\n任务 "; j.ID != want {
					t.Errorf("ID = %q, want %q", j.ID, want)
				}
			},
		},
		{
			name:  "escaped text",
			inner: `<JobId>a</JobId><Status>Active</Status><Description>tags &amp; ACLs &lt;prod&gt; "q"</Description>`,
			check: func(t *testing.T, j job.Job) {
				if j.Description != `tags & ACLs <prod> "q"` {
					t.Errorf("Description = %q", j.Description)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := `<ListJobsResult><Jobs><JobListDescriptor>` + tt.inner + `</JobListDescriptor></Jobs><Unknown/></ListJobsResult>`
			page, err := DecodeListJobs([]byte(body))
			if err != nil {
				t.Fatalf("DecodeListJobs: %v", err)
			}
			if len(page.Jobs) != 1 {
				t.Fatalf("got %d jobs, want 1", len(page.Jobs))
			}
			tt.check(t, page.Jobs[0])
		})
	}
}

func TestDecodeListJobsRejects(t *testing.T) {
	t.Parallel()
	full := []byte(referenceExample)
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"empty", "", "empty body"},
		{"truncated", string(full[:len(full)/2]), "unexpected EOF"},
		{"truncated at an element end", strings.TrimSuffix(referenceExample, "</ListJobsResult>"), "unexpected EOF"},
		{"wrong root", `<Error><Code>X</Code></Error>`, "expected element type <ListJobsResult>"},
		{"not xml", `{"Jobs": []}`, "xml"},
		{"mismatched tags", `<ListJobsResult><Jobs></ListJobsResult>`, "xml"},
		{"trailing garbage", referenceExample + `<ListJobsResult/>`, "after root element"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			page, err := DecodeListJobs([]byte(tt.body))
			if err == nil {
				t.Fatalf("DecodeListJobs succeeded with %d jobs, want an error", len(page.Jobs))
			}
			if page != nil {
				t.Errorf("page = %+v, want nil with an error", page)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestDecodeOddValues: a well-formed value out of range never rejects the
// page. An unambiguous millisecond time is read as such; any other leaves
// its field zero and records an anomaly with the raw text, and the job
// stays JSON-encodable.
func TestDecodeOddValues(t *testing.T) {
	t.Parallel()
	ms := time.Date(2025, 6, 15, 10, 30, 0, 123e6, time.UTC)
	tests := []struct {
		name    string
		inner   string // elements besides JobId and Status
		check   func(j job.Job) bool
		anomaly *job.Anomaly
	}{
		{
			name:  "creation time in milliseconds",
			inner: `<CreationTime>1749983400123</CreationTime>`,
			check: func(j job.Job) bool { return j.CreationTime.Equal(ms) },
		},
		{
			name:  "termination date in milliseconds",
			inner: `<TerminationDate>1749983400123</TerminationDate>`,
			check: func(j job.Job) bool { return j.TerminationTime.Equal(ms) },
		},
		{
			name:  "seconds at year 9999 stay seconds",
			inner: `<CreationTime>253402300799</CreationTime>`,
			check: func(j job.Job) bool { return j.CreationTime.Year() == 9999 },
		},
		{
			name:    "microseconds are no time",
			inner:   `<CreationTime>1749983400123456</CreationTime>`,
			check:   func(j job.Job) bool { return j.CreationTime.IsZero() },
			anomaly: &job.Anomaly{Field: "CreationTime", Raw: "1749983400123456"},
		},
		{
			name:    "milliseconds past 2200 are no time",
			inner:   `<TerminationDate>7258118400000</TerminationDate>`,
			check:   func(j job.Job) bool { return j.TerminationTime.IsZero() },
			anomaly: &job.Anomaly{Field: "TerminationDate", Raw: "7258118400000"},
		},
		{
			name:    "text where an integer must be",
			inner:   `<Priority>-x1</Priority>`,
			check:   func(j job.Job) bool { return j.Priority == 0 },
			anomaly: &job.Anomaly{Field: "Priority", Raw: "-x1"},
		},
		{
			name:    "text where a time must be",
			inner:   `<CreationTime>yesterday</CreationTime>`,
			check:   func(j job.Job) bool { return j.CreationTime.IsZero() },
			anomaly: &job.Anomaly{Field: "CreationTime", Raw: "yesterday"},
		},
		{
			name:    "fractional time",
			inner:   `<CreationTime>1749983400.5</CreationTime>`,
			check:   func(j job.Job) bool { return j.CreationTime.IsZero() },
			anomaly: &job.Anomaly{Field: "CreationTime", Raw: "1749983400.5"},
		},
		{
			name:    "negative time",
			inner:   `<CreationTime>-5</CreationTime>`,
			check:   func(j job.Job) bool { return j.CreationTime.IsZero() },
			anomaly: &job.Anomaly{Field: "CreationTime", Raw: "-5"},
		},
		{
			name:    "time overflows int64",
			inner:   `<CreationTime> 99999999999999999999 </CreationTime>`,
			check:   func(j job.Job) bool { return j.CreationTime.IsZero() },
			anomaly: &job.Anomaly{Field: "CreationTime", Raw: " 99999999999999999999 "},
		},
		{
			name:    "ISO time past year 9999 in UTC",
			inner:   `<TerminationDate>9999-12-31T23:00:00-02:00</TerminationDate>`,
			check:   func(j job.Job) bool { return j.TerminationTime.IsZero() },
			anomaly: &job.Anomaly{Field: "TerminationDate", Raw: "9999-12-31T23:00:00-02:00"},
		},
		{
			name:    "ISO time before year 0 in UTC",
			inner:   `<CreationTime>0000-01-01T00:30:00+01:00</CreationTime>`,
			check:   func(j job.Job) bool { return j.CreationTime.IsZero() },
			anomaly: &job.Anomaly{Field: "CreationTime", Raw: "0000-01-01T00:30:00+01:00"},
		},
		{
			name:    "counter overflows int64",
			inner:   `<ProgressSummary><TotalNumberOfTasks>9223372036854775808</TotalNumberOfTasks><NumberOfTasksSucceeded>7</NumberOfTasksSucceeded></ProgressSummary>`,
			check:   func(j job.Job) bool { return j.Tasks == job.Tasks{Succeeded: 7} },
			anomaly: &job.Anomaly{Field: "TotalNumberOfTasks", Raw: "9223372036854775808"},
		},
		{
			name:    "negative counter",
			inner:   `<ProgressSummary><NumberOfTasksFailed>-3</NumberOfTasksFailed></ProgressSummary>`,
			check:   func(j job.Job) bool { return j.Tasks.Failed == 0 },
			anomaly: &job.Anomaly{Field: "NumberOfTasksFailed", Raw: "-3"},
		},
		{
			name:    "negative elapsed time",
			inner:   `<ProgressSummary><Timers><ElapsedTimeInActiveSeconds>-1</ElapsedTimeInActiveSeconds></Timers></ProgressSummary>`,
			check:   func(j job.Job) bool { return j.ElapsedActiveSeconds == 0 },
			anomaly: &job.Anomaly{Field: "ElapsedTimeInActiveSeconds", Raw: "-1"},
		},
		{
			name:  "negative priority is a priority",
			inner: `<Priority>-2</Priority>`,
			check: func(j job.Job) bool { return j.Priority == -2 },
		},
		{
			name:    "priority overflows int64",
			inner:   `<Priority>-9223372036854775809</Priority>`,
			check:   func(j job.Job) bool { return j.Priority == 0 },
			anomaly: &job.Anomaly{Field: "Priority", Raw: "-9223372036854775809"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The odd job sits between two ordinary ones: the page is kept
			// whole.
			body := `<ListJobsResult><Jobs>` +
				`<JobListDescriptor><JobId>a</JobId><Status>Active</Status><CreationTime>1749983400</CreationTime></JobListDescriptor>` +
				`<JobListDescriptor><JobId>b</JobId><Status>Active</Status>` + tt.inner + `</JobListDescriptor>` +
				`<JobListDescriptor><JobId>c</JobId><Status>Active</Status></JobListDescriptor>` +
				`</Jobs></ListJobsResult>`
			page, err := DecodeListJobs([]byte(body))
			if err != nil {
				t.Fatalf("DecodeListJobs: %v", err)
			}
			if len(page.Jobs) != 3 || len(page.Jobs[0].Anomalies) != 0 || len(page.Jobs[2].Anomalies) != 0 {
				t.Fatalf("jobs = %+v, want three, anomalies on the odd one only", page.Jobs)
			}
			j := page.Jobs[1]
			if !tt.check(j) {
				t.Errorf("job = %+v", j)
			}
			switch {
			case tt.anomaly == nil && j.Anomalies != nil:
				t.Errorf("anomalies = %+v, want none", j.Anomalies)
			case tt.anomaly != nil && (len(j.Anomalies) != 1 || j.Anomalies[0].Field != tt.anomaly.Field || j.Anomalies[0].Raw != tt.anomaly.Raw || j.Anomalies[0].Reason == ""):
				t.Errorf("anomalies = %+v, want one for %s with raw %q and a reason", j.Anomalies, tt.anomaly.Field, tt.anomaly.Raw)
			}
			b, err := json.Marshal(j)
			if err != nil {
				t.Fatalf("json.Marshal(%+v): %v", j, err)
			}
			if tt.anomaly != nil && !bytes.Contains(b, []byte(`"anomalies":[{"field":"`+tt.anomaly.Field+`"`)) {
				t.Errorf("JSON %s does not keep the anomaly", b)
			}
			if tt.anomaly == nil && bytes.Contains(b, []byte("anomalies")) {
				t.Errorf("JSON %s names anomalies, want the key omitted", b)
			}
		})
	}
}

func TestDecodeDescribeJob(t *testing.T) {
	t.Parallel()
	body := `<?xml version="1.0" encoding="UTF-8"?>
<DescribeJobResult><Job>
  <JobId>j1</JobId><Status>Failed</Status><Priority>3</Priority>
  <Operation><PutObjectTagging><TagSet/></PutObjectTagging></Operation>
  <ConfirmationRequired>false</ConfirmationRequired>
  <FailureReasons>
    <JobFailure><FailureCode>ManifestNotFound</FailureCode><FailureReason>manifest.csv is missing</FailureReason></JobFailure>
    <JobFailure><FailureCode>AccessDenied</FailureCode><FailureReason>role cannot read</FailureReason></JobFailure>
  </FailureReasons>
  <StatusUpdateReason>failed by system</StatusUpdateReason>
  <RoleArn>acs:ram::1:role/batch</RoleArn>
  <Report><Bucket>b</Bucket><Enabled>true</Enabled></Report>
</Job></DescribeJobResult>`
	d, err := DecodeDescribeJob([]byte(body))
	if err != nil {
		t.Fatalf("DecodeDescribeJob: %v", err)
	}
	if d.ID != "j1" || d.Status != job.StatusFailed || d.Operation != "PutObjectTagging" || d.Priority != 3 {
		t.Errorf("job = %+v", d.Job)
	}
	want := []job.FailureReason{{Code: "ManifestNotFound", Reason: "manifest.csv is missing"}, {Code: "AccessDenied", Reason: "role cannot read"}}
	if fmt.Sprint(d.FailureReasons) != fmt.Sprint(want) {
		t.Errorf("FailureReasons = %v, want %v", d.FailureReasons, want)
	}
	if d.StatusUpdateReason != "failed by system" || d.ConfirmationRequired || d.RoleARN != "acs:ram::1:role/batch" {
		t.Errorf("detail = %+v", d)
	}

	if _, err := DecodeDescribeJob([]byte(`<DescribeJobResult><Job><JobId>j</JobId><Status>Suspended</Status><ConfirmationRequired>perhaps</ConfirmationRequired></Job></DescribeJobResult>`)); err == nil || !strings.Contains(err.Error(), "ConfirmationRequired") {
		t.Errorf("bad boolean: err = %v, want one naming ConfirmationRequired", err)
	}
	empty, err := DecodeDescribeJob([]byte(`<DescribeJobResult><Job><JobId>j</JobId><Status>Active</Status><FailureReasons><JobFailure/></FailureReasons></Job></DescribeJobResult>`))
	if err != nil || empty.FailureReasons == nil || len(empty.FailureReasons) != 0 {
		t.Errorf("an empty JobFailure: reasons %#v, err %v; want an empty list", empty.FailureReasons, err)
	}
	if _, err := DecodeDescribeJob([]byte(`<DescribeJobResult></DescribeJobResult>`)); err == nil {
		t.Error("missing Job element: want an error")
	}
}

// FuzzDecodeListJobs checks that no body makes the decoder panic, and that
// every accepted page is usable: no id is blank but not empty (an empty id,
// or an empty status, is left out by the sweep, which names it);
// and encodes as JSON (a time past year 9999 would not: it must have become
// an anomaly).
func FuzzDecodeListJobs(f *testing.F) {
	f.Add([]byte(referenceExample))
	f.Add(listJobsBody(3, "tok+/=:?#"))
	f.Add([]byte(`<ListJobsResult><Jobs><JobListDescriptor><JobId>a</JobId><Status>X</Status><CreationTime>2025-01-01T00:00:00Z</CreationTime></JobListDescriptor></Jobs></ListJobsResult>`))
	f.Add([]byte(`<ListJobsResult><Jobs>`))
	f.Add([]byte(`<ListJobsResult><Jobs><JobListDescriptor><JobId> a b </JobId><Status>Active</Status><CreationTime>1749983400123</CreationTime><TerminationDate>9999-12-31T23:59:59-01:00</TerminationDate><ProgressSummary><TotalNumberOfTasks>-1</TotalNumberOfTasks></ProgressSummary></JobListDescriptor></Jobs></ListJobsResult>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := DecodeListJobs(body)
		if err != nil {
			if page != nil {
				t.Fatal("a page came back with an error")
			}
			return
		}
		for _, j := range page.Jobs {
			if j.ID != "" && strings.TrimSpace(j.ID) == "" {
				t.Fatalf("accepted job with a blank id: %+v", j)
			}
			if _, err := json.Marshal(j); err != nil {
				t.Fatalf("accepted job that JSON cannot encode: %+v: %v", j, err)
			}
			for _, a := range j.Anomalies {
				if a.Field == "" || a.Reason == "" {
					t.Fatalf("anomaly without field or reason: %+v", a)
				}
			}
		}
	})
}

// listJobsBody renders a page of n jobs the way OSS does.
func listJobsBody(n int, next string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<ListJobsResult>")
	if next != "" {
		fmt.Fprintf(&b, "<NextToken>%s</NextToken>", next)
	}
	b.WriteString("<Jobs>")
	for i := range n {
		fmt.Fprintf(&b, `<JobListDescriptor><CreationTime>%d</CreationTime><Description>Batch job %d for setting object tags</Description><JobId>%s</JobId><Operation>PutObjectTagging</Operation><Priority>%d</Priority><ProgressSummary><NumberOfTasksFailed>%d</NumberOfTasksFailed><NumberOfTasksSucceeded>%d</NumberOfTasksSucceeded><Timers><ElapsedTimeInActiveSeconds>%d</ElapsedTimeInActiveSeconds></Timers><TotalNumberOfTasks>100000</TotalNumberOfTasks></ProgressSummary><Status>Active</Status><TerminationDate>0</TerminationDate></JobListDescriptor>`,
			1749983400+i, i, fmt.Sprintf("MzRjZGU2NGQ3YTY5NGRhMTkxZmZhYzY5OTM5%06d=", i), i%100, i%7, i*13, i*3)
	}
	b.WriteString("</Jobs></ListJobsResult>")
	return b.Bytes()
}

func BenchmarkDecodeListJobs1000(b *testing.B) {
	body := listJobsBody(1000, "next")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		page, err := DecodeListJobs(body)
		if err != nil || len(page.Jobs) != 1000 {
			b.Fatalf("decode: %v", err)
		}
	}
}
