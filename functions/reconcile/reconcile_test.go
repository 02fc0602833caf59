package reconcile_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/functions/reconcile"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
)

func TestMain(m *testing.M) { os.Exit(pipelinetest.Main(m)) }

// TestHandlerAdmitsOnlyTheScheduler: the entry point runs only for an OIDC token of the reconcile
// invoker for its own URL, as the poll task endpoint admits only the tasks invoker.
func TestHandlerAdmitsOnlyTheScheduler(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{})
	const url = "http://reconcile.invalid/"
	invoker := "reconcile-invoker@" + h.Env.Config.ProjectID + ".iam.gserviceaccount.com"
	cfg := *h.Env.Config
	cfg.Reconcile.URL, cfg.Reconcile.InvokerEmail, cfg.Tasks.OIDCIssuer = url, invoker, h.FakeURL
	env := *h.Env
	env.Config = &cfg
	handler, err := reconcile.NewHandler(&env)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)

	token := func(email, audience string) string {
		tok, err := h.Fake.IDToken(h.FakeURL, email, audience)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"the tasks invoker's token", "Bearer " + token(h.Env.Config.Tasks.InvokerEmail, url), http.StatusUnauthorized},
		{"another audience", "Bearer " + token(invoker, "http://poll.invalid/"), http.StatusUnauthorized},
		{"garbage", "Bearer not-a-jwt", http.StatusUnauthorized},
		{"the scheduler's token", "Bearer " + token(invoker, url), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusOK {
				var counts map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&counts); err != nil || counts["repairs"] != float64(0) {
					t.Fatalf("answer %v (%v), want repairs 0", counts, err)
				}
			}
		})
	}
	if !strings.Contains(h.Logs.String(), `"message":"reconcile.summary"`) {
		t.Errorf("no reconcile.summary line:\n%s", h.Logs.String())
	}
}
