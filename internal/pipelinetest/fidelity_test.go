package pipelinetest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// TestProductionAnswers runs a round against every answer Cloud Storage and the API give (or could give)
// that the plain scenarios do not: each ends done (the pipeline survived it) or failed with a reason
// (no retry could help), and the round, the reset and the token end either way.
func TestProductionAnswers(t *testing.T) {
	t.Parallel()
	a, b := "myactivity.search", "youtube.subscriptions"
	both := func(s string) map[string]string { return map[string]string{a: s, b: s} }
	bothIn := func(s store.ResourceState) map[string]store.ResourceState {
		return map[string]store.ResourceState{a: s, b: s}
	}
	fault := func(t *testing.T, h *pipelinetest.Harness, f fakeportability.Fault) {
		t.Helper()
		f.User = "u"
		inject(t, h, f)
	}
	dl := func(d fakeportability.DownloadFault) fakeportability.Fault {
		return fakeportability.Fault{Download: &d}
	}
	runScenarios(t, []string{a, b}, []tableCase{
		{
			name:   "expired URLs answered 403 ExpiredToken (the older answer)",
			fake:   fakeportability.Options{ExpiredURL403: true},
			during: atFirst("transfer-parts", expireURLs),
			want:   want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "fresh URLs refused the same way",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) {
				h.Fake.InjectFault(fakeportability.Fault{User: "u", Download: &fakeportability.DownloadFault{Status: 400, Code: "ExpiredToken", Count: 1000}})
			}),
			want: want{states: bothIn(store.ResFailed), reasonHas: both("refused"), calls: map[string]int{"reset": 1}},
		},
		{
			name: "403 AccessDenied once mid-copy",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) {
				h.Fake.InjectFault(fakeportability.Fault{User: "u", Download: &fakeportability.DownloadFault{Status: 403, Code: "AccessDenied"}})
			}),
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "404 NoSuchKey inside the retention once mid-copy",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) {
				h.Fake.InjectFault(fakeportability.Fault{User: "u", Download: &fakeportability.DownloadFault{Status: 404, Code: "NoSuchKey"}})
			}),
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "403 SignatureDoesNotMatch at the probe once",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, dl(fakeportability.DownloadFault{Status: 403, Code: "SignatureDoesNotMatch"}))
			},
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			// With positions, a refresh would copy another file's bytes under this file's plan.
			name: "URLs in another order on every state call, and expired mid-copy",
			fake: fakeportability.Options{URLsPerJob: 4},
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, fakeportability.Fault{State: &fakeportability.StateFault{ShuffleURLs: true, Count: 1000}})
			},
			during: atFirst("transfer-parts", expireURLs),
			want:   want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "COMPLETE without URLs once",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, fakeportability.Fault{State: &fakeportability.StateFault{NoURLs: true}})
			},
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "COMPLETE without URLs every time",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, fakeportability.Fault{State: &fakeportability.StateFault{NoURLs: true, Count: 1000}})
			},
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}},
			after: func(t *testing.T, h *pipelinetest.Harness, round string) {
				for _, r := range []string{a, b} {
					if objs, _ := h.Env.Store.ListObjects(h.Ctx, round, r); len(objs) != 0 {
						t.Errorf("%s: %d objects for an export with no files", r, len(objs))
					}
				}
			},
		},
		{
			name: "no x-goog-hash",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, dl(fakeportability.DownloadFault{NoHash: true, Count: 1000}))
			},
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "x-goog-hash without crc32c",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, dl(fakeportability.DownloadFault{NoCRC32C: true, Count: 1000}))
			},
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "no Content-Length",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, dl(fakeportability.DownloadFault{NoContentLength: true, Count: 1000}))
			},
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "Range ignored a few times",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) {
				h.Fake.InjectFault(fakeportability.Fault{User: "u", Download: &fakeportability.DownloadFault{IgnoreRange: true, Count: 3}})
			}),
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "Range always ignored",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, dl(fakeportability.DownloadFault{IgnoreRange: true, Count: 100000}))
			},
			want: want{states: map[string]store.ResourceState{a: store.ResFailed}, reasonHas: map[string]string{a: "ignoring byte ranges"}, calls: map[string]int{"reset": 1}},
		},
		{
			name: "206 with a short body",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) {
				h.Fake.InjectFault(fakeportability.Fault{User: "u", Download: &fakeportability.DownloadFault{ShortBy: 1000, Count: 2}})
			}),
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			name: "302 to another host",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, dl(fakeportability.DownloadFault{RedirectTo: "http://elsewhere.invalid/object", Count: 1000}))
			},
			want: want{states: bothIn(store.ResFailed), reasonHas: both("signed URL refused"), calls: map[string]int{"reset": 1}},
		},
		{
			name: "302 to another host mid-copy",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) {
				h.Fake.InjectFault(fakeportability.Fault{User: "u", Download: &fakeportability.DownloadFault{RedirectTo: "http://elsewhere.invalid/object", Count: 1000}})
			}),
			want: want{states: bothIn(store.ResFailed), reasonHas: both("refused"), calls: map[string]int{"reset": 1}},
		},
		{
			name:  "archive file above MAX_ARCHIVE_FILE_SIZE",
			env:   map[string]string{"MAX_ARCHIVE_FILE_SIZE": "1048576"},
			want:  want{states: bothIn(store.ResFailed), reasonHas: both("MAX_ARCHIVE_FILE_SIZE"), calls: map[string]int{"reset": 1}},
			after: noTransferParts,
		},
		{
			name:  "signed URLs on a host not on the allow-list",
			env:   map[string]string{"ARCHIVE_URL_HOSTS": "storage.googleapis.com"},
			want:  want{states: bothIn(store.ResFailed), reasonHas: both("not on the allow-list"), calls: map[string]int{"reset": 1}},
			after: noTransferParts,
		},
		{
			name: "job gone at Google (state call 404)",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, fakeportability.Fault{Method: "getState", Status: 404, Count: 2})
			},
			want: want{states: bothIn(store.ResFailed), reasonHas: both("job is gone"), calls: map[string]int{"reset": 1}},
		},
		{
			name: "job gone at Google when the URLs expired",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) {
				expireURLs(h)
				h.Fake.InjectFault(fakeportability.Fault{User: "u", Method: "getState", Status: 404, Count: 1000})
			}),
			want: want{states: map[string]store.ResourceState{a: store.ResFailed}, reasonHas: map[string]string{a: "job is gone"}, calls: map[string]int{"reset": 1}},
		},
		{
			name: "reset answers 503 eight times",
			before: func(t *testing.T, h *pipelinetest.Harness) {
				fault(t, h, fakeportability.Fault{Method: "reset", Status: 503, Count: 8})
			},
			want: want{states: bothIn(store.ResDone), calls: map[string]int{"reset": 1}, verify: true},
		},
		{
			// The person removed the app in their Google account: the stored access token is refused and
			// the refresh answers invalid_grant.
			name: "token endpoint answers invalid_grant mid-round",
			during: atFirst("transfer-parts", func(h *pipelinetest.Harness) {
				h.Fake.Clock().Advance(8 * time.Hour) // access token and signed URLs expired
				h.Fake.InjectFault(fakeportability.Fault{User: "u", Method: "token", Status: 400, Count: 1000})
			}),
			want: want{states: map[string]store.ResourceState{a: store.ResFailed}, reasonHas: map[string]string{a: "no longer accepts"}},
			after: func(t *testing.T, h *pipelinetest.Harness, round string) {
				if !strings.Contains(h.Logs.String(), `"message":"token.refresh_failed","reason":"invalid_grant"`) {
					t.Error(`no log line {"message":"token.refresh_failed","reason":"invalid_grant"}`)
				}
			},
		},
	})
}

// noTransferParts: a file refused at planning is never copied.
func noTransferParts(t *testing.T, h *pipelinetest.Harness, round string) {
	t.Helper()
	if n := len(h.Objects("")); n != 0 {
		t.Errorf("%d objects in the bucket after the archive was refused at planning", n)
	}
}

// A job Google never finishes: the poll ladder's last step bounds the state calls (one per 60 min), no
// matter how long. What ends such a resource is the max job age of issue 15; here it stays exporting.
func TestJobInProgressForWeeks(t *testing.T) {
	t.Parallel()
	a := "myactivity.search"
	h := pipelinetest.New(t, pipelinetest.Options{Env: map[string]string{"POLL_LADDER": "5m,10m,20m,40m,60m"}})
	h.Consent("u", []string{a}, "one-time")
	inject(t, h, fakeportability.Fault{User: "u", Resource: a, StallNextJobs: 1})
	start := h.Fake.Clock().Now()
	_, busy := h.RunUpTo(400)
	if !busy {
		t.Fatal("the pipeline went quiet while the job is still running at Google")
	}
	elapsed := h.Fake.Clock().Now().Sub(start)
	calls := h.UserCalls("u")["getState"]
	if elapsed < 14*24*time.Hour {
		t.Fatalf("only %v of virtual time passed", elapsed)
	}
	// 5 ladder steps (75 min), then one call per hour; the virtual clock stops just after a call or just
	// before the next, so the count may be a couple off either way.
	if limit := 5 + int((elapsed-75*time.Minute)/time.Hour) + 2; calls > limit+2 || calls < limit-4 {
		t.Errorf("%d state calls in %v, want about %d (one per hour after the ladder)", calls, elapsed, limit)
	}
	t.Logf("%d state calls in %v of a job that never ends", calls, elapsed.Round(time.Hour))
}
