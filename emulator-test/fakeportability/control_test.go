package fakeportability

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func postJSON(t *testing.T, u, body string, v any) {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	decodeResp(t, resp, v)
}

// TestControlEndpoints drives the /fake/v1 contract over HTTP, as other tools use it.
func TestControlEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	u := e.ts.URL + "/fake/v1/"
	var tr TokenResponse
	postJSON(t, u+"grants", `{"user":"alice","resources":["myactivity.search"],"access":"time-based-30d"}`, &tr)
	if tr.AccessToken == "" || tr.RefreshToken == "" || tr.ExpiresIn != 3600 {
		t.Fatalf("grant = %+v", tr)
	}
	svc := e.service(token(tr))
	var ok map[string]bool
	postJSON(t, u+"faults", `{"resource":"myactivity.search","failNextJobs":1}`, &ok)
	postJSON(t, u+"faults", `{"method":"getState","status":503,"count":1}`, &ok)
	job := e.mustInitiate(svc, "myactivity.search")

	var clock struct{ Now time.Time }
	postJSON(t, u+"clock:advance", `{"seconds":86400}`, &clock)
	var clock2 struct{ Now time.Time }
	resp, _ := http.Get(u + "clock")
	decodeResp(t, resp, &clock2)
	if d := time.Until(clock2.Now); d < 23*time.Hour || clock2.Now.Before(clock.Now) {
		t.Fatalf("clock = %v / %v", clock.Now, clock2.Now)
	}
	_, err := e.state(svc, job)
	wantAPIError(t, err, 503, "")

	var calls map[string]any
	resp, _ = http.Get(u + "calls")
	decodeResp(t, resp, &calls)
	users := calls["users"].(map[string]any)["alice"].(map[string]any)
	if calls["initiate"] != 1.0 || calls["getState"] != 1.0 || users["initiate"] != 1.0 ||
		users["initiateByResource"].(map[string]any)["myactivity.search"] != 1.0 {
		t.Fatalf("calls = %v", calls)
	}
	var jobs []JobInfo
	resp, _ = http.Get(u + "jobs?user=alice")
	decodeResp(t, resp, &jobs)
	if len(jobs) != 1 || jobs[0].ID != job || jobs[0].State != StateFailed || jobs[0].AccessType != "ACCESS_TYPE_TIME_BASED" {
		t.Fatalf("jobs = %+v", jobs)
	}
	resp, _ = http.Get(u + "jobs?user=bob")
	decodeResp(t, resp, &jobs)
	if len(jobs) != 0 {
		t.Fatalf("bob's jobs = %+v", jobs)
	}

	for _, bad := range []string{`{"user":"alice","resources":["nope.nope"]}`, `{"user":"alice","resources":["myactivity.search"],"access":"forever"}`, `{"resources":["myactivity.search"]}`, `{"usr":"x"}`} {
		resp, _ := http.Post(u+"grants", "application/json", strings.NewReader(bad))
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("grant %s = %d, want 400", bad, resp.StatusCode)
		}
	}
	for _, bad := range []string{`{}`, `{"method":"initiate"}`, `{"download":{}}`, `{"bogus":1}`} {
		resp, _ := http.Post(u+"faults", "application/json", strings.NewReader(bad))
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("fault %s = %d, want 400", bad, resp.StatusCode)
		}
	}

	postJSON(t, u+"reset", `{}`, &ok)
	resp, _ = http.Get(u + "jobs")
	decodeResp(t, resp, &jobs)
	if len(jobs) != 0 || e.srv.Clock().Offset() != 0 {
		t.Fatalf("after reset: %d jobs, offset %v", len(jobs), e.srv.Clock().Offset())
	}
	_, err = svc.AccessType.Check(nil).Do()
	wantAPIError(t, err, 401, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
}
