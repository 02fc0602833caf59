package pipeline_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline"
	"github.com/portability-pipeline/pipeline/shared/config"
)

// TestRoutesNameConfigVariables: every route's Var is a variable shared/config reads, of the kind its
// trigger needs (a topic for a pushed route, a URL otherwise); entry points are unique.
func TestRoutesNameConfigVariables(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range pipeline.Routes {
		if seen[r.Entry] {
			t.Errorf("entry point %s routed twice", r.Entry)
		}
		seen[r.Entry] = true
		if _, ok := pipeline.Setting(&config.Config{}, r.Var); !ok {
			t.Errorf("%s: shared/config has no variable %s", r.Entry, r.Var)
		}
		if topic := strings.HasPrefix(r.Var, "TOPIC_"); topic != r.Trigger.Pushed() {
			t.Errorf("%s (%s) is named by %s", r.Entry, r.Trigger, r.Var)
		}
		if r.Trigger == pipeline.Task && (!r.Needs.TaskAuth || r.Needs.TaskAudience == nil) {
			t.Errorf("%s is called by Cloud Tasks but does not check its tokens", r.Entry)
		}
	}
}

// TestMisconfiguredEntryPoints: an entry point builds nothing in init and, while its configuration is
// incomplete, answers every request "not configured" (the consent page a clear page of its own).
func TestMisconfiguredEntryPoints(t *testing.T) {
	t.Setenv("PROJECT_ID", "")
	for _, r := range pipeline.Routes {
		h := r.Lazy()
		for range 2 { // a failed build is tried again, and fails again
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
			want := http.StatusInternalServerError
			if r.Trigger == pipeline.Browser {
				want = http.StatusServiceUnavailable
			}
			if rec.Code != want {
				t.Errorf("%s: status %d, want %d (%s)", r.Entry, rec.Code, want, rec.Body.String())
			}
		}
	}
}
