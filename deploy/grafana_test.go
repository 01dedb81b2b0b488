package deploy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/validation/stream"
)

// metricDoc is a metric the service documents: its type and labels.
type metricDoc struct {
	typ    string
	labels []string
}

var readmeMetric = regexp.MustCompile("^\\| `(leadscorer_[a-z0-9_]+)(?:\\{([a-z_,]+)\\})?` \\| (counter|gauge|histogram) \\|")

// documentedMetrics reads the README's metrics table.
func documentedMetrics(t *testing.T) map[string]metricDoc {
	t.Helper()
	out := map[string]metricDoc{}
	for _, line := range strings.Split(readFile(t, "../README.md"), "\n") {
		m := readmeMetric.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		out[m[1]] = metricDoc{typ: m[3], labels: labels}
	}
	if len(out) < 10 {
		t.Fatalf("README: found %d metrics in the metrics table; has its format changed?", len(out))
	}
	return out
}

// describer is a Registerer that only records what its collectors describe.
type describer struct{ descs []*prometheus.Desc }

func (d *describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		d.descs = append(d.descs, desc)
	}
	return nil
}
func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}
func (d *describer) Unregister(prometheus.Collector) bool { return false }

var descParts = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

// validationMetrics returns the leadscorer_validation_* metrics as the
// validator registers them (its constructor, never run).
func validationMetrics(t *testing.T) map[string]metricDoc {
	t.Helper()
	d := &describer{}
	_, err := stream.New(stream.Config{
		Brokers: []string{"127.0.0.1:1"}, ShadowTopic: "shadow", OutcomeTopic: "outcomes",
		Registry: "registry.json", Codec: schemas.NewCodec(nil, schemas.IDs{}), Registerer: d,
	})
	if err != nil {
		t.Fatalf("validation/stream.New: %v", err)
	}
	out := map[string]metricDoc{}
	for _, desc := range d.descs {
		m := descParts.FindStringSubmatch(desc.String())
		if m == nil {
			t.Fatalf("cannot read %s", desc)
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		out[m[1]] = metricDoc{typ: "gauge", labels: labels}
	}
	if len(out) == 0 {
		t.Fatal("the validator registered no metrics")
	}
	return out
}

// dashboard is the part of the Grafana JSON the checks read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// exprs returns every PromQL expression with where it is.
func (d *dashboard) exprs() map[string]string {
	out := map[string]string{}
	for _, p := range d.allPanels() {
		for i, tg := range p.Targets {
			if tg.Expr != "" {
				out[fmt.Sprintf("panel %q target %d", p.Title, i)] = tg.Expr
			}
		}
	}
	for _, v := range d.Templating.List {
		var q struct{ Query string }
		if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
			out["variable "+v.Name] = q.Query
		}
	}
	return out
}

var (
	metricRef  = regexp.MustCompile(`\bleadscorer_[a-z0-9_]+\b`)
	byClause   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcherKey = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	selectorRe = regexp.MustCompile(`\{([^}]*)\}`)
	// targetLabels are added by Prometheus and the PodMonitor, not the service.
	targetLabels = []string{"namespace", "pod", "instance", "job", "container"}
)

// checkDashboard returns every metric or label the dashboard queries that
// the service does not document, and every required view it lacks.
func checkDashboard(d *dashboard, known map[string]metricDoc) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if d.UID == "" || d.Title == "" {
		bad("dashboard needs a uid and a title")
	}
	ids := map[int]bool{}
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			bad("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			bad("panel %q has no position", p.Title)
		}
	}
	queried := map[string]bool{}
	for where, expr := range d.exprs() {
		allowed := slices.Clone(targetLabels)
		for _, ref := range metricRef.FindAllString(expr, -1) {
			name, doc, ok := resolveMetric(ref, known)
			if !ok {
				bad("%s queries %s, which the service does not document (README metrics table or the validation gauges)", where, ref)
				continue
			}
			queried[ref] = true
			queried[name] = true
			allowed = append(allowed, doc.labels...)
			if doc.typ == "histogram" {
				allowed = append(allowed, "le")
			}
		}
		var used []string
		for _, m := range byClause.FindAllStringSubmatch(expr, -1) {
			for _, l := range strings.Split(m[1], ",") {
				used = append(used, strings.TrimSpace(l))
			}
		}
		for _, s := range selectorRe.FindAllStringSubmatch(expr, -1) {
			for _, m := range matcherKey.FindAllStringSubmatch(s[1], -1) {
				used = append(used, m[1])
			}
		}
		for _, l := range used {
			if l != "" && !slices.Contains(allowed, l) {
				bad("%s uses label %q, which none of its metrics has", where, l)
			}
		}
	}
	for _, want := range []struct{ metric, why string }{
		{"leadscorer_events_in_total", "throughput"},
		{"leadscorer_kafka_consumer_lag_records", "lag"},
		{"leadscorer_stage_duration_seconds_bucket", "latency percentiles"},
		{"leadscorer_dlq_records_total", "DLQ by reason"},
		{"leadscorer_redis_errors_total", "Redis errors"},
		{"leadscorer_validation_top_decile_lift", "champion vs challenger lift"},
		{"leadscorer_validation_auc", "champion vs challenger AUC"},
		{"leadscorer_validation_psi", "PSI"},
		{"leadscorer_validation_rollback_criterion", "rollback criteria"},
	} {
		if !queried[want.metric] {
			bad("no panel queries %s (%s)", want.metric, want.why)
		}
	}
	return errs
}

// resolveMetric maps a series name to its documented metric: a histogram's
// _bucket, _sum and _count series belong to it.
func resolveMetric(ref string, known map[string]metricDoc) (string, metricDoc, bool) {
	if doc, ok := known[ref]; ok {
		return ref, doc, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(ref, suf); ok {
			if doc, ok := known[base]; ok && doc.typ == "histogram" {
				return base, doc, true
			}
		}
	}
	return "", metricDoc{}, false
}

func loadDashboard(t *testing.T, text string) *dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		t.Fatalf("grafana/leadscorer.json: %v", err)
	}
	return &d
}

func knownMetrics(t *testing.T) map[string]metricDoc {
	known := documentedMetrics(t)
	for k, v := range validationMetrics(t) {
		known[k] = v
	}
	return known
}

func TestDashboardQueriesOnlyDocumentedMetrics(t *testing.T) {
	d := loadDashboard(t, readFile(t, "grafana/leadscorer.json"))
	for _, err := range checkDashboard(d, knownMetrics(t)) {
		t.Error(err)
	}
}

// TestDashboardCheckCatchesDrift: each broken dashboard must be reported.
func TestDashboardCheckCatchesDrift(t *testing.T) {
	good := readFile(t, "grafana/leadscorer.json")
	known := knownMetrics(t)
	cases := []struct{ name, from, to, want string }{
		{"a renamed metric is refused", "leadscorer_redis_errors_total", "leadscorer_redis_failures_total", "does not document"},
		{"a label the metric lacks is refused", "sum by (class) (rate(leadscorer_dlq_records_total", "sum by (reason) (rate(leadscorer_dlq_records_total", `label "reason"`},
		{"a summary quantile on a histogram is refused", "leadscorer_stage_duration_seconds_bucket", "leadscorer_stage_duration_seconds_quantile", "does not document"},
		{"a dashboard without the lag panel is refused", "leadscorer_kafka_consumer_lag_records", "leadscorer_batch_records", "(lag)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("the dashboard has no %q to break", tc.from)
			}
			errs := checkDashboard(loadDashboard(t, strings.ReplaceAll(good, tc.from, tc.to)), known)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("no error containing %q; got %v", tc.want, errs)
			}
		})
	}
}
