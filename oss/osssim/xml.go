package osssim

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"strings"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
)

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// xmlWriter writes indented XML, as OSS does, by hand: element order and the
// per-job variants matter, and encoding/xml's struct tags cannot express
// "Timers for this job, not for that one".
type xmlWriter struct {
	b     bytes.Buffer
	depth int
}

func newXMLWriter() *xmlWriter {
	x := &xmlWriter{}
	x.b.WriteString(xmlHeader)
	return x
}

func (x *xmlWriter) indent() {
	for range x.depth {
		x.b.WriteString("  ")
	}
}

func (x *xmlWriter) open(name string) {
	x.indent()
	x.b.WriteString("<" + name + ">\n")
	x.depth++
}

func (x *xmlWriter) close(name string) {
	x.depth--
	x.indent()
	x.b.WriteString("</" + name + ">\n")
}

func (x *xmlWriter) leaf(name, text string) {
	x.indent()
	x.b.WriteString("<" + name + ">")
	// EscapeText never fails writing to a bytes.Buffer; it also replaces
	// invalid UTF-8, which a Put job may hold.
	_ = xml.EscapeText(&x.b, []byte(text))
	x.b.WriteString("</" + name + ">\n")
}

func (x *xmlWriter) int(name string, v int64) { x.leaf(name, strconv.FormatInt(v, 10)) }

func (x *xmlWriter) bytes() []byte { return x.b.Bytes() }

// apiError is an OSS error answer.
type apiError struct {
	status     int
	code       string
	message    string
	ec         string
	retryAfter time.Duration
	// extra elements after HostId, as OSS adds for some codes.
	extra [][2]string
}

// body renders the error as OSS does. It never holds a secret or a
// signature: callers build messages from public request parts only.
func (e *apiError) body(requestID, hostID string) []byte {
	x := newXMLWriter()
	x.open("Error")
	x.leaf("Code", e.code)
	x.leaf("Message", e.message)
	x.leaf("RequestId", requestID)
	x.leaf("HostId", hostID)
	for _, kv := range e.extra {
		x.leaf(kv[0], kv[1])
	}
	x.leaf("EC", e.ec)
	if e.ec != "" {
		x.leaf("RecommendDoc", "https://api.aliyun.com/troubleshoot?q="+e.ec)
	}
	x.close("Error")
	return x.bytes()
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// writeDescriptor writes the elements of one job, in the API pages' order
// (DescribeJob's extra elements when detail is set), and an unknown
// element when unknown is set and the job's Shape names one.
func writeDescriptor(x *xmlWriter, d *job.Detail, sh Shape, unknown, detail bool) {
	if detail {
		x.leaf("ConfirmationRequired", strconv.FormatBool(d.ConfirmationRequired))
	}
	x.int("CreationTime", unixOrZero(d.CreationTime))
	x.leaf("Description", d.Description)
	if detail {
		writeFailureReasons(x, d, sh)
	}
	x.leaf("JobId", d.ID)
	if unknown && sh.UnknownElement == "StorageClassHint" {
		x.leaf("StorageClassHint", "Standard")
	}
	if detail {
		writeManifest(x, d.ID)
	}
	x.leaf("Operation", d.Operation)
	x.int("Priority", d.Priority)
	x.open("ProgressSummary")
	x.int("NumberOfTasksFailed", d.Tasks.Failed)
	x.int("NumberOfTasksSucceeded", d.Tasks.Succeeded)
	if sh.NestedTimers {
		x.open("Timers")
		x.int("ElapsedTimeInActiveSeconds", d.ElapsedActiveSeconds)
		x.close("Timers")
	} else {
		x.int("ElapsedTimeInActiveSeconds", d.ElapsedActiveSeconds)
	}
	x.int("TotalNumberOfTasks", d.Tasks.Total)
	x.close("ProgressSummary")
	if detail {
		writeReport(x, d.ID)
		x.leaf("RoleArn", d.RoleARN)
	}
	if unknown && sh.UnknownElement == "Tags" {
		x.open("Tags")
		x.open("Tag")
		x.leaf("Key", "team")
		x.leaf("Value", "storage & <ops>")
		x.close("Tag")
		x.close("Tags")
	}
	x.leaf("Status", string(d.Status))
	if detail {
		x.leaf("StatusUpdateReason", d.StatusUpdateReason)
	}
	switch {
	case !d.TerminationTime.IsZero():
		x.int("TerminationDate", d.TerminationTime.Unix())
	case sh.ZeroTerminationDate:
		x.int("TerminationDate", 0)
	}
}

func writeFailureReasons(x *xmlWriter, d *job.Detail, sh Shape) {
	x.open("FailureReasons")
	for _, f := range d.FailureReasons {
		x.open("JobFailure")
		x.leaf("FailureCode", f.Code)
		x.leaf("FailureReason", f.Reason)
		x.close("JobFailure")
	}
	if len(d.FailureReasons) == 0 && sh.EmptyJobFailure {
		x.indent()
		x.b.WriteString("<JobFailure/>\n")
	}
	x.close("FailureReasons")
}

// writeManifest and writeReport derive their content from the JobId: the
// shared job.Detail does not carry it and ossjobwatch does not use it, but a
// faithful answer has it.
func writeManifest(x *xmlWriter, id string) {
	short := shortID(id)
	x.open("Manifest")
	x.open("Location")
	x.leaf("Bucket", "ossjobwatch-manifests")
	x.leaf("Object", "manifests/"+short+".csv")
	x.leaf("ETag", strings.ToUpper(short+short))
	x.close("Location")
	x.open("Spec")
	x.leaf("Fields", "Bucket,Key")
	x.leaf("Format", "OSS_BatchOperations_CSV_20250611")
	x.close("Spec")
	x.close("Manifest")
}

func writeReport(x *xmlWriter, id string) {
	scope := "AllTasks"
	if len(id) > 0 && id[0]%2 == 0 {
		scope = "FailedTasksOnly"
	}
	x.open("Report")
	x.leaf("Bucket", "ossjobwatch-reports")
	x.leaf("Enabled", "true")
	x.leaf("Prefix", "reports/"+shortID(id)+"/")
	x.leaf("ReportScope", scope)
	x.close("Report")
}

// shortID returns 16 hex digits derived from a JobId.
func shortID(id string) string { return strconv.FormatUint(fnv64("short\x00"+id)|1<<63, 16) }

// fnv64 is FNV-1a, inlined because hash/fnv allocates on every call and
// ShapeOf runs for every job on every page.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(s) {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// Shape tells how the simulator writes one job's XML. Real OSS answers vary
// in these ways; the choice is fixed per JobId so a test can predict it.
type Shape struct {
	// NestedTimers: ElapsedTimeInActiveSeconds sits under
	// ProgressSummary/Timers; otherwise directly under ProgressSummary.
	NestedTimers bool
	// ZeroTerminationDate: a job without a termination time shows
	// <TerminationDate>0</TerminationDate>; otherwise the element is absent.
	ZeroTerminationDate bool
	// EmptyJobFailure: a DescribeJob answer for a job without failures holds
	// one empty JobFailure in FailureReasons; otherwise FailureReasons is empty.
	EmptyJobFailure bool
	// UnknownElement names the element unknown to clients that descriptors
	// of this job carry when Config.UnknownElements is on ("" for none).
	UnknownElement string
}

// ShapeOf returns the Shape of the job with the given JobId.
func ShapeOf(jobID string) Shape {
	t := fnv64(jobID)
	sh := Shape{NestedTimers: t&1 == 0, ZeroTerminationDate: t&2 == 0, EmptyJobFailure: t&4 == 0}
	switch (t >> 3) % 4 {
	case 0:
		sh.UnknownElement = "Tags"
	case 1:
		sh.UnknownElement = "StorageClassHint"
	}
	return sh
}
