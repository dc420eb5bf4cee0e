package notifytest

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/notify"
)

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewDingTalk starts a fake DingTalk custom robot at
// /robot/send?access_token=…. With a secret it checks DingTalk's signing:
// timestamp (ms) within an hour and sign = base64(HMAC-SHA256(secret,
// timestamp+"\n"+secret)), else errcode 310000. It takes msgtype markdown
// (and text), refuses a markdown text over 20,000 bytes, and answers
// errcode 0 with HTTP 200.
func NewDingTalk(t testing.TB, secret string) *Server {
	token := randomToken()
	return newServer(t, notify.TypeDingTalk, secret, token, (*Server).dingTalkHandler, "/robot/send?access_token="+token)
}

func (s *Server) dingTalkHandler() handlerFunc { return s.dingTalk }

func (s *Server) dingTalk(w http.ResponseWriter, r *http.Request, body []byte) (*Message, bool) {
	q := r.URL.Query()
	if r.URL.Path != "/robot/send" || q.Get("access_token") != s.token {
		writeJSON(w, http.StatusOK, `{"errcode":300001,"errmsg":"token is not exist"}`)
		return nil, false
	}
	if s.secret != "" {
		ms, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		if err != nil || checkWindow(time.UnixMilli(ms), s.clock()) != nil {
			writeJSON(w, http.StatusOK, `{"errcode":310000,"errmsg":"invalid timestamp, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}`)
			return nil, false
		}
		want := hmacB64([]byte(s.secret), []byte(q.Get("timestamp")+"\n"+s.secret))
		if !hmac.Equal([]byte(q.Get("sign")), []byte(want)) {
			writeJSON(w, http.StatusOK, `{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}`)
			return nil, false
		}
	}
	var req struct {
		MsgType  string `json:"msgtype"`
		Markdown *struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"markdown"`
		Text *struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusOK, `{"errcode":40035,"errmsg":"缺少参数 json"}`)
		return nil, false
	}
	m := &Message{}
	switch {
	case req.MsgType == "markdown" && req.Markdown != nil && req.Markdown.Title != "" && req.Markdown.Text != "":
		m.Title, m.Text = req.Markdown.Title, req.Markdown.Text
	case req.MsgType == "text" && req.Text != nil && req.Text.Content != "":
		m.Text = req.Text.Content
	default:
		writeJSON(w, http.StatusOK, `{"errcode":40035,"errmsg":"缺少参数 markdown"}`)
		return nil, false
	}
	if len(m.Text) > 20000 {
		writeJSON(w, http.StatusOK, `{"errcode":460101,"errmsg":"message too long, exceed 20000 bytes"}`)
		return nil, false
	}
	if !s.hasKeyword(m.Title + m.Text) {
		writeJSON(w, http.StatusOK, `{"errcode":310000,"errmsg":"keywords not in content, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}`)
		return nil, false
	}
	writeJSON(w, http.StatusOK, `{"errcode":0,"errmsg":"ok"}`)
	count(m)
	return m, true
}

// NewFeishu starts a fake Feishu custom bot at /open-apis/bot/v2/hook/….
// With a secret it checks Feishu's signing: body timestamp (s) within an
// hour and sign = base64(HMAC-SHA256(key = timestamp+"\n"+secret, empty
// message)), else code 19021. It takes msg_type interactive (a card with
// a header and elements) and text, refuses bodies over 20 KB (code 9499),
// and answers code 0.
func NewFeishu(t testing.TB, secret string) *Server {
	token := randomToken()
	return newServer(t, notify.TypeFeishu, secret, token, (*Server).feishuHandler, "/open-apis/bot/v2/hook/"+token)
}

func (s *Server) feishuHandler() handlerFunc { return s.feishu }

func (s *Server) feishu(w http.ResponseWriter, r *http.Request, body []byte) (*Message, bool) {
	if r.URL.Path != "/open-apis/bot/v2/hook/"+s.token {
		writeJSON(w, http.StatusOK, `{"code":19001,"data":{},"msg":"param invalid: incoming webhook access token invalid"}`)
		return nil, false
	}
	if len(body) > 20<<10 {
		writeJSON(w, http.StatusBadRequest, `{"code":9499,"data":{},"msg":"Bad Request"}`)
		return nil, false
	}
	type text struct {
		Tag     string `json:"tag"`
		Content string `json:"content"`
	}
	var req struct {
		Timestamp string `json:"timestamp"`
		Sign      string `json:"sign"`
		MsgType   string `json:"msg_type"`
		Content   *struct {
			Text string `json:"text"`
		} `json:"content"`
		Card *struct {
			Header *struct {
				Template string `json:"template"`
				Title    text   `json:"title"`
			} `json:"header"`
			Elements []struct {
				Tag      string `json:"tag"`
				Text     *text  `json:"text"`
				Elements []text `json:"elements"`
			} `json:"elements"`
		} `json:"card"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, `{"code":9499,"data":{},"msg":"Bad Request"}`)
		return nil, false
	}
	if s.secret != "" {
		sec, err := strconv.ParseInt(req.Timestamp, 10, 64)
		want := hmacB64([]byte(req.Timestamp+"\n"+s.secret), nil)
		if err != nil || checkWindow(time.Unix(sec, 0), s.clock()) != nil || !hmac.Equal([]byte(req.Sign), []byte(want)) {
			writeJSON(w, http.StatusOK, `{"code":19021,"data":{},"msg":"sign match fail or timestamp is not within one hour from current time"}`)
			return nil, false
		}
	}
	m := &Message{}
	switch {
	case req.MsgType == "interactive" && req.Card != nil && req.Card.Header != nil && len(req.Card.Elements) > 0:
		m.Title = req.Card.Header.Title.Content
		var parts []string
		for _, e := range req.Card.Elements {
			if e.Text != nil {
				parts = append(parts, e.Text.Content)
			}
			for _, t := range e.Elements {
				parts = append(parts, t.Content)
			}
		}
		m.Text = strings.Join(parts, "\n")
	case req.MsgType == "text" && req.Content != nil && req.Content.Text != "":
		m.Text = req.Content.Text
	default:
		writeJSON(w, http.StatusBadRequest, `{"code":9499,"data":{},"msg":"Bad Request"}`)
		return nil, false
	}
	if !s.hasKeyword(m.Title + m.Text) {
		writeJSON(w, http.StatusOK, `{"code":19024,"data":{},"msg":"Key Words Not Found"}`)
		return nil, false
	}
	writeJSON(w, http.StatusOK, `{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}`)
	count(m)
	return m, true
}

// NewWeCom starts a fake WeCom group robot at /cgi-bin/webhook/send?key=….
// It takes msgtype markdown (and text), refuses markdown content over 4096
// bytes (errcode 40058) and answers errcode 0.
func NewWeCom(t testing.TB) *Server {
	token := randomToken()
	return newServer(t, notify.TypeWeCom, "", token, (*Server).weComHandler, "/cgi-bin/webhook/send?key="+token)
}

func (s *Server) weComHandler() handlerFunc { return s.weCom }

func (s *Server) weCom(w http.ResponseWriter, r *http.Request, body []byte) (*Message, bool) {
	if r.URL.Path != "/cgi-bin/webhook/send" || r.URL.Query().Get("key") != s.token {
		writeJSON(w, http.StatusOK, `{"errcode":93000,"errmsg":"invalid webhook url"}`)
		return nil, false
	}
	var req struct {
		MsgType  string `json:"msgtype"`
		Markdown *struct {
			Content string `json:"content"`
		} `json:"markdown"`
		Text *struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusOK, `{"errcode":40035,"errmsg":"invalid json"}`)
		return nil, false
	}
	m := &Message{}
	switch {
	case req.MsgType == "markdown" && req.Markdown != nil && req.Markdown.Content != "":
		m.Text = req.Markdown.Content
		if len(m.Text) > 4096 {
			writeJSON(w, http.StatusOK, `{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}`)
			return nil, false
		}
	case req.MsgType == "text" && req.Text != nil && req.Text.Content != "":
		m.Text = req.Text.Content
		if len(m.Text) > 2048 {
			writeJSON(w, http.StatusOK, `{"errcode":40058,"errmsg":"text.content exceed max length 2048"}`)
			return nil, false
		}
	default:
		writeJSON(w, http.StatusOK, `{"errcode":40008,"errmsg":"invalid message type"}`)
		return nil, false
	}
	writeJSON(w, http.StatusOK, `{"errcode":0,"errmsg":"ok"}`)
	m.Title, _, _ = strings.Cut(strings.TrimPrefix(m.Text, "### "), "\n")
	count(m)
	m.Title = ""
	return m, true
}

// NewSlack starts a fake Slack incoming webhook at /services/T…/B…/….
// It takes {"text","blocks"}, refuses more than 50 blocks, a section text
// over 3000 characters or a header over 150 (HTTP 400 invalid_blocks),
// and answers HTTP 200 "ok".
func NewSlack(t testing.TB) *Server {
	token := randomToken()
	return newServer(t, notify.TypeSlack, "", token, (*Server).slackHandler, "/services/T0001/B0001/"+token)
}

func (s *Server) slackHandler() handlerFunc { return s.slack }

func (s *Server) slack(w http.ResponseWriter, r *http.Request, body []byte) (*Message, bool) {
	if r.URL.Path != "/services/T0001/B0001/"+s.token {
		http.Error(w, "no_service", http.StatusNotFound)
		return nil, false
	}
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	var req struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string `json:"type"`
			Text     *text  `json:"text"`
			Elements []text `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(body, &req); err != nil || (req.Text == "" && len(req.Blocks) == 0) {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return nil, false
	}
	if len(req.Blocks) > 50 {
		http.Error(w, "invalid_blocks", http.StatusBadRequest)
		return nil, false
	}
	m := &Message{Text: req.Text}
	for _, b := range req.Blocks {
		if b.Text == nil {
			continue
		}
		n := len([]rune(b.Text.Text))
		if (b.Type == "section" && n > 3000) || (b.Type == "header" && n > 150) {
			http.Error(w, "invalid_blocks", http.StatusBadRequest)
			return nil, false
		}
		if b.Type == "header" {
			m.Title = b.Text.Text
		}
	}
	for _, b := range req.Blocks {
		for _, e := range b.Elements {
			m.Text += "\n" + e.Text
		}
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write([]byte("ok"))
	count(m)
	return m, true
}

// NewWebhook starts a fake Standard Webhooks receiver taking CloudEvents.
// With a secret ("whsec_…" or raw) it verifies webhook-signature the way
// the Standard Webhooks libraries do (any of the space-separated v1,…
// signatures, a webhook-timestamp within 5 minutes), else HTTP 401. It
// requires Content-Type application/cloudevents+json, webhook-id equal to
// the event's id, and answers HTTP 204.
func NewWebhook(t testing.TB, secret string) *Server {
	return newServer(t, notify.TypeWebhook, secret, "", (*Server).webhookHandler, "/hooks/ossjobwatch")
}

// WebhookTolerance is how far webhook-timestamp may be from the fake's
// clock: the Standard Webhooks libraries' 5 minutes.
const WebhookTolerance = 5 * time.Minute

func (s *Server) webhookHandler() handlerFunc { return s.webhook }

func (s *Server) webhook(w http.ResponseWriter, r *http.Request, body []byte) (*Message, bool) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
		http.Error(w, "want Content-Type application/cloudevents+json, got "+ct, http.StatusUnsupportedMediaType)
		return nil, false
	}
	id, tsHeader := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	if id == "" || tsHeader == "" {
		http.Error(w, "missing webhook-id or webhook-timestamp", http.StatusBadRequest)
		return nil, false
	}
	if s.secret != "" {
		if err := s.verifyStandardWebhook(id, tsHeader, r.Header.Get("webhook-signature"), body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return nil, false
		}
	}
	var ce struct {
		SpecVersion string          `json:"specversion"`
		ID          string          `json:"id"`
		Type        string          `json:"type"`
		Data        json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &ce); err != nil || ce.SpecVersion != "1.0" || ce.ID == "" {
		http.Error(w, "body is not a CloudEvent", http.StatusBadRequest)
		return nil, false
	}
	if ce.ID != id {
		http.Error(w, fmt.Sprintf("webhook-id %q is not the event's id %q", id, ce.ID), http.StatusBadRequest)
		return nil, false
	}
	w.WriteHeader(http.StatusNoContent)
	return &Message{Text: string(body), EventIDs: []string{ce.ID}, Events: 1}, true
}

// verifyStandardWebhook is the Standard Webhooks verification: the key is
// the base64 part of a whsec_ secret (else the secret's bytes), the signed
// content id.timestamp.body, any v1 signature may match.
func (s *Server) verifyStandardWebhook(id, tsHeader, sigHeader string, body []byte) error {
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("invalid webhook-timestamp")
	}
	if d := s.clock().Sub(time.Unix(ts, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return fmt.Errorf("webhook-timestamp too far from now")
	}
	key := []byte(s.secret)
	if rest, ok := strings.CutPrefix(s.secret, "whsec_"); ok {
		if key, err = base64.StdEncoding.DecodeString(rest); err != nil {
			return fmt.Errorf("fake's secret is not whsec_<base64>")
		}
	}
	want := hmacB64(key, append([]byte(id+"."+tsHeader+"."), body...))
	for _, sig := range strings.Fields(sigHeader) {
		if v, b64, ok := strings.Cut(sig, ","); ok && v == "v1" && hmac.Equal([]byte(b64), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no matching signature")
}
