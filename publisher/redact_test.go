package publisher_test

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/publisher"
)

// SecretForms returns the ways password may be written in an output: as
// is, decoded, escaped for a path, a query or a URL's user information, and
// as %q shows each of those; and, so that a message quoting part of it is
// caught too, every piece of window bytes of each.
func secretForms(password string, window int) []string {
	forms := []string{password}
	if d, err := url.PathUnescape(password); err == nil {
		forms = append(forms, d)
	}
	if d, err := url.QueryUnescape(password); err == nil {
		forms = append(forms, d)
	}
	for _, f := range forms[:len(forms):len(forms)] {
		forms = append(forms, url.PathEscape(f), url.QueryEscape(f), url.UserPassword("u", f).String()[2:])
	}
	for _, f := range forms[:len(forms):len(forms)] {
		q := strconv.Quote(f)
		forms = append(forms, q[1:len(q)-1])
	}
	if window <= 0 {
		return forms
	}
	var out []string
	for _, f := range forms {
		for i := 0; i+window <= len(f); i++ {
			out = append(out, f[i:i+window])
		}
	}
	return out
}

// hostileURLs are NATS URLs whose passwords or tokens are the second
// element: no scheme, a bad escape, characters a URL must escape left
// unescaped, several servers, an IPv6 host. Every password is made of
// pieces of five or more characters, so that any fragment of it in an
// output is caught. The servers do not listen.
var hostileURLs = []struct {
	name, url string
	secrets   []string
}{
	{"no scheme", "user:Qz7KpWm4Vn@127.0.0.1:1", []string{"Qz7KpWm4Vn"}},
	{"bad escape", "nats://user:Qz7Kp%zzWm4Vn@127.0.0.1:1", []string{"Qz7Kp%zzWm4Vn"}},
	{"unescaped @", "nats://user:Qz7Kp@Wm4Vn@127.0.0.1:1", []string{"Qz7Kp@Wm4Vn"}},
	{"unescaped :", "nats://user:Qz7Kp:Wm4Vn@127.0.0.1:1", []string{"Qz7Kp:Wm4Vn"}},
	{"unescaped /", "nats://user:Qz7Kp/Wm4Vn@127.0.0.1:1", []string{"Qz7Kp/Wm4Vn"}},
	{"unescaped # and ?", "nats://user:Qz7Kp#Wm4Vn?Hx9Lc@127.0.0.1:1", []string{"Qz7Kp#Wm4Vn?Hx9Lc"}},
	{"escaped %40", "nats://user:Qz7Kp%40Wm4Vn@127.0.0.1:1", []string{"Qz7Kp%40Wm4Vn"}},
	{"escaped %2F and %25", "nats://user:Qz7Kp%2FWm4Vn%25Hx9Lc@127.0.0.1:1", []string{"Qz7Kp%2FWm4Vn%25Hx9Lc"}},
	{"space and quote", `nats://user:Qz7Kp Wm4Vn"Hx9Lc@127.0.0.1:1`, []string{`Qz7Kp Wm4Vn"Hx9Lc`}},
	{"token", "nats://Qz7KpWm4VnToken@127.0.0.1:1", []string{"Qz7KpWm4VnToken"}},
	{"several servers", "nats://a:Qz7KpAlpha@127.0.0.1:1, b:Wm4VnBravo@127.0.0.1:2,tls://c:Hx9Lc%zzCharlie@127.0.0.1:3",
		[]string{"Qz7KpAlpha", "Wm4VnBravo", "Hx9Lc%zzCharlie"}},
	{"IPv6", "nats://user:Qz7Kp/Wm4Vn@[::1]:1", []string{"Qz7Kp/Wm4Vn"}},
	{"unescaped comma", "nats://user:Qz7Kp,Wm4Vn@127.0.0.1:1", []string{"Qz7Kp,Wm4Vn"}},
	{"unescaped comma after digits", "nats://user:12345,Wm4Vn@127.0.0.1:1", []string{"12345,Wm4Vn"}},
}

// checkNoSecret fails if out shows any form, or any five-byte piece of a
// form, of the secrets.
func checkNoSecret(t *testing.T, what, out string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		for _, f := range secretForms(s, 5) {
			if strings.Contains(out, f) {
				t.Errorf("%s shows %q, part of the secret %q:\n%s", what, f, s, out)
				return
			}
		}
	}
}

func TestConnectHidesSecretsOfHostileURLs(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileURLs {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			nc, err := publisher.Connect(tt.url, "test", logger)
			if err == nil {
				nc.Close()
				t.Fatal("Connect succeeded to a server that does not listen")
			}
			checkNoSecret(t, "Connect's error", err.Error(), tt.secrets)
			checkNoSecret(t, "Connect's logs", logs.String(), tt.secrets)
			if !strings.Contains(err.Error(), "127.0.0.1") && !strings.Contains(err.Error(), "::1") {
				t.Errorf("Connect's error does not name the server: %v", err)
			}
			checkNoSecret(t, "RedactURL", publisher.RedactURL(tt.url), tt.secrets)
		})
	}
}

func TestRedactErrorScrubsEveryForm(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileURLs {
		for _, s := range tt.secrets {
			// An error quoting the URL, and each form of the password, as
			// libraries do.
			msg := fmt.Sprintf("parse %q: %s", tt.url, tt.url)
			for _, f := range secretForms(s, 0) {
				msg += " [" + f + "]"
			}
			got := publisher.RedactError(fmt.Errorf("wrapped: %w", fmt.Errorf("%s", msg)), tt.url).Error()
			checkNoSecret(t, tt.name+": RedactError", got, []string{s})
		}
	}
}

// FuzzRedactError checks that no password or token, in any of the forms
// it may take in a message, survives RedactURL and RedactError, whatever its
// characters, escaped in the URL or not.
func FuzzRedactError(f *testing.F) {
	for _, seed := range []string{"s3cret", "p@ss/w?rd#1", "pa%zzss", "a:b:c", "%40%2F", `q"uo\te`, "ü-pässwörd", "a b\tc", "tok,en"} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, secret string, withUser bool) {
		if len(secret) < 3 || strings.ContainsAny(secret, ",\x00") || strings.TrimSpace(secret) != secret {
			return // too short to tell; a comma splits the server list
		}
		for _, userinfo := range []string{secret, url.PathEscape(secret), url.QueryEscape(secret)} {
			if withUser {
				userinfo = "user:" + userinfo
			} else if strings.Contains(userinfo, ":") {
				continue // then it is a user and a password, not a token
			}
			for _, u := range []string{"nats://" + userinfo + "@h:4222", userinfo + "@h:4222", "nats://x@h1," + "tls://" + userinfo + "@[::1]:4222"} {
				raw := strings.TrimPrefix(userinfo, "user:")
				var forms []string
				for _, f := range secretForms(raw, 0) {
					if len(f) >= 3 && !strings.Contains("redacted", f) && !strings.Contains(strings.Replace(u, raw, "", 1), f) {
						forms = append(forms, f)
					}
				}
				red := publisher.RedactURL(u)
				msg := fmt.Sprintf("parse %q: %s: %s", u, u, strings.Join(forms, " "))
				got := publisher.RedactError(fmt.Errorf("%s", msg), u).Error()
				for _, f := range forms {
					if strings.Contains(red, f) {
						t.Errorf("RedactURL(%q) = %q shows %q", u, red, f)
					}
					if strings.Contains(got, f) {
						t.Errorf("RedactError(%q) = %q shows %q", msg, got, f)
					}
				}
			}
		}
	})
}
