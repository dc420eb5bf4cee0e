package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ossjobwatch/ossjobwatch/config"
)

// demoHook is the demo's webhook receiver: an HTTP server on loopback
// that checks each request's Standard Webhooks signature with the secret
// the demo generated, as a real receiver would, and shows each event it
// was sent beside the live view.
type demoHook struct {
	url    string
	secret string
	key    []byte
	srv    *http.Server
	show   func(line string)

	mu       sync.Mutex
	received int
	refused  int
}

// demoNotifySubjects are what the demo's route sends to the webhook: what a
// person would want to hear about.
var demoNotifySubjects = []string{"status.>", "tasks_failed", "stalled", "confirmation_due", "removed"}

func startDemoHook(show func(string)) (*demoHook, error) {
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &demoHook{
		url:    "http://" + ln.Addr().String() + "/hooks/ossjobwatch",
		secret: "whsec_" + base64.StdEncoding.EncodeToString(key),
		key:    key,
		show:   show,
	}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

func (h *demoHook) Close() { _ = h.srv.Close() }

// notifyConfig is the demo's notify section: one route to this receiver.
func (h *demoHook) notifyConfig(prefix string) *config.Notify {
	var subjects []string
	for _, s := range demoNotifySubjects {
		subjects = append(subjects, prefix+".*."+s)
	}
	return &config.Notify{
		Receivers: []config.Receiver{{Name: "demo-webhook", Type: "webhook", URL: config.Secret(h.url), Secret: config.Secret(h.secret)}},
		Routes:    []config.Route{{Name: "demo", Subjects: subjects, Receivers: []string{"demo-webhook"}}},
	}
}

func (h *demoHook) counts() (received, refused int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.received, h.refused
}

func (h *demoHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if err := h.verify(r.Header, body); err != nil {
		h.mu.Lock()
		h.refused++
		h.mu.Unlock()
		h.show("  ✗ webhook refused a request: " + err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			JobID, Status, PreviousStatus string
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	h.mu.Lock()
	h.received++
	h.mu.Unlock()
	what := strings.TrimPrefix(ev.Type, "ossjobwatch.job.")
	if ev.Data.PreviousStatus != "" {
		what += " " + ev.Data.PreviousStatus + " → " + ev.Data.Status
	}
	h.show(fmt.Sprintf("  ↳ webhook notified (signature verified): %s %s", shorten(ev.Data.JobID, 14), what))
	w.WriteHeader(http.StatusNoContent)
}

// verify checks the Standard Webhooks headers: webhook-signature holds a
// v1 HMAC-SHA256 of id.timestamp.body, the timestamp within 5 minutes.
func (h *demoHook) verify(hdr http.Header, body []byte) error {
	id, ts, sigs := hdr.Get("webhook-id"), hdr.Get("webhook-timestamp"), hdr.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad webhook-timestamp")
	}
	if d := time.Since(time.Unix(secs, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s away", d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for sig := range strings.FieldsSeq(sigs) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid v1 signature")
}
