package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSimulateServes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := runSimulate(ctx, cli{
			args:   []string{"--listen", "127.0.0.1:0", "--jobs", "10", "--tick", "0", "--log-level", "info"},
			getenv: func(string) string { return "" },
			stdout: pw,
			stderr: io.Discard,
		})
		pw.Close()
		done <- code
	}()

	// Read until the last line of the banner: by then the listener is open.
	sc := bufio.NewScanner(pr)
	var endpoint string
	var banner []string
	for sc.Scan() {
		line := sc.Text()
		banner = append(banner, line)
		if rest, ok := strings.CutPrefix(line, "OSS simulator listening on "); ok {
			endpoint, _, _ = strings.Cut(rest, " ")
		}
		if strings.HasPrefix(line, "export ALIBABA_CLOUD_ECS_METADATA_DISABLED=") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") || strings.HasSuffix(endpoint, ":0") {
		t.Fatalf("no usable endpoint in the banner:\n%s", strings.Join(banner, "\n"))
	}
	for _, want := range []string{
		"export OSSJOBWATCH_ENDPOINT=" + endpoint,
		"export OSSJOBWATCH_REGION=cn-hangzhou",
		"export ALIBABA_CLOUD_ACCESS_KEY_ID=",
		"export ALIBABA_CLOUD_ACCESS_KEY_SECRET=",
	} {
		if !strings.Contains(strings.Join(banner, "\n"), want) {
			t.Fatalf("banner lacks %q:\n%s", want, strings.Join(banner, "\n"))
		}
	}

	resp, err := http.Get(endpoint + "/?batchJob")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("<Code>AccessDenied</Code>")) {
		t.Fatalf("unsigned request: %d\n%s", resp.StatusCode, body)
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit code %d after cancel, want %d", code, exitOK)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("simulate did not stop after cancel")
	}
}

func TestSimulateFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"rate above 1", []string{"--throttle-rate", "1.5"}, exitUsage, "--throttle-rate"},
		{"negative rate", []string{"--malformed-rate", "-0.1"}, exitUsage, "--malformed-rate"},
		{"rates sum above 1", []string{"--error-rate", "0.6", "--429-rate", "0.6"}, exitUsage, "--429-rate"},
		{"negative jobs", []string{"--jobs", "-1"}, exitUsage, "--jobs"},
		{"negative tick", []string{"--tick", "-1s"}, exitUsage, "--tick"},
		{"negative slow delay", []string{"--slow-delay", "-1s"}, exitUsage, "--slow-delay"},
		{"bad region", []string{"--region", "CN_Hangzhou"}, exitUsage, "--region"},
		{"empty key id", []string{"--access-key-id", ""}, exitUsage, "--access-key-id"},
		{"bad log level", []string{"--log-level", "loud"}, exitUsage, "--log-level"},
		{"unknown flag", []string{"--nope"}, exitUsage, "-nope"},
		{"argument", []string{"extra"}, exitUsage, "unexpected argument"},
		{"help", []string{"-h"}, exitOK, "-throttle-rate"},
		{"bad address", []string{"--listen", "127.0.0.1:99999"}, exitFailure, "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := runSimulate(context.Background(), cli{
				args: tt.args, getenv: func(string) string { return "" }, stdout: &stdout, stderr: &stderr,
			})
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d mentioning %q", code, stderr.String(), tt.code, tt.want)
			}
		})
	}
}
