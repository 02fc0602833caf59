package terraform_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/portability-pipeline/pipeline/shared/logging"
)

// The log lines the log-based metrics of monitoring.tf count. Agreed with the code that writes them:
// the reconciler (issue 15) and the token refresher. notYetInCode lists those no Go file of the
// repository writes yet on this branch; once one does, its literal is found and checked like the others.
const (
	msgRepair        = "reconcile.repair"     // attributes kind, user, round; once per repair
	msgSummary       = "reconcile.summary"    // attributes repairs (int), oldestOpenRoundAgeSeconds (number); once per run
	msgRefreshFailed = "token.refresh_failed" // attribute reason, "invalid_grant" when Google refused the grant
	roundStateEvent  = "round.state"          // shared/store: the state-change line of a round (event, from, to)
)

var notYetInCode = map[string]string{
	msgRepair:        "the reconciler (issue 15)",
	msgSummary:       "the reconciler (issue 15)",
	msgRefreshFailed: "the token refresh failure line",
}

// cloudLoggingSpecial are the keys of a JSON line Cloud Logging takes out of jsonPayload into fields of
// the LogEntry (https://cloud.google.com/logging/docs/structured-logging, "Special JSON fields in
// logs"). Everything else, "message" included, stays in jsonPayload: the message is jsonPayload.message.
var cloudLoggingSpecial = []string{
	"severity", "time", "timestamp", "timestampSeconds", "timestampNanos", "httpRequest",
	"logging.googleapis.com/insertId", "logging.googleapis.com/labels", "logging.googleapis.com/operation",
	"logging.googleapis.com/sourceLocation", "logging.googleapis.com/spanId", "logging.googleapis.com/trace",
	"logging.googleapis.com/trace_sampled",
}

// entry is a log line as Cloud Logging stores it from a Cloud Run function: its monitored resource and
// its jsonPayload.
type entry struct {
	resource map[string]string // "type", "labels.service_name"
	payload  map[string]any
}

// logLine writes one line through shared/logging (the functions' logger) and returns it as Cloud Logging
// stores it when the function named service writes it.
func logLine(t *testing.T, service string, write func(*slog.Logger)) entry {
	t.Helper()
	var buf bytes.Buffer
	write(logging.New(&buf, "DEBUG"))
	if strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("want one log line, got %q", buf.String())
	}
	var payload map[string]any
	if err := json.Unmarshal(buf.Bytes(), &payload); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, buf.String())
	}
	if _, ok := payload["severity"]; !ok {
		t.Fatalf("shared/logging wrote no severity, Cloud Logging would not see the level: %s", buf.String())
	}
	for _, k := range cloudLoggingSpecial {
		delete(payload, k)
	}
	return entry{resource: map[string]string{"type": "cloud_run_revision", "labels.service_name": service}, payload: payload}
}

// filterTerm is one comparison of a filter: FIELD OP "VALUE".
var filterTerm = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_.]*)(=~|!=|=)"((?:[^"\\]|\\.)*)"$`)

// matches evaluates a log filter made of AND-ed comparisons (the only form monitoring.tf uses; anything
// else fails the test rather than being guessed) against e.
func matches(t *testing.T, filter string, e entry) bool {
	t.Helper()
	if strings.Contains(filter, " OR ") || strings.Contains(filter, "NOT ") || strings.ContainsAny(filter, "()") {
		t.Fatalf("filter %q: only AND-ed comparisons are understood here", filter)
	}
	ok := true
	for _, term := range strings.Split(filter, " AND ") {
		m := filterTerm.FindStringSubmatch(strings.TrimSpace(term))
		if m == nil {
			t.Fatalf("filter %q: cannot read the term %q", filter, term)
		}
		field, op, want := m[1], m[2], strings.ReplaceAll(m[3], `\"`, `"`)
		var got string
		var present bool
		switch {
		case strings.HasPrefix(field, "resource."):
			got, present = e.resource[strings.TrimPrefix(field, "resource.")]
		case strings.HasPrefix(field, "jsonPayload."):
			got, present = payloadString(e.payload, strings.TrimPrefix(field, "jsonPayload."))
		default:
			t.Fatalf("filter %q: field %s is neither resource.* nor jsonPayload.*", filter, field)
		}
		switch op {
		case "=":
			ok = ok && present && got == want
		case "!=":
			ok = ok && (!present || got != want)
		case "=~":
			ok = ok && present && regexp.MustCompile(want).MatchString(got)
		}
	}
	return ok
}

// payloadString reads a top-level jsonPayload field as the filter compares it (a string, or a number's
// decimal form).
func payloadString(p map[string]any, field string) (string, bool) {
	v, ok := p[field]
	switch v := v.(type) {
	case string:
		return v, ok
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), ok
	case bool:
		return strconv.FormatBool(v), ok
	}
	return "", false
}

// extractField returns FIELD of EXTRACT(jsonPayload.FIELD).
func extractField(t *testing.T, expr string) string {
	t.Helper()
	m := regexp.MustCompile(`^EXTRACT\(jsonPayload\.([A-Za-z_][A-Za-z0-9_]*)\)$`).FindStringSubmatch(expr)
	if m == nil {
		t.Fatalf("extractor %q is not EXTRACT(jsonPayload.FIELD)", expr)
	}
	return m[1]
}

// tfLogMetric is one google_logging_metric of monitoring.tf, its expressions evaluated.
type tfLogMetric struct {
	filter          string
	valueExtractor  string
	labelExtractors map[string]string
}

func logMetrics(t *testing.T, m *tfModule) map[string]tfLogMetric {
	t.Helper()
	ctx := m.evalContext(nil)
	str := func(b *hclsyntax.Block, name, attr string) string {
		a, ok := b.Body.Attributes[attr]
		if !ok {
			return ""
		}
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("terraform: google_logging_metric.%s.%s is not made of literals and literal locals: %s", name, attr, diags.Error())
		}
		return stringOf(t, v, "google_logging_metric."+name+"."+attr)
	}
	out := map[string]tfLogMetric{}
	for name, b := range m.resources["google_logging_metric"] {
		lm := tfLogMetric{filter: str(b, name, "filter"), valueExtractor: str(b, name, "value_extractor"), labelExtractors: map[string]string{}}
		if a, ok := b.Body.Attributes["label_extractors"]; ok {
			v, diags := a.Expr.Value(ctx)
			if diags.HasErrors() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
				t.Fatalf("terraform: google_logging_metric.%s.label_extractors is not a literal map", name)
			}
			for k, x := range v.AsValueMap() {
				lm.labelExtractors[k] = stringOf(t, x, "google_logging_metric."+name+".label_extractors."+k)
			}
		}
		out[name] = lm
	}
	return out
}

// TestLogMetricFiltersMatchTheLogLines writes each agreed log line through shared/logging, turns it into
// what Cloud Logging stores, and checks that exactly the right metric filters match it, that every label
// and value extractor names a field the line has, and that lines of other kinds or of other workloads are
// not counted.
func TestLogMetricFiltersMatchTheLogLines(t *testing.T) {
	requireDir(t, "shared/logging", "its JSON encoding is what Cloud Logging parses")
	tf := loadTerraform(t)
	metrics := logMetrics(t, tf)

	type line struct {
		name    string
		write   func(*slog.Logger)
		metrics []string          // the metrics that count it
		labels  map[string]string // label => value each of those metrics extracts
		value   float64           // what a distribution metric extracts (0: none)
	}
	lines := []line{
		{name: "a repair", metrics: []string{"reconcile_repairs"}, labels: map[string]string{"kind": "poll"},
			write: func(l *slog.Logger) {
				l.Info(msgRepair, "kind", "poll", "user", "u1", "round", "u1~1", "resource", "myactivity.search", "job", "j1")
			}},
		{name: "a run's summary", metrics: []string{"oldest_open_round_age"}, value: 93600.5,
			write: func(l *slog.Logger) {
				l.Info(msgSummary, "repairs", 3, "failed", 0, "oldestOpenRoundAgeSeconds", 93600.5, "oldestOpenRound", "u1~1")
			}},
		{name: "a refresh refused with invalid_grant", metrics: []string{"token_refresh_failures"},
			write: func(l *slog.Logger) { l.Warn(msgRefreshFailed, "reason", "invalid_grant", "user", "u1") }},
		{name: "a refresh that failed for another reason", metrics: nil,
			write: func(l *slog.Logger) { l.Warn(msgRefreshFailed, "reason", "temporarily_unavailable", "user", "u1") }},
		{name: "a round's state change", metrics: []string{"round_state_changes"}, labels: map[string]string{"to": "complete"},
			write: func(l *slog.Logger) {
				l.Info("round exporting -> complete", "event", roundStateEvent, "from", "exporting", "to", "complete", "round", "u1~1")
			}},
		{name: "a resource's state change", metrics: nil,
			write: func(l *slog.Logger) {
				l.Info("resource exporting -> done", "event", "resource.state", "from", "exporting", "to", "done", "round", "u1~1")
			}},
		{name: "a repair that failed", metrics: nil,
			write: func(l *slog.Logger) { l.Warn(msgRepair+" failed", "kind", "poll", "error", "deadline exceeded") }},
		{name: "a line that only mentions a repair", metrics: nil,
			write: func(l *slog.Logger) { l.Info("replayed", "note", msgRepair) }},
	}

	covered := map[string]bool{}
	for _, ln := range lines {
		for _, n := range ln.metrics {
			covered[n] = true
		}
	}
	for _, name := range sortedKeys(metrics) {
		if !covered[name] {
			t.Errorf("google_logging_metric.%s: no log line of this test is counted by it; add the line it counts", name)
		}
	}

	services := tf.localValue(t, "function_names")
	if services == cty.NilVal || !services.Type().IsObjectType() {
		t.Fatal("terraform: local.function_names is not a literal map")
	}
	for _, ln := range lines {
		for svcKey, svc := range services.AsValueMap() {
			e := logLine(t, svc.AsString(), ln.write)
			for _, name := range sortedKeys(metrics) {
				lm := metrics[name]
				want := false
				for _, n := range ln.metrics {
					want = want || n == name
				}
				if got := matches(t, lm.filter, e); got != want {
					t.Errorf("%s written by %s (%s): google_logging_metric.%s matches %v, want %v\nfilter  %s\npayload %v",
						ln.name, svc.AsString(), svcKey, name, got, want, lm.filter, e.payload)
					continue
				}
				if !want {
					continue
				}
				for label, expr := range lm.labelExtractors {
					got, ok := payloadString(e.payload, extractField(t, expr))
					if !ok || got != ln.labels[label] {
						t.Errorf("%s: google_logging_metric.%s label %s extracts %q, want %q", ln.name, name, label, got, ln.labels[label])
					}
				}
				if lm.valueExtractor != "" {
					v, ok := e.payload[extractField(t, lm.valueExtractor)].(float64)
					if !ok || v != ln.value {
						t.Errorf("%s: google_logging_metric.%s extracts %v (a number: %v), want %v", ln.name, name, v, ok, ln.value)
					}
				}
			}
		}
		// The same line from another workload of the project counts nowhere.
		e := logLine(t, "other-portability-app", ln.write)
		for _, name := range sortedKeys(metrics) {
			if matches(t, metrics[name].filter, e) {
				t.Errorf("%s written by another service: google_logging_metric.%s counts it", ln.name, name)
			}
		}
	}
}

// TestLogMetricLinesAreWritten checks that the code writes the lines the metrics count: the state-change
// line of a round carries event round.state and a "to" attribute (shared/store), and each agreed message
// appears in the code unless it is listed in notYetInCode.
func TestLogMetricLinesAreWritten(t *testing.T) {
	requireDir(t, "shared/store", "it writes the state-change lines")
	events := stateEvents(t, filepath.Join(repoRoot, "shared", "store"))
	if !events[roundStateEvent] {
		t.Errorf("shared/store writes no log line with \"event\", %q and a \"to\" attribute (found %v): round_state_changes counts nothing", roundStateEvent, events)
	}

	literals := goStringLiterals(t, repoRoot)
	for _, msg := range []string{msgRepair, msgSummary, msgRefreshFailed} {
		if literals[msg] {
			continue
		}
		if who, ok := notYetInCode[msg]; ok {
			t.Logf("%q is not written by any Go code on this branch yet (expected from %s)", msg, who)
			continue
		}
		t.Errorf("no Go code writes the log message %q that a log-based metric counts", msg)
	}
}

// stateEvents returns the values of the constants that dir's code logs as "event", <const> in a list of
// key-value arguments that also has a "to" key.
func stateEvents(t *testing.T, dir string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	paths, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	consts := map[string]string{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i]); ok {
							consts[id.Name] = s
						}
					}
				}
			}
			return true
		})
	}
	out := map[string]bool{}
	check := func(args []ast.Expr) {
		hasTo := false
		var events []string
		for i, a := range args {
			s, ok := stringLit(a)
			if !ok {
				continue
			}
			hasTo = hasTo || s == "to"
			if s == "event" && i+1 < len(args) {
				if id, ok := args[i+1].(*ast.Ident); ok && consts[id.Name] != "" {
					events = append(events, consts[id.Name])
				}
			}
		}
		for _, e := range events {
			out[e] = out[e] || hasTo
		}
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				check(n.Args)
			case *ast.CompositeLit:
				check(n.Elts)
			}
			return true
		})
	}
	return out
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// goStringLiterals collects the string literals of the repository's non-test Go files (outside
// terraform/ and emulator-test/, whose stand-ins are not the code that runs in production).
func goStringLiterals(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "terraform", "emulator-test", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := stringLit(asExpr(n)); ok {
				out[s] = true
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func asExpr(n ast.Node) ast.Expr {
	if e, ok := n.(ast.Expr); ok {
		return e
	}
	return nil
}
