package oss

import (
	"strings"
	"testing"
)

// FuzzDecodeListJobsScanner checks DecodeListJobs, which takes the
// scanner's fast path where it can, against encoding/xml alone: the same
// page or the same error, byte for byte.
func FuzzDecodeListJobsScanner(f *testing.F) {
	for _, seed := range scannerSeeds() {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkScanner(t, body)
	})
}

func checkScanner(t *testing.T, body []byte) {
	t.Helper()
	got, gotErr := DecodeListJobs(body)
	want, wantErr := decodeListJobsXML(body)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("body %q:\nerror %v\nwant  %v", body, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if got.NextToken != want.NextToken || len(got.Jobs) != len(want.Jobs) {
		t.Fatalf("body %q:\npage %+v\nwant %+v", body, got, want)
	}
	for i := range got.Jobs {
		if !got.Jobs[i].Equal(want.Jobs[i]) || got.Jobs[i].CreationTime.Location() != want.Jobs[i].CreationTime.Location() {
			t.Fatalf("body %q: job %d:\n%+v\nwant %+v", body, i, got.Jobs[i], want.Jobs[i])
		}
	}
}

// TestScannerTakesOSSPages: the pages OSS and the simulator send take the
// fast path, and odd ones agree with encoding/xml.
func TestScannerTakesOSSPages(t *testing.T) {
	t.Parallel()
	simulated := `<?xml version="1.0" encoding="UTF-8"?>
<ListJobsResult>
  <NextToken>v1:+/+/yfwtxDoU==?#</NextToken>
  <Jobs>
    <JobListDescriptor>
      <Description>Set ACL to private: owner&#39;s request &#34;q&#34; &amp; &lt;b&gt;</Description>
      <JobId>M2E0MWNmZjBkYjAyZmVmYTg4MjZmNjY3ZDE4NmZjZDI=</JobId>
      <Status>Paused</Status>
    </JobListDescriptor>
  </Jobs>
</ListJobsResult>`
	for _, body := range [][]byte{[]byte(referenceExample), []byte(simulated), listJobsBody(50, "tok"), listJobsBody(0, "")} {
		var r xmlListJobsResult
		if !scanListJobs(body, &r) {
			t.Errorf("fast path refused %.200q", body)
		}
	}
	for _, seed := range scannerSeeds() {
		checkScanner(t, []byte(seed))
	}
}

func scannerSeeds() []string {
	d := func(inner string) string {
		return `<ListJobsResult><Jobs><JobListDescriptor>` + inner + `</JobListDescriptor></Jobs></ListJobsResult>`
	}
	seeds := []string{
		referenceExample,
		string(listJobsBody(3, "tok+/=:?#")),
		"",
		"   ",
		`<ListJobsResult/>`,
		`<ListJobsResult></ListJobsResult>` + "\n\r\t ",
		`<ListJobsResult></ListJobsResult>x`,
		`<ListJobsResult></ListJobsResult><!-- c -->`,
		`junk<ListJobsResult></ListJobsResult>`,
		`<?xml version="1.0" encoding="GBK"?><ListJobsResult/>`,
		`<?xml version="1.1"?><ListJobsResult/>`,
		`<ListJobsResult xmlns="http://doc.oss-cn-hangzhou.aliyuncs.com"><NextToken>a</NextToken></ListJobsResult>`,
		`<ListJobsResult><NextToken>a</NextToken><NextToken>b</NextToken></ListJobsResult>`,
		`<ListJobsResult><NextToken> a&amp;b </NextToken></ListJobsResult>`,
		`<ListJobsResult><NextToken>a<b/>c</NextToken></ListJobsResult>`,
		`<ListJobsResult><Jobs/><Jobs><JobListDescriptor/></Jobs></ListJobsResult>`,
		`<ListJobsResult><Jobs><X><JobListDescriptor><JobId>a</JobId></JobListDescriptor></X></Jobs></ListJobsResult>`,
		`<ListJobsResult><JobListDescriptor><JobId>a</JobId></JobListDescriptor></ListJobsResult>`,
		`<ListJobsResult><Jobs><JobListDescriptor><JobId>a</JobId></JobListDescriptor></Jobs><Jobs><JobListDescriptor><JobId>b</JobId><Status>Active</Status></JobListDescriptor></Jobs></ListJobsResult>`,
		d(`<JobId>a</JobId><Status>Active</Status>`),
		d(`<JobId>a</JobId><JobId>b</JobId><Status>Active</Status>`),
		d(`<JobId/><Status>Active</Status>`),
		d("<JobId> \n </JobId><Status>Active</Status>"),
		d("<JobId>a\r\nb</JobId><Status>Active</Status>"),
		d(`<JobId>a&#x41;</JobId><Status>Active</Status>`),
		d(`<JobId>a&#0;</JobId><Status>Active</Status>`),
		d(`<JobId>a&#39;&#34;&#x27;&#X27;</JobId><Status>Active</Status>`),
		d(`<JobId>a&#xD800;&#xFFFE;</JobId><Status>Active</Status>`),
		d(`<JobId>a&#xD800;</JobId><Status>Active</Status>`),
		d(`<JobId>a&#x110000;&#;&#x;</JobId><Status>Active</Status>`),
		d(`<JobId>a&#99999999999999999999999;</JobId><Status>Active</Status>`),
		d(`<JobId>a&#1 2;</JobId><Status>Active</Status>`),
		d(`<JobId>&#x9;&#xD;&#xA;</JobId><Status>Active</Status>`),
		d(`<JobId>a&nbsp;</JobId><Status>Active</Status>`),
		d(`<JobId>a&amp</JobId><Status>Active</Status>`),
		d(`<JobId>a]]></JobId><Status>Active</Status>`),
		d(`<JobId>a]]&amp;></JobId><Status>Active</Status>`),
		d(`<JobId>a]b</JobId><Status>Active</Status>`),
		d("<JobId>任务\u00a0</JobId><Status>Active</Status>"),
		d("<JobId>a\xff</JobId><Status>Active</Status>"),
		d("<JobId>a\uFFFE</JobId><Status>Active</Status>"),
		d("<JobId>a\x01</JobId><Status>Active</Status>"),
		d(`<JobId><![CDATA[a]]></JobId><Status>Active</Status>`),
		d(`<JobId>a<!--x-->b</JobId><Status>Active</Status>`),
		d(`<JobId id="1">a</JobId><Status>Active</Status>`),
		d(`<JobId >a</JobId ><Status>Active</Status>`),
		d(`<oss:JobId>a</oss:JobId><Status>Active</Status>`),
		d(`<JobId>a</Jobid><Status>Active</Status>`),
		d(`<JobId>a</JobId><Status>Active</Status><Operation><PutObjectTagging/></Operation>`),
		d(`<JobId>a</JobId><Status>Active</Status><Operation> Put </Operation>`),
		d(`<JobId>a</JobId><Status>Active</Status><ProgressSummary/><Priority/>`),
		d(`<JobId>a</JobId><Status>Active</Status><ProgressSummary><TotalNumberOfTasks>1</TotalNumberOfTasks></ProgressSummary><ProgressSummary><NumberOfTasksFailed>2</NumberOfTasksFailed></ProgressSummary>`),
		d(`<JobId>a</JobId><Status>Active</Status><ProgressSummary><ElapsedTimeInActiveSeconds>5</ElapsedTimeInActiveSeconds><Timers><ElapsedTimeInActiveSeconds> </ElapsedTimeInActiveSeconds></Timers></ProgressSummary>`),
		d(`<JobId>a</JobId><Status>Active</Status><ProgressSummary><Timers><ElapsedTimeInActiveSeconds>1</ElapsedTimeInActiveSeconds><ElapsedTimeInActiveSeconds>2</ElapsedTimeInActiveSeconds></Timers></ProgressSummary>`),
		d(`<JobId>a</JobId><Status>Active</Status><CreationTime>1749983400123</CreationTime><TerminationDate>x</TerminationDate>`),
		d(`<JobId>a</JobId><Status>Active</Status><Future a="b"><Deep/></Future>`),
		d(`<JobId>a</JobId><Status>Active</Status><Future><Deep></Future>`),
		d(`<JobId>a</JobId><Status>Active</Status><FailureReasons><JobFailure><FailureCode>x</FailureCode></JobFailure></FailureReasons>`),
		d(`<JobId>a</JobId>`),
		`<ListJobsResult><Jobs><JobListDescriptor><JobId>a</JobId>`,
		`<ListJobsResult><Jobs><JobListDescriptor><JobId>a`,
		`<Error><Code>X</Code></Error>`,
		`<ListJobsResult>` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `</ListJobsResult>`,
		`<ListJobsResult>`,
	}
	return seeds
}
