package main

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// secretPieces returns every five-byte piece of secret in each form it may
// take in an output: as is, decoded, escaped for a path, a query or a URL's
// user information, and as %q shows each of those.
func secretPieces(secret string) []string {
	forms := []string{secret}
	if d, err := url.PathUnescape(secret); err == nil {
		forms = append(forms, d)
	}
	if d, err := url.QueryUnescape(secret); err == nil {
		forms = append(forms, d)
	}
	for _, f := range forms[:len(forms):len(forms)] {
		forms = append(forms, url.PathEscape(f), url.QueryEscape(f), url.UserPassword("u", f).String()[2:])
	}
	for _, f := range forms[:len(forms):len(forms)] {
		q := strconv.Quote(f)
		forms = append(forms, q[1:len(q)-1])
	}
	var out []string
	for _, f := range forms {
		for i := 0; i+5 <= len(f); i++ {
			out = append(out, f[i:i+5])
		}
	}
	return out
}

func checkNoSecret(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, p := range secretPieces(s) {
			if strings.Contains(out, p) {
				t.Errorf("%s shows %q, part of the secret %q:\n%s", what, p, s, out)
				return
			}
		}
	}
}

// notifyBuffer is a syncBuffer that lets a test wait for a string.
type notifyBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	written chan struct{}
}

func (n *notifyBuffer) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case n.written <- struct{}{}:
	default:
	}
	return n.b.Write(p)
}

func (n *notifyBuffer) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.String()
}

func (n *notifyBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(n.String(), s) {
		select {
		case <-n.written:
		case <-deadline:
			t.Fatalf("no %q in the output after 30s:\n%s", s, n.String())
		}
	}
}

// TestVerbsHideURLSecrets runs the verbs that take a NATS URL or a database
// URL with hostile ones, through the real code paths (the NATS servers and
// the databases do not answer), and checks that no form of a password or
// token reaches stdout, stderr or the logs.
func TestVerbsHideURLSecrets(t *testing.T) {
	// Not parallel: the default credential chain reads the process
	// environment, set with t.Setenv.
	sim, ossCfg := osstest.Start(t, osssim.Config{Jobs: 3, Seed: 1})
	key := osssim.DefaultCredential
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key.AccessKeyID)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", key.AccessKeySecret)
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	dbURL := storetest.NewDatabaseURL(t)
	base := map[string]string{
		"OSSJOBWATCH_DATABASE_URL": dbURL,
		"OSSJOBWATCH_REGION":       sim.Region(),
		"OSSJOBWATCH_ENDPOINT":     ossCfg.Endpoint,
		"OSSJOBWATCH_TARGET":       "hz",
		"OSSJOBWATCH_HTTP_LISTEN":  "off",
	}
	with := func(k, v string) map[string]string {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		env[k] = v
		return env
	}

	natsURLs := []struct {
		name, url string
		secrets   []string
	}{
		{"no scheme", "user:Qz7KpWm4Vn@127.0.0.1:1", []string{"Qz7KpWm4Vn"}},
		{"no scheme, second server", "nats://127.0.0.1:1,user:Qz7KpWm4Vn@127.0.0.1:2", []string{"Qz7KpWm4Vn"}},
		{"bad escape", "nats://user:Qz7Kp%zzWm4Vn@127.0.0.1:1", []string{"Qz7Kp%zzWm4Vn"}},
		{"unescaped / and @", "nats://user:Qz7Kp/Wm4Vn@Hx9Lc@127.0.0.1:1", []string{"Qz7Kp/Wm4Vn@Hx9Lc"}},
		{"escaped %40 and :", "nats://user:Qz7Kp%40Wm4Vn:Hx9Lc@127.0.0.1:1", []string{"Qz7Kp%40Wm4Vn:Hx9Lc"}},
		{"servers and IPv6", "nats://a:Qz7KpAlpha@[::1]:1,tls://Wm4VnToken@127.0.0.1:2", []string{"Qz7KpAlpha", "Wm4VnToken"}},
	}
	for _, tt := range natsURLs {
		env := with("OSSJOBWATCH_NATS_URL", tt.url)
		for _, args := range [][]string{
			{"run", "--check-config"},
			{"sweep", "--publish-timeout", "5s"},
			{"tail"},
			{"replay", "--since", "1h"},
		} {
			code, stdout, stderr := runSync(env, args...)
			if code == exitOK && args[0] != "run" {
				t.Errorf("%s: %s succeeded with NATS unreachable", tt.name, args[0])
			}
			checkNoSecret(t, tt.name+": "+strings.Join(args, " ")+" output", stdout+stderr, tt.secrets...)
		}

		// The daemon retries NATS and logs each failure: run it until it has.
		var stdout, stderr notifyBuffer
		stderr.written = make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- runRun(ctx, cli{getenv: func(k string) string { return env[k] }, stdout: &stdout, stderr: &stderr})
		}()
		want := "NATS not ready"
		if !strings.Contains(tt.url, "://") {
			want = "OSSJOBWATCH_NATS_URL" // refused by the configuration
		}
		stderr.waitFor(t, want)
		cancel()
		<-done
		checkNoSecret(t, tt.name+": run output", stdout.String()+stderr.String(), tt.secrets...)
	}

	dbURLs := []struct {
		name, url string
		secrets   []string
	}{
		{"bad escape", "postgres://u:Qz7Kp%zzWm4Vn@127.0.0.1:1/db", []string{"Qz7Kp%zzWm4Vn"}},
		{"unescaped / and @", "postgres://u:Qz7Kp/Wm4Vn@Hx9Lc@127.0.0.1:1/db", []string{"Qz7Kp/Wm4Vn@Hx9Lc"}},
		{"escaped %40", "postgres://u:Qz7Kp%40Wm4Vn@127.0.0.1:1/db?connect_timeout=5", []string{"Qz7Kp%40Wm4Vn"}},
		{"hosts and IPv6", "postgres://u:Qz7KpWm4Vn@[::1]:1,127.0.0.1:2/db?connect_timeout=5", []string{"Qz7KpWm4Vn"}},
		{"password parameter", "postgres://u@127.0.0.1:1/db?password=Qz7Kp%2BWm4Vn+Hx9Lc", []string{"Qz7Kp%2BWm4Vn+Hx9Lc"}},
		{"key=value", `host=127.0.0.1 port=1 user=u password='Qz7Kp Wm4\'Vn' connect_timeout=5`, []string{`Qz7Kp Wm4\'Vn`, `Qz7Kp Wm4'Vn`}},
	}
	for _, tt := range dbURLs {
		env := with("OSSJOBWATCH_DATABASE_URL", tt.url)
		for _, args := range [][]string{
			{"run", "--check-config"},
			{"run"},
			{"sweep"},
			{"migrate"},
			{"history", "job-1"},
			{"replay", "--since", "1h"},
		} {
			code, stdout, stderr := runSync(env, args...)
			if code == exitOK && len(args) == 1 {
				t.Errorf("%s: %s succeeded with the database unreachable", tt.name, args[0])
			}
			checkNoSecret(t, tt.name+": "+strings.Join(args, " ")+" output", stdout+stderr, tt.secrets...)
		}
	}
}
