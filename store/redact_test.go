package store_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/store"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"URL", "postgres://u:s3cret@host:5432/db?sslmode=disable", "postgres://u:xxxxx@host:5432/db?sslmode=disable"},
		{"postgresql scheme", "postgresql://u:s3cret@host/db", "postgresql://u:xxxxx@host/db"},
		{"upper-case scheme", "POSTGRES://u:s3cret@host/db", "POSTGRES://u:xxxxx@host/db"},
		{"leading space", " postgres://u:s3cret@host/db", " postgres://u:xxxxx@host/db"},
		{"misspelt scheme", "postgress://u:s3cret@host/db", "postgress://u:xxxxx@host/db"},
		{"URL without password", "postgres://u@host/db", "postgres://u@host/db"},
		{"URL without user", "postgres://host/db", "postgres://host/db"},
		{"escaped password", "postgres://u:p%40ss%2Fs3cret@h/db", "postgres://u:xxxxx@h/db"},
		{"several hosts", "postgres://u:s3cret@h1:5432,h2:5433/db", "postgres://u:xxxxx@h1:5432,h2:5433/db"},
		{"IPv6 host", "postgres://u:s3cret@[::1]:5432/db", "postgres://u:xxxxx@[::1]:5432/db"},
		{"password parameter", "postgres://u@h/db?password=s3cret&sslmode=require", "postgres://u@h/db?password=xxxxx&sslmode=require"},
		{"sslpassword parameter", "postgres://u@h/db?sslpassword=s3cret", "postgres://u@h/db?sslpassword=xxxxx"},
		{"escaped parameter name", "postgres://u@h/db?pass%77ord=s3cret", "postgres://u@h/db?pass%77ord=xxxxx"},
		{"@ in a parameter", "postgres://u:s3cret@h/db?application_name=a@b&password=s3cret", "postgres://u:xxxxx@h/db?application_name=a@b&password=xxxxx"},
		{"unescaped / and @ in password", "postgres://u:s3/cr@t@h/db", "postgres://u:xxxxx@h/db"},
		{"unescaped ? and # in password", "postgres://u:s3?cr#t@h/db?sslmode=disable", "postgres://u:xxxxx@h/db?sslmode=disable"},
		{"@ in a password parameter of a bad URL", "postgres://h:bad/db?password=s3c@ret", "postgres://h:xxxxx"},
		{"DSN", "host=h user=u password=s3cret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"DSN quoted password", `host=h password='s3 cr\'et' dbname=db`, "host=h password=xxxxx dbname=db"},
		{"DSN spaces around =", "host=h password = s3cret dbname=db", "host=h password = xxxxx dbname=db"},
		{"DSN password only", "password=s3cret", "password=xxxxx"},
		{"DSN sslpassword", "host=h sslpassword=s3cret", "host=h sslpassword=xxxxx"},
		{"DSN unterminated quote", "host=h password='s3 cret", "host=h password=xxxxx"},
		{"DSN escaped space", `host=h password=s3\ cret dbname=db`, "host=h password=xxxxx dbname=db"},
		{"DSN without password", "host=h user=u", "host=h user=u"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := store.RedactURL(tt.in)
			if got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for _, part := range []string{"s3", "cr", "et"} {
				if strings.Contains(tt.in, "s3") && strings.Contains(got, part) {
					t.Errorf("RedactURL(%q) = %q reveals %q", tt.in, got, part)
				}
			}
		})
	}
}

// FuzzRedactURL checks that no password, raw or escaped, survives in any of
// the forms a DSN can carry it.
func FuzzRedactURL(f *testing.F) {
	for _, seed := range []string{"s3cret", "p@ss/w?rd#1", `it's a \ secret`, "::@@", "ü-pässwörd", "a b\tc"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, password string) {
		kvQuoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
		for _, form := range []struct{ dsn, secret string }{
			{"postgres://u:" + url.PathEscape(password) + "@h:5432/db?sslmode=disable", url.PathEscape(password)},
			{"postgres://u:" + password + "@h:5432/db?sslmode=disable", password}, // unescaped, maybe malformed
			{"postgres://u@h/db?password=" + url.QueryEscape(password), url.QueryEscape(password)},
			{"host=h password='" + kvQuoted + "' dbname=db", kvQuoted},
		} {
			if len(form.secret) < 3 || strings.Contains(strings.Replace(form.dsn, form.secret, "", 1), form.secret) || strings.Contains(form.secret, "\x00") {
				continue // too short to tell, or also part of the rest
			}
			got := store.RedactURL(form.dsn)
			if strings.Contains(strings.ReplaceAll(got, "xxxxx", "\x00"), form.secret) {
				t.Errorf("RedactURL(%q) = %q reveals %q", form.dsn, got, form.secret)
			}
		}
	})
}

// Open's error for a DSN pgx cannot parse names it without its password,
// whatever the scheme's case or the white space around it.
func TestOpenHidesPasswordsOfOddSchemes(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"POSTGRES://alice:Qz7KpWm4Vn@127.0.0.1:1/db", " postgres://alice:Qz7KpWm4Vn@127.0.0.1:1/db", "Postgresql://alice:Qz7KpWm4Vn@127.0.0.1:1/db"} {
		_, err := store.Open(t.Context(), dsn, store.Config{ConnectTimeout: time.Second})
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "Qz7Kp") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}
