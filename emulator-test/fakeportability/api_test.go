package fakeportability

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/googleapis/gax-go/v2/apierror"
	"golang.org/x/oauth2"
	dataportability "google.golang.org/api/dataportability/v1"
	"google.golang.org/api/googleapi"
)

func TestInitiateAndState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, _ := e.grant("alice", "one-time", "myactivity.search")
	resp, err := svc.PortabilityArchive.Initiate(&dataportability.InitiatePortabilityArchiveRequest{
		Resources: []string{"myactivity.search"}, StartTime: "2024-01-01T00:00:00Z", EndTime: "2024-06-01T00:00:00Z",
	}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if resp.AccessType != "ACCESS_TYPE_ONE_TIME" || resp.ArchiveJobId == "" {
		t.Fatalf("initiate = %+v", resp)
	}
	st := e.mustState(svc, resp.ArchiveJobId)
	if st.State != StateInProgress || len(st.Urls) != 0 {
		t.Fatalf("state = %+v, want IN_PROGRESS without urls", st)
	}
	if st.Name != "archiveJobs/"+resp.ArchiveJobId+"/portabilityArchiveState" || st.StartTime != "2024-01-01T00:00:00Z" ||
		!strings.HasPrefix(st.ExportTime, "2024-06-01T00:00:00") {
		t.Fatalf("state = %+v", st)
	}
	e.finish()
	st = e.mustState(svc, resp.ArchiveJobId)
	if st.State != StateComplete || len(st.Urls) != 2 {
		t.Fatalf("state = %+v, want COMPLETE with 2 urls", st)
	}

	// Without a time filter, startTime is absent and exportTime is the request time.
	svc2, _ := e.grant("bob", "one-time", "chrome.bookmarks")
	job := e.mustInitiate(svc2, "chrome.bookmarks")
	st = e.mustState(svc2, job)
	exp, err := time.Parse(time.RFC3339Nano, st.ExportTime)
	if st.StartTime != "" || err != nil || e.srv.Clock().Now().Sub(exp) > time.Minute {
		t.Fatalf("state = %+v (%v)", st, err)
	}
	// Another user's job is not found.
	if _, err := e.state(svc, job); err == nil {
		t.Fatal("alice sees bob's job")
	} else {
		wantAPIError(t, err, http.StatusNotFound, "")
	}
}

func TestInitiateErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, _ := e.grant("alice", "one-time", "myactivity.search", "chrome.bookmarks")
	bad := e.service(token(TokenResponse{AccessToken: "ya29.garbage", ExpiresIn: 3600}))
	tests := []struct {
		name    string
		svc     *dataportability.Service
		req     dataportability.InitiatePortabilityArchiveRequest
		code    int
		status  string
		reason  string
		message string
	}{
		{"unknown resource", svc, dataportability.InitiatePortabilityArchiveRequest{Resources: []string{"myactivity.nope"}}, 400, "INVALID_ARGUMENT", "", "Invalid resource"},
		{"scope URL instead of group", svc, dataportability.InitiatePortabilityArchiveRequest{Resources: []string{"https://www.googleapis.com/auth/dataportability.myactivity.search"}}, 400, "INVALID_ARGUMENT", "", "Invalid resource"},
		{"no resources", svc, dataportability.InitiatePortabilityArchiveRequest{}, 400, "INVALID_ARGUMENT", "", "at least one"},
		{"not granted", svc, dataportability.InitiatePortabilityArchiveRequest{Resources: []string{"myactivity.youtube"}}, 403, "PERMISSION_DENIED", "", "The requested resources are not authorized by the OAuth token."},
		{"time filter unsupported", svc, dataportability.InitiatePortabilityArchiveRequest{Resources: []string{"chrome.bookmarks"}, StartTime: "2024-01-01T00:00:00Z"}, 400, "INVALID_ARGUMENT", "", "Time filters"},
		{"bad time", svc, dataportability.InitiatePortabilityArchiveRequest{Resources: []string{"myactivity.search"}, EndTime: "yesterday"}, 400, "INVALID_ARGUMENT", "", "endTime"},
		{"bad token", bad, dataportability.InitiatePortabilityArchiveRequest{Resources: []string{"myactivity.search"}}, 401, "UNAUTHENTICATED", "ACCESS_TOKEN_TYPE_UNSUPPORTED", "invalid authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.svc.PortabilityArchive.Initiate(&tt.req).Do()
			wantAPIError(t, err, tt.code, tt.reason)
			var gerr *googleapi.Error
			if !errors.As(err, &gerr) || !strings.Contains(gerr.Message, tt.message) || !strings.Contains(gerr.Body, `"status": "`+tt.status+`"`) {
				t.Fatalf("error %v, want status %s and message containing %q", err, tt.status, tt.message)
			}
		})
	}
	// An expired access token (virtual clock) gives 401 too.
	e.srv.Clock().Advance(61 * time.Minute)
	_, err := e.initiate(svc, "myactivity.search")
	wantAPIError(t, err, 401, "ACCESS_TOKEN_EXPIRED")
}

func TestOneTimeRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, _ := e.grant("alice", "one-time", "myactivity.search", "chrome.bookmarks")
	job := e.mustInitiate(svc, "myactivity.search")

	// Identical job running: 409 with the running job's ID.
	_, err := e.initiate(svc, "myactivity.search")
	ae := wantAPIError(t, err, http.StatusConflict, "ALREADY_EXISTS_ONE_TIME")
	if ae.Metadata()["job_id"] != job {
		t.Fatalf("metadata = %v, want job_id %s", ae.Metadata(), job)
	}
	// Overlapping but not identical: exhausted.
	_, err = e.initiate(svc, "myactivity.search", "chrome.bookmarks")
	wantAPIError(t, err, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED_ONE_TIME")

	e.finish()
	_, err = e.initiate(svc, "myactivity.search")
	ae = wantAPIError(t, err, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED_ONE_TIME")
	if ae.Metadata()["previous_job_ids"] != job {
		t.Fatalf("metadata = %v, want previous_job_ids %s", ae.Metadata(), job)
	}
	// Still exhausted a week later: only reset helps.
	e.srv.Clock().Advance(7 * 24 * time.Hour)
	svc, _ = e.grant("alice", "one-time", "myactivity.search")
	_, err = e.initiate(svc, "myactivity.search")
	wantAPIError(t, err, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED_ONE_TIME")

	// The other resource is still free.
	svcB, _ := e.grant("alice", "one-time", "chrome.bookmarks")
	e.mustInitiate(svcB, "chrome.bookmarks")

	// Reset revokes every token of the user (401 after) and clears exhaustion.
	if _, err := svc.Authorization.Reset(&dataportability.ResetAuthorizationRequest{}).Do(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dataportability.Service{svc, svcB} {
		_, err = s.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do()
		wantAPIError(t, err, http.StatusUnauthorized, "ACCESS_TOKEN_EXPIRED")
	}
	svc, _ = e.grant("alice", "one-time", "myactivity.search")
	e.mustInitiate(svc, "myactivity.search")
}

func TestResetBodyMustBeEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	tr, _ := e.srv.Grant(GrantRequest{User: "alice", Resources: []string{"myactivity.search"}})
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/authorization:reset", strings.NewReader(`{"force":true}`))
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("reset with a body = %d, want 400", resp.StatusCode)
	}
}

func TestTimeBasedRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, tok := e.grant("alice", "time-based-30d", "myactivity.youtube")
	resp, err := e.initiate(svc, "myactivity.youtube")
	if err != nil || resp.AccessType != "ACCESS_TYPE_TIME_BASED" {
		t.Fatalf("initiate = %+v, %v", resp, err)
	}
	created := e.srv.Clock().Now()
	_, err = e.initiate(svc, "myactivity.youtube")
	ae := wantAPIError(t, err, http.StatusConflict, "ALREADY_EXISTS_TIME_BASED")
	if ae.Metadata()["job_id"] != resp.ArchiveJobId {
		t.Fatalf("metadata = %v", ae.Metadata())
	}
	e.finish()
	_, err = e.initiate(svc, "myactivity.youtube")
	ae = wantAPIError(t, err, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED_TIME_BASED")
	after, perr := time.Parse(time.RFC3339, ae.Metadata()["timestamp_after_24hrs"])
	if perr != nil || after.Sub(created.Add(24*time.Hour)).Abs() > 2*time.Second {
		t.Fatalf("timestamp_after_24hrs = %q, want about %v", ae.Metadata()["timestamp_after_24hrs"], created.Add(24*time.Hour))
	}
	if ae.Metadata()["previous_job_ids"] != resp.ArchiveJobId {
		t.Fatalf("metadata = %v", ae.Metadata())
	}

	// 24 h later the next export is allowed (after a refresh: access tokens live 1 h).
	e.srv.Clock().Advance(24 * time.Hour)
	svc = e.service(expired(tok))
	second := e.mustInitiate(svc, "myactivity.youtube")
	e.finish()
	e.srv.Clock().Advance(24 * time.Hour)
	_, err = e.initiate(svc, "myactivity.youtube")
	wantAPIError(t, err, http.StatusUnauthorized, "ACCESS_TOKEN_EXPIRED")
	if _, err := e.oauthConfig().TokenSource(e.ctx, expired(tok)).Token(); err != nil {
		t.Fatalf("refresh inside the grant: %v", err)
	}
	if _, err := e.state(e.service(expired(tok)), second); err != nil {
		t.Fatalf("state with a refreshed token: %v", err)
	}

	// After 30 days the grant is dead: refresh gives invalid_grant.
	e.srv.Clock().Advance(29 * 24 * time.Hour)
	if _, err := e.oauthConfig().TokenSource(e.ctx, expired(tok)).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh after grant expiry: %v, want invalid_grant", err)
	}
}

func TestTimeBasedFailedPreconditionSwitch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{TimeBasedFailedPrecondition: true})
	svc, _ := e.exported("alice", "time-based-180d", "chrome.history")
	_, err := e.initiate(svc, "chrome.history")
	ae := wantAPIError(t, err, http.StatusBadRequest, "")
	if !strings.Contains(ae.Error(), "24 hours") {
		t.Fatalf("error = %v", err)
	}
}

func TestAccessTypeCheckAndMixedJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.grant("alice", "one-time", "myactivity.search")
	// A later time-based consent does not switch a resource that already has one-time access.
	svc, _ := e.grant("alice", "time-based-30d", "myactivity.search", "myactivity.maps")
	got, err := svc.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.OneTimeResources, []string{"myactivity.search"}) || !slices.Equal(got.TimeBasedResources, []string{"myactivity.maps"}) {
		t.Fatalf("check = %+v", got)
	}
	resp, err := e.initiate(svc, "myactivity.search", "myactivity.maps")
	if err != nil || resp.AccessType != "ACCESS_TYPE_ONE_TIME" {
		t.Fatalf("mixed initiate = %+v, %v; want one-time", resp, err)
	}
	_, err = e.initiate(svc, "myactivity.maps")
	wantAPIError(t, err, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED_TIME_BASED")
}

func TestRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, _ := e.grant("alice", "one-time", "myactivity.play")
	if err := e.srv.InjectFault(Fault{Resource: "myactivity.play", FailNextJobs: 4}); err != nil {
		t.Fatal(err)
	}
	job := e.mustInitiate(svc, "myactivity.play")
	// Retry of a job that has not failed is refused.
	_, err := svc.ArchiveJobs.Retry("archiveJobs/"+job, &dataportability.RetryPortabilityArchiveRequest{}).Do()
	wantAPIError(t, err, http.StatusBadRequest, "")
	e.finish()
	if st := e.mustState(svc, job); st.State != StateFailed {
		t.Fatalf("state = %s, want FAILED", st.State)
	}
	ids := []string{job}
	for i := 1; i <= 3; i++ {
		r, err := svc.ArchiveJobs.Retry("archiveJobs/"+ids[len(ids)-1], &dataportability.RetryPortabilityArchiveRequest{}).Do()
		if err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
		if slices.Contains(ids, r.ArchiveJobId) {
			t.Fatalf("retry %d reused job ID %s", i, r.ArchiveJobId)
		}
		ids = append(ids, r.ArchiveJobId)
		e.finish()
		if st := e.mustState(svc, r.ArchiveJobId); st.State != StateFailed {
			t.Fatalf("retry %d state = %s, want FAILED", i, st.State)
		}
	}
	// A FAILED job exhausts a one-time resource: retry is the way.
	_, err = e.initiate(svc, "myactivity.play")
	wantAPIError(t, err, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED_ONE_TIME")
	// The 4th retry is refused.
	_, err = svc.ArchiveJobs.Retry("archiveJobs/"+ids[3], &dataportability.RetryPortabilityArchiveRequest{}).Do()
	wantAPIError(t, err, http.StatusBadRequest, "RETRY_LIMIT_EXCEEDED")
	jobs := e.srv.Jobs("alice")
	if len(jobs) != 4 || jobs[1].RetryOf != ids[0] || jobs[3].RetryOf != ids[2] {
		t.Fatalf("jobs = %+v", jobs)
	}
	// A successful retry after one failure.
	svc2, _ := e.grant("bob", "one-time", "myactivity.play")
	e.srv.InjectFault(Fault{Resource: "myactivity.play", FailNextJobs: 1})
	j := e.mustInitiate(svc2, "myactivity.play")
	e.finish()
	r, err := svc2.ArchiveJobs.Retry("archiveJobs/"+j, &dataportability.RetryPortabilityArchiveRequest{}).Do()
	if err != nil {
		t.Fatal(err)
	}
	e.finish()
	if st := e.mustState(svc2, r.ArchiveJobId); st.State != StateComplete || len(st.Urls) == 0 {
		t.Fatalf("retried job = %+v", st)
	}
	// archiveJobs/{id}:retry counts as the retry method (its faults too), refused calls included.
	if calls := e.srv.Calls(); calls["retry"] != 6 || calls["cancel"] != 0 {
		t.Errorf("calls = %v, want 6 retries", calls)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, _ := e.grant("alice", "time-based-30d", "myactivity.shopping")
	job := e.mustInitiate(svc, "myactivity.shopping")
	if _, err := svc.ArchiveJobs.Cancel("archiveJobs/"+job, &dataportability.CancelPortabilityArchiveRequest{}).Do(); err != nil {
		t.Fatal(err)
	}
	if st := e.mustState(svc, job); st.State != StateCancelled {
		t.Fatalf("state = %s", st.State)
	}
	if calls := e.srv.Calls(); calls["cancel"] != 1 || calls["retry"] != 0 {
		t.Errorf("calls = %v, want 1 cancel", calls)
	}
	// Cancel frees the quota: a new job inside 24 h is allowed.
	job2 := e.mustInitiate(svc, "myactivity.shopping")
	e.finish()
	// Cancel of a finished job is refused.
	_, err := svc.ArchiveJobs.Cancel("archiveJobs/"+job2, &dataportability.CancelPortabilityArchiveRequest{}).Do()
	wantAPIError(t, err, http.StatusBadRequest, "")
	// Cancel of a one-time job is refused.
	svc1, _ := e.grant("bob", "one-time", "myactivity.shopping")
	j1 := e.mustInitiate(svc1, "myactivity.shopping")
	_, err = svc1.ArchiveJobs.Cancel("archiveJobs/"+j1, &dataportability.CancelPortabilityArchiveRequest{}).Do()
	wantAPIError(t, err, http.StatusBadRequest, "")

	// The cancel fault: the next job ends CANCELLED.
	svc3, _ := e.grant("carol", "one-time", "maps.reviews")
	e.srv.InjectFault(Fault{Resource: "maps.reviews", CancelNextJobs: 1})
	j3 := e.mustInitiate(svc3, "maps.reviews")
	e.finish()
	if st := e.mustState(svc3, j3); st.State != StateCancelled {
		t.Fatalf("state = %s, want CANCELLED", st.State)
	}
}

func TestMethodFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, _ := e.grant("alice", "one-time", "myactivity.search")
	tests := []struct {
		status int
		reason string
	}{{503, ""}, {500, ""}, {429, "RATE_LIMIT_EXCEEDED"}}
	for _, tt := range tests {
		if err := e.srv.InjectFault(Fault{Method: MethodCheck, Status: tt.status, Count: 2}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			_, err := svc.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do()
			wantAPIError(t, err, tt.status, tt.reason)
		}
		if _, err := svc.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do(); err != nil {
			t.Fatalf("after the burst: %v", err)
		}
	}
	e.srv.InjectFault(Fault{Method: MethodInitiate, DelayMs: 300, Count: 1})
	start := time.Now()
	e.mustInitiate(svc, "myactivity.search")
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("delayed initiate took %v", d)
	}
	calls := e.srv.Calls()
	alice := calls["users"].(map[string]any)["alice"].(map[string]any)
	if calls["check"] != 9 || calls["initiate"] != 1 || alice["check"] != 3 ||
		alice["initiateByResource"].(map[string]int)["myactivity.search"] != 1 {
		t.Fatalf("calls = %v", calls)
	}
	for _, bad := range []Fault{{Method: "nope", Status: 500}, {Method: MethodCheck}, {Resource: "x.y", FailNextJobs: 1}, {}} {
		if err := e.srv.InjectFault(bad); err == nil {
			t.Errorf("InjectFault(%+v) accepted", bad)
		}
	}
}

func TestUserRevokeFault(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, tok := e.grant("alice", "time-based-180d", "myactivity.search")
	e.mustInitiate(svc, "myactivity.search")
	e.srv.InjectFault(Fault{User: "alice", Revoke: true})
	_, err := svc.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do()
	wantAPIError(t, err, http.StatusUnauthorized, "ACCESS_TOKEN_EXPIRED")
	if _, err := e.oauthConfig().TokenSource(e.ctx, expired(tok)).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh after revocation: %v", err)
	}
}

// TestAPIErrorAccess pins how the official client exposes the google.rpc.Status body: errors.As finds the
// *apierror.APIError (Reason, Metadata, HTTPCode); apierror.FromError on the same error finds the gRPC status
// first, which the client builds without details, so its Reason() is empty. That is gax-go's behaviour with
// real Google errors too, not the fake's: use errors.As, or apierror.FromError on a googleapi.Error rebuilt from
// Code, Message and Body.
func TestAPIErrorAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, job := e.exported("alice", "one-time", "myactivity.search")
	_, err := e.initiate(svc, "myactivity.search")

	var ae *apierror.APIError
	if !errors.As(err, &ae) || ae.Reason() != "RESOURCE_EXHAUSTED_ONE_TIME" || ae.Metadata()["previous_job_ids"] != job ||
		ae.Domain() != "dataportability.googleapis.com" || ae.HTTPCode() != 429 {
		t.Fatalf("errors.As: %v", err)
	}
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("not a googleapi.Error: %T", err)
	}
	// The raw body parses as google.rpc.Status too: a fresh googleapi.Error without the wrapped status.
	fresh, ok := apierror.FromError(&googleapi.Error{Code: gerr.Code, Message: gerr.Message, Body: gerr.Body})
	if !ok || fresh.Reason() != "RESOURCE_EXHAUSTED_ONE_TIME" || fresh.Metadata()["previous_job_ids"] != job {
		t.Fatalf("FromError(body): %v", fresh)
	}
	if outer, ok := apierror.FromError(err); !ok || outer.Reason() != "" {
		t.Logf("apierror.FromError(client error).Reason() = %q: gax-go changed, update the note", outer.Reason())
	}
}

// TestUserScopedFaults: a fault with User is taken only by that user's calls, token requests, jobs and
// downloads, even when other users come first; a fault without User is anyone's.
func TestUserScopedFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ArchiveSize: 64 << 10})
	bobSvc, bobTok := e.grant("bob", "one-time", "myactivity.search")
	aliceSvc, aliceTok := e.grant("alice", "one-time", "myactivity.search")

	// Method: alice's check fails, bob's (first in line) does not take her fault.
	if err := e.srv.InjectFault(Fault{User: "alice", Method: MethodCheck, Status: 503}); err != nil {
		t.Fatal(err)
	}
	if _, err := bobSvc.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do(); err != nil {
		t.Fatalf("bob took alice's fault: %v", err)
	}
	_, err := aliceSvc.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do()
	wantAPIError(t, err, http.StatusServiceUnavailable, "")
	if _, err := aliceSvc.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do(); err != nil {
		t.Fatalf("alice's fault taken twice: %v", err)
	}

	// Token: alice's refresh fails (x/oauth2 tries header then form auth: two requests); bob's goes through.
	e.srv.InjectFault(Fault{User: "alice", Method: MethodToken, Status: 500, Count: 2})
	if _, err := e.oauthConfig().TokenSource(e.ctx, expired(bobTok)).Token(); err != nil {
		t.Fatalf("bob's refresh took alice's fault: %v", err)
	}
	if _, err := e.oauthConfig().TokenSource(e.ctx, expired(aliceTok)).Token(); err == nil {
		t.Fatal("alice's refresh did not take her fault")
	}
	if _, err := e.oauthConfig().TokenSource(e.ctx, expired(aliceTok)).Token(); err != nil {
		t.Fatalf("alice's second refresh: %v", err)
	}

	// Job and download: alice's job fails and her download is cut; bob's job and download are clean.
	e.srv.InjectFault(Fault{User: "alice", Resource: "myactivity.search", FailNextJobs: 1})
	cut := int64(100)
	e.srv.InjectFault(Fault{User: "alice", Download: &DownloadFault{CutAfterBytes: &cut}})
	bobJob := e.mustInitiate(bobSvc, "myactivity.search")
	aliceJob := e.mustInitiate(aliceSvc, "myactivity.search")
	e.finish()
	bobState := e.mustState(bobSvc, bobJob)
	if bobState.State != StateComplete || e.mustState(aliceSvc, aliceJob).State != StateFailed {
		t.Fatalf("bob %s, alice %s: want COMPLETE and FAILED", bobState.State, e.mustState(aliceSvc, aliceJob).State)
	}
	if resp, b := get(t, bobState.Urls[0]); resp.StatusCode != 200 || len(b) != int(resp.ContentLength) {
		t.Fatalf("bob's download: %d, %d of %d bytes", resp.StatusCode, len(b), resp.ContentLength)
	}
	if n := len(e.srv.faults.download); n != 1 {
		t.Fatalf("%d download faults left, want alice's 1", n)
	}

	// Anyone's fault goes to the first caller.
	e.srv.InjectFault(Fault{Method: MethodCheck, Status: 500})
	_, err = bobSvc.AccessType.Check(&dataportability.CheckAccessTypeRequest{}).Do()
	wantAPIError(t, err, http.StatusInternalServerError, "")
}

// Odd answers of the API the pipeline must survive, as faults, through the official client.
func TestStateAndJobFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{URLsPerJob: 4})
	svc, tok := e.grant("alice", "one-time", "myactivity.search")
	job := e.mustInitiate(svc, "myactivity.search")
	e.finish()
	plain := e.mustState(svc, job).Urls
	path := func(u string) string { p, _ := url.Parse(u); return p.Path }
	paths := func(us []string) []string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = path(u)
		}
		return out
	}

	// Shuffled: the same files, some state call in another order.
	if err := e.srv.InjectFault(Fault{State: &StateFault{ShuffleURLs: true, Count: 20}}); err != nil {
		t.Fatal(err)
	}
	reordered := false
	for range 20 {
		got := paths(e.mustState(svc, job).Urls)
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(paths(plain)))) {
			t.Fatalf("shuffled URLs name other files: %v vs %v", got, paths(plain))
		}
		reordered = reordered || !slices.Equal(got, paths(plain))
	}
	if !reordered {
		t.Error("20 shuffled state calls all kept the order")
	}
	// COMPLETE with no URLs.
	if err := e.srv.InjectFault(Fault{State: &StateFault{NoURLs: true}}); err != nil {
		t.Fatal(err)
	}
	if st := e.mustState(svc, job); st.State != StateComplete || len(st.Urls) != 0 {
		t.Errorf("no-URLs fault: %s with %d URLs", st.State, len(st.Urls))
	}
	if st := e.mustState(svc, job); len(st.Urls) != 4 {
		t.Errorf("after the fault: %d URLs", len(st.Urls))
	}
	// A job gone at Google: 404 NOT_FOUND.
	if err := e.srv.InjectFault(Fault{Method: MethodGetState, Status: 404}); err != nil {
		t.Fatal(err)
	}
	_, err := e.state(svc, job)
	var ae *apierror.APIError
	if !errors.As(err, &ae) || ae.HTTPCode() != 404 || ae.GRPCStatus().Code().String() != "NotFound" {
		t.Errorf("job gone: %v", err)
	}
	// A job that never ends: IN_PROGRESS weeks later.
	svc2, _ := e.grant("bob", "one-time", "youtube.subscriptions")
	if err := e.srv.InjectFault(Fault{Resource: "youtube.subscriptions", StallNextJobs: 1}); err != nil {
		t.Fatal(err)
	}
	stuck := e.mustInitiate(svc2, "youtube.subscriptions")
	e.srv.Clock().Advance(21 * 24 * time.Hour)
	svc2, _ = e.grant("bob", "one-time", "youtube.subscriptions") // the access token died with the clock
	if st := e.mustState(svc2, stuck); st.State != StateInProgress {
		t.Errorf("stalled job after 3 weeks: %s", st.State)
	}
	// The token endpoint refuses the refresh token (the person removed the app): invalid_grant. Two calls:
	// golang.org/x/oauth2 tries the second client authentication style after a refusal of the first.
	if err := e.srv.InjectFault(Fault{Method: MethodToken, Status: 400, Count: 2}); err != nil {
		t.Fatal(err)
	}
	_, err = e.oauthConfig().TokenSource(e.ctx, expired(tok)).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("token fault 400: %v", err)
	}
}
