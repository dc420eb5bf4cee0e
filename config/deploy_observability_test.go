package config_test

// Tests of the deploy/ directory: its files are never built or applied in
// the development environment (no Docker engine, no cluster), so these
// tests are what keeps them honest. They parse every YAML and JSON file,
// load the Kubernetes ConfigMap's config.yaml with config.Load using the
// environment the Deployment gives the pod, load the Compose environment
// the same way, and check that the dashboard and the alerting rules name
// only metrics the daemon exports.

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestDeployRAMPolicy(t *testing.T) {
	t.Parallel()
	var p struct {
		Version   string
		Statement []struct {
			Effect   string
			Action   []string
			Resource []string
		}
	}
	dec := json.NewDecoder(bytes.NewReader(readDeploy(t, "ram-policy.json")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("ram-policy.json: %v", err)
	}
	if p.Version != "1" || len(p.Statement) != 1 {
		t.Fatalf("ram-policy.json: version %q, %d statements; want 1 and 1", p.Version, len(p.Statement))
	}
	st := p.Statement[0]
	if st.Effect != "Allow" || !slices.Equal(slices.Sorted(slices.Values(st.Action)), []string{"oss:DescribeJob", "oss:ListJobs"}) {
		t.Errorf("ram-policy.json: %s %q, want Allow oss:ListJobs and oss:DescribeJob only", st.Effect, st.Action)
	}
	for _, r := range st.Resource {
		if !strings.HasPrefix(r, "acs:oss:") {
			t.Errorf("ram-policy.json: resource %q is not an OSS resource", r)
		}
	}
	if len(st.Resource) == 0 {
		t.Errorf("ram-policy.json: no resource")
	}
}

// The metrics the daemon exports; histograms also as _bucket, _count and
// _sum series.
var (
	exportedMetrics = []string{
		"ossjobwatch_sweep_duration_seconds",
		"ossjobwatch_last_successful_sweep_timestamp_seconds",
		"ossjobwatch_jobs",
		"ossjobwatch_events_total",
		"ossjobwatch_oss_requests_total",
		"ossjobwatch_outbox_pending_events",
		"ossjobwatch_outbox_oldest_pending_age_seconds",
		"ossjobwatch_publish_lag_seconds",
		"ossjobwatch_panics_total",
		"ossjobwatch_describe_errors_total",
		"ossjobwatch_target_lease_held",
		"ossjobwatch_database_up",
		"ossjobwatch_jobs_stalled",
		"ossjobwatch_jobs_awaiting_confirmation",
		"ossjobwatch_confirmation_fails_at_timestamp_seconds",
		"ossjobwatch_notify_deliveries_total",
		"ossjobwatch_notify_failures_total",
		"ossjobwatch_notify_digests_total",
		"ossjobwatch_notify_malformed_messages_total",
		"ossjobwatch_notify_queue_age_seconds",
		"ossjobwatch_notify_route_up",
	}
	histograms = []string{"ossjobwatch_sweep_duration_seconds", "ossjobwatch_publish_lag_seconds"}
)

// prometheusSeries are the series Prometheus itself records per scrape
// target, which rules may use beside the daemon's.
var prometheusSeries = []string{"up"}

// seriesName maps a series name to its metric, or "" if the daemon exports
// no such series.
func seriesName(s string) string {
	if slices.Contains(prometheusSeries, s) {
		return s
	}
	if !strings.HasPrefix(s, "ossjobwatch_") {
		return ""
	}
	for _, h := range histograms {
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if s == h+suffix {
				return h
			}
		}
	}
	if slices.Contains(exportedMetrics, s) && !slices.Contains(histograms, s) {
		return s
	}
	return ""
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true,
	}
	grafanaLabelValues = regexp.MustCompile(`^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$`)
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are removed, that are neither functions (followed by a
// parenthesis), keywords nor parts of numbers.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.", rune(s[loc[0]-1])) {
			continue // 1e3, 5m
		}
		if strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") || promKeywords[id] {
			continue
		}
		names = append(names, id)
	}
	return names
}

func TestMetricNamesHeuristic(t *testing.T) {
	t.Parallel()
	got := metricNames(`histogram_quantile(0.95, sum by (le) (rate(a_bucket{x=~"b|c", y="sum(d)"}[5m] offset 1h)))
		and on () sum without (z) (b) > 1e3 unless bool c`)
	if !slices.Equal(got, []string{"a_bucket", "b", "c"}) {
		t.Errorf("metricNames = %q", got)
	}
}

func TestDeployMetricNames(t *testing.T) {
	t.Parallel()
	var dash struct {
		SchemaVersion int    `json:"schemaVersion"`
		UID           string `json:"uid"`
		Title         string `json:"title"`
		Panels        []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Query      any    `json:"query"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	dashText := readDeploy(t, "grafana-dashboard.json")
	if err := json.Unmarshal(dashText, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.SchemaVersion != 39 || dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard: schemaVersion %d uid %q title %q", dash.SchemaVersion, dash.UID, dash.Title)
	}
	type expr struct{ where, expr string }
	var exprs []expr
	ids := map[int]bool{}
	onDashboard := map[string]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard: panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q: want queries on ${datasource}", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, expr{"dashboard panel " + p.Title, q.Expr})
			for _, n := range metricNames(q.Expr) {
				onDashboard[n] = true
			}
		}
	}
	// Jobs that need a human have panels of their own, not only alerts.
	for _, m := range []string{"ossjobwatch_jobs_stalled", "ossjobwatch_jobs_awaiting_confirmation", "ossjobwatch_confirmation_fails_at_timestamp_seconds"} {
		if !onDashboard[m] {
			t.Errorf("dashboard: no panel shows %s", m)
		}
	}
	vars := map[string]string{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = v.Type
		if v.Type != "query" {
			continue
		}
		m := grafanaLabelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("dashboard variable %s: definition %q is not label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		exprs = append(exprs, expr{"dashboard variable " + v.Name, m[1]})
	}
	if vars["datasource"] != "datasource" || vars["target"] != "query" {
		t.Errorf("dashboard variables = %v, want datasource (datasource) and target (query)", vars)
	}

	rules := yamlDoc[struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}](t, "prometheus-rules.yaml")
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %s: want expr, severity, summary and description", r.Alert)
			}
			exprs = append(exprs, expr{"rule " + r.Alert, r.Expr})
		}
	}
	for _, want := range []string{"SweepStale", "OutboxBacklog", "OSSThrottling", "RelayNotPublishing", "Panics",
		"OssjobwatchReplicaDown", "OssjobwatchAbsent", "TargetNeverSwept", "DatabaseUnreachable",
		"ConfirmationDueSoon", "JobsStalled"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("prometheus-rules.yaml: no alert %s (have %q)", want, alerts)
		}
	}

	used := map[string]bool{}
	for _, e := range exprs {
		names := metricNames(e.expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", e.where, e.expr)
		}
		for _, n := range names {
			m := seriesName(n)
			if m == "" {
				t.Errorf("%s: %s is not a metric ossjobwatch exports", e.where, n)
			}
			used[m] = true
		}
	}
	// Prose names metrics too (descriptions, panel help): they must exist,
	// histograms by their family name or a series name.
	rulesText := readDeploy(t, "prometheus-rules.yaml")
	for _, n := range regexp.MustCompile(`ossjobwatch_[a-z0-9_]+`).FindAll(append(dashText, rulesText...), -1) {
		if seriesName(string(n)) == "" && !slices.Contains(histograms, string(n)) {
			t.Errorf("grafana-dashboard.json or prometheus-rules.yaml mentions %s, which ossjobwatch does not export", n)
		}
	}
	for _, m := range exportedMetrics {
		if !used[m] {
			t.Errorf("no panel or rule uses %s", m)
		}
	}
}
