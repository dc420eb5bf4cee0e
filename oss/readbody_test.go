package oss

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A body whose length OSS announces is read into one buffer of that size,
// not grown by doubling; a wrong or missing length still reads what came.
func TestReadBodyTakesContentLengthAtItsWord(t *testing.T) {
	page := bytes.Repeat([]byte("<JobListDescriptor/>"), 70_000) // 1.4 MB, a page of 1,000 jobs
	resp := func(length int64, body []byte) *http.Response {
		return &http.Response{ContentLength: length, Body: io.NopCloser(bytes.NewReader(body))}
	}
	allocated := testing.AllocsPerRun(20, func() {
		if _, err := readBody(resp(int64(len(page)), page)); err != nil {
			t.Fatal(err)
		}
	})
	// The buffer, the reader and the response; io.ReadAll takes some twenty
	// more growing its slice from 512 bytes.
	if allocated > 4 {
		t.Errorf("reading a 1.4 MB body of announced length took %.0f allocations, want at most 4", allocated)
	}

	for _, tc := range []struct {
		name   string
		length int64
	}{
		{"no length", -1},
		{"length too small", 10},
		{"length too large", int64(len(page)) * 2},
		{"length above the preallocation cap", preallocMax * 4},
	} {
		got, err := readBody(resp(tc.length, page))
		if err != nil || !bytes.Equal(got, page) {
			t.Errorf("%s: read %d bytes (%v), want the %d sent", tc.name, len(got), err, len(page))
		}
	}
	if got, err := readBody(resp(5, []byte(strings.Repeat("x", 5)))); err != nil || string(got) != "xxxxx" {
		t.Errorf("short body: %q, %v", got, err)
	}
}
