package publisher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/publisher"
)

func TestEnsureStreamManaged(t *testing.T) {
	t.Parallel()
	js := newJetStream(t, natstest.Start(t).Connect(t))
	cfg := publisher.StreamConfig{Managed: true, MaxAge: 24 * time.Hour}
	for i := range 2 { // idempotent
		st, err := publisher.EnsureStream(t.Context(), js, cfg)
		if err != nil {
			t.Fatalf("EnsureStream #%d: %v", i+1, err)
		}
		c := st.Info.Config
		if c.Name != "OSSJOBS" || len(c.Subjects) != 1 || c.Subjects[0] != "ossjobs.>" || c.Storage != jetstream.FileStorage ||
			c.Duplicates != 30*time.Minute || c.MaxAge != 24*time.Hour || c.Replicas != 1 || len(st.Warnings) != 0 {
			t.Errorf("EnsureStream #%d made %+v, warnings %v", i+1, c, st.Warnings)
		}
	}
}

func TestEnsureStreamRefusesBadConfig(t *testing.T) {
	t.Parallel()
	js := newJetStream(t, natstest.Start(t).Connect(t))
	tests := []struct {
		cfg  publisher.StreamConfig
		want string
	}{
		{publisher.StreamConfig{Managed: true, Duplicates: 10 * time.Minute}, "StreamConfig.Duplicates: 10m0s is shorter than the 30m0s"},
		{publisher.StreamConfig{Managed: true, MaxAge: time.Minute}, "StreamConfig.MaxAge: 1m0s is shorter than Duplicates"},
		{publisher.StreamConfig{Managed: true, Name: "a.b"}, "StreamConfig.Name"},
		{publisher.StreamConfig{Managed: true, SubjectPrefix: "a.>"}, "StreamConfig.SubjectPrefix"},
		{publisher.StreamConfig{Managed: true, Replicas: 7}, "StreamConfig.Replicas"},
	}
	for _, tt := range tests {
		if _, err := publisher.EnsureStream(t.Context(), js, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("EnsureStream(%+v) = %v, want an error containing %q", tt.cfg, err, tt.want)
		}
	}
}

func TestEnsureStreamUnmanaged(t *testing.T) {
	t.Parallel()
	js := newJetStream(t, natstest.Start(t).Connect(t))
	create := func(cfg jetstream.StreamConfig) {
		t.Helper()
		if _, err := js.CreateStream(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	// Streams of one server must not overlap: this one has a server of its own.
	wide := newJetStream(t, natstest.Start(t).Connect(t))
	if _, err := wide.CreateStream(t.Context(), jetstream.StreamConfig{Name: "WIDE", Subjects: []string{"other", "acme.*.>"}, Duplicates: time.Hour}); err != nil {
		t.Fatal(err)
	}
	create(jetstream.StreamConfig{Name: "NARROW", Subjects: []string{"narrow.*.discovered", "narrow.*"}})
	create(jetstream.StreamConfig{Name: "EXACT", Subjects: []string{"exact.>"}}) // the default 2-minute window
	create(jetstream.StreamConfig{Name: "MIRROR", Mirror: &jetstream.StreamSource{Name: "EXACT"}})

	tests := []struct {
		name, stream, prefix string
		wantErr, wantWarning string
		js                   jetstream.JetStream
	}{
		{"missing", "NOPE", "ossjobs", `stream NOPE does not exist: create it capturing "ossjobs.>"`, "", nil},
		{"other subjects", "NARROW", "narrow", `stream NARROW captures ["narrow.*.discovered" "narrow.*"], not "narrow.>"`, "", nil},
		{"another prefix", "EXACT", "exactly", `stream EXACT captures ["exact.>"], not "exactly.>"`, "", nil},
		{"mirror", "MIRROR", "exact", "stream MIRROR is a mirror of EXACT", "", nil},
		{"wildcard", "WIDE", "acme.prod", "", "", wide},
		{"short duplicate window", "EXACT", "exact", "", "duplicate window of 2m0s", nil},
		{"longer prefix", "EXACT", "exact.prod", "", "duplicate window of 2m0s", nil},
	}
	for _, tt := range tests {
		if tt.js == nil {
			tt.js = js
		}
		st, err := publisher.EnsureStream(t.Context(), tt.js, publisher.StreamConfig{Name: tt.stream, SubjectPrefix: tt.prefix})
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: EnsureStream = %v, want an error containing %q", tt.name, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: EnsureStream: %v", tt.name, err)
		case tt.wantErr == "" && (tt.wantWarning == "") != (len(st.Warnings) == 0):
			t.Errorf("%s: warnings %q, want one containing %q", tt.name, st.Warnings, tt.wantWarning)
		case tt.wantWarning != "" && !strings.Contains(st.Warnings[0], tt.wantWarning):
			t.Errorf("%s: warnings %q, want one containing %q", tt.name, st.Warnings, tt.wantWarning)
		}
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter, pattern string
		want            bool
	}{
		{">", "ossjobs.>", true},
		{"ossjobs.>", "ossjobs.>", true},
		{"*.>", "ossjobs.>", true},
		{"ossjobs.>", "ossjobs.prod.>", true},
		{"ossjobs.*.>", "ossjobs.>", false}, // misses ossjobs.x
		{"ossjobs.*", "ossjobs.>", false},
		{"ossjobs.prod.>", "ossjobs.>", false},
		{"other.>", "ossjobs.>", false},
		{"ossjobs", "ossjobs.>", false},
		{"a.*.c", "a.*.c", true},
		{"a.*.c", "a.b.c", true},
		{"a.b.c", "a.*.c", false},
		{"a.*", "a.b.c", false},
		{">", "a", true},
		{"a.>", "a", false},
	}
	for _, tt := range tests {
		if got := publisher.Covers(tt.filter, tt.pattern); got != tt.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tt.filter, tt.pattern, got, tt.want)
		}
	}
}
