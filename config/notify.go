package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/template/parse"
	"time"
)

// Notify is the config file's notify section: who is told about which
// events. Nil when the file has none.
type Notify struct {
	Receivers []Receiver
	Routes    []Route
}

// Receiver is a chat robot or a webhook.
type Receiver struct {
	// Name is how routes, metrics and history call it: [A-Za-z0-9_-]+.
	Name string
	// Type is dingtalk, feishu, wecom, slack or webhook.
	Type string
	// URL is where requests go, its ${VAR}s expanded. It often holds a
	// token, so it is a Secret.
	URL Secret
	// Secret signs the requests; empty sends them unsigned.
	Secret Secret
	// Rates bound the requests, from the rate key ("18/m", or several
	// separated by commas: "20/m,1/s"). Empty takes the type's defaults.
	Rates []Rate
}

// Rate is at most Count requests in any window of Per. It mirrors
// notify.Rate (config imports no project package).
type Rate struct {
	Count int
	Per   time.Duration
}

// Route sends the events whose subject matches one of Subjects to every
// receiver named in Receivers.
type Route struct {
	// Name is [A-Za-z0-9_-]+: it names the route's durable JetStream
	// consumer (ossjobwatch-notify-<name>).
	Name string
	// Subjects are NATS subject filters within the stream's <prefix>.>,
	// e.g. ossjobs.*.status.*.Failed.
	Subjects  []string
	Receivers []string
	// Template is a Go text/template over the event that replaces the
	// receiver type's default text; empty keeps the default.
	Template string
}

// Secret is a value that must never be printed: fmt and log/slog show
// "redacted" (or nothing when it is empty). Value returns it.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String implements fmt.Stringer without revealing the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "redacted"
}

// GoString covers %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the secret out of JSON, YAML and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ReceiverTypes are the receiver types, in the contract's order.
var ReceiverTypes = []string{"dingtalk", "feishu", "wecom", "slack", "webhook"}

// fileNotify is the file's notify section.
type fileNotify struct {
	Receivers []struct {
		Name   string `yaml:"name"`
		Type   string `yaml:"type"`
		URL    string `yaml:"url"`
		Secret string `yaml:"secret"`
		Rate   string `yaml:"rate"`
	} `yaml:"receivers"`
	Routes []struct {
		Name      string   `yaml:"name"`
		Subjects  []string `yaml:"subjects"`
		Receivers []string `yaml:"receivers"`
		Template  string   `yaml:"template"`
	} `yaml:"routes"`
}

// rawNotify keeps what needs the environment (${VAR}) until Load has it.
type rawNotify struct {
	file fileNotify
}

var varPattern = regexp.MustCompile(`\$\{([^}]*)\}`)
var varNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces each ${VAR} in s by the variable's value. Errors name
// the variable, never a value.
func expand(field, s string, getenv func(string) string) (string, error) {
	var errs []error
	out := varPattern.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if !varNamePattern.MatchString(name) {
			errs = append(errs, fmt.Errorf("%s: ${%s} is not a variable name such as ${DINGTALK_URL}", field, name))
			return ""
		}
		v := getenv(name)
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: ${%s} is not set in the environment", field, name))
		}
		return v
	})
	return out, errors.Join(errs...)
}

// resolve expands the variables and parses the rates. Errors name the
// field.
func (r *rawNotify) resolve(getenv func(string) string) (*Notify, error) {
	var errs []error
	n := &Notify{}
	for i, fr := range r.file.Receivers {
		field := func(name string) string { return fmt.Sprintf("notify.receivers[%d].%s", i, name) }
		u, err := expand(field("url"), fr.URL, getenv)
		if err != nil {
			errs = append(errs, err)
		}
		sec, err := expand(field("secret"), fr.Secret, getenv)
		if err != nil {
			errs = append(errs, err)
		}
		rates, err := ParseRates(fr.Rate)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field("rate"), err))
		}
		n.Receivers = append(n.Receivers, Receiver{Name: fr.Name, Type: fr.Type, URL: Secret(u), Secret: Secret(sec), Rates: rates})
	}
	for _, fr := range r.file.Routes {
		n.Routes = append(n.Routes, Route{Name: fr.Name, Subjects: fr.Subjects, Receivers: fr.Receivers, Template: fr.Template})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return n, nil
}

var ratePattern = regexp.MustCompile(`^\s*([0-9]+)\s*/\s*([0-9]*)(s|m|h)\s*$`)

// ParseRates reads "18/m", "5/s", "100/h", "1/3s" or several of them
// separated by commas; "" is none (the type's defaults).
func ParseRates(s string) ([]Rate, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Rate
	for part := range strings.SplitSeq(s, ",") {
		m := ratePattern.FindStringSubmatch(part)
		if m == nil {
			return nil, fmt.Errorf("%q is not a rate such as 18/m, 5/s or 100/h", strings.TrimSpace(part))
		}
		count, err := strconv.Atoi(m[1])
		if err != nil || count < 1 {
			return nil, fmt.Errorf("%q: the count must be a positive number", strings.TrimSpace(part))
		}
		mult := 1
		if m[2] != "" {
			if mult, err = strconv.Atoi(m[2]); err != nil || mult < 1 {
				return nil, fmt.Errorf("%q: the period must be positive", strings.TrimSpace(part))
			}
		}
		unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[m[3]]
		out = append(out, Rate{Count: count, Per: time.Duration(mult) * unit})
	}
	return out, nil
}

// validateNotify checks the notify section against the stream's subject
// prefix.
func (n *Notify) validate(prefix string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(n.Routes) == 0 {
		add("notify.routes: at least one route is needed")
	}
	receivers := map[string]bool{}
	for i, r := range n.Receivers {
		field := func(name string) string { return fmt.Sprintf("notify.receivers[%d].%s", i, name) }
		switch {
		case !namePattern.MatchString(r.Name):
			add("%s: %q must match [A-Za-z0-9_-]+", field("name"), r.Name)
		case receivers[r.Name]:
			add("%s: %q is used by another receiver", field("name"), r.Name)
		}
		receivers[r.Name] = true
		if !isReceiverType(r.Type) {
			add("%s: unknown type %q (want dingtalk, feishu, wecom, slack or webhook)", field("type"), r.Type)
		}
		if r.Secret != "" && (r.Type == "wecom" || r.Type == "slack") {
			add("%s: type %s takes no secret (its URL is the credential)", field("secret"), r.Type)
		}
		if r.URL == "" {
			add("%s: required", field("url"))
		} else if u, err := url.Parse(r.URL.Value()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Not quoted: the URL may hold a token.
			add("%s: not an http or https URL (the value is not shown, as it may hold a token)", field("url"))
		}
	}
	routes := map[string]bool{}
	for i, r := range n.Routes {
		field := func(name string) string { return fmt.Sprintf("notify.routes[%d].%s", i, name) }
		switch {
		case !namePattern.MatchString(r.Name):
			add("%s: %q must match [A-Za-z0-9_-]+", field("name"), r.Name)
		case routes[r.Name]:
			add("%s: %q is used by another route", field("name"), r.Name)
		}
		routes[r.Name] = true
		if len(r.Subjects) == 0 {
			add("%s: at least one subject filter is needed, e.g. %s.*.status.*.Failed", field("subjects"), prefix)
		}
		for j, s := range r.Subjects {
			if err := checkFilter(s, prefix); err != nil {
				add("%s[%d]: %w", field("subjects"), j, err)
				continue
			}
			for k := range j {
				if filtersOverlap(r.Subjects[k], s) {
					add("%s[%d]: %q overlaps %q: JetStream takes no overlapping filters in one consumer", field("subjects"), j, s, r.Subjects[k])
				}
			}
		}
		if len(r.Receivers) == 0 {
			add("%s: at least one receiver is needed", field("receivers"))
		}
		seen := map[string]bool{}
		for j, name := range r.Receivers {
			switch {
			case !receivers[name]:
				add("%s[%d]: %q is not a receiver of notify.receivers", field("receivers"), j, name)
			case seen[name]:
				add("%s[%d]: %q is named twice", field("receivers"), j, name)
			}
			seen[name] = true
		}
		if r.Template != "" {
			if err := checkTemplate(r.Name, r.Template); err != nil {
				add("%s: %w", field("template"), err)
			}
		}
	}
	return errs
}

func isReceiverType(t string) bool {
	for _, rt := range ReceiverTypes {
		if t == rt {
			return true
		}
	}
	return false
}

// checkFilter checks that s is a NATS subject filter (dot-separated
// tokens; * a whole token; > only as the last) that lies within the
// stream's prefix.>.
func checkFilter(s, prefix string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("%q is not a NATS subject filter (no spaces, no empty tokens)", s)
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return fmt.Errorf("%q is not a NATS subject filter: an empty token", s)
		case tok == ">" && i != len(tokens)-1:
			return fmt.Errorf("%q is not a NATS subject filter: > must be the last token", s)
		case tok != "*" && tok != ">" && strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("%q is not a NATS subject filter: * and > must be whole tokens", s)
		}
	}
	pt := strings.Split(prefix, ".")
	if len(tokens) <= len(pt) {
		return fmt.Errorf("%q is outside the stream's subjects %s.>", s, prefix)
	}
	for i, tok := range pt {
		if tokens[i] != tok {
			return fmt.Errorf("%q is outside the stream's subjects %s.>", s, prefix)
		}
	}
	return nil
}

// filtersOverlap reports whether some subject matches both filters.
func filtersOverlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i == len(at) && i == len(bt):
			return true
		case i == len(at) || i == len(bt):
			return false
		case at[i] == ">" || bt[i] == ">":
			return true
		case at[i] == "*" || bt[i] == "*" || at[i] == bt[i]:
			continue
		default:
			return false
		}
	}
}

// checkTemplate parses a route's template for its syntax. The functions
// it calls are checked by the notify package, which defines them.
func checkTemplate(name, text string) error {
	t := parse.New(name)
	t.Mode = parse.SkipFuncCheck
	if _, err := t.Parse(text, "", "", map[string]*parse.Tree{}); err != nil {
		return fmt.Errorf("does not parse: %w", err)
	}
	return nil
}
