package portability_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/portability"
)

// answer is a RoundTripper that answers every request with one status and body, without a network.
type answer struct {
	status int
	body   []byte
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: a.status, Status: http.StatusText(a.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}}, Body: io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)), Request: r}, nil
}

// FuzzClassify serves arbitrary bodies with arbitrary status codes to the generated client and classifies
// what it returns: nothing may panic, every error is a *portability.Error of a known kind, and its message
// holds no URL query.
func FuzzClassify(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{429, `{"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RESOURCE_EXHAUSTED_ONE_TIME","domain":"dataportability.googleapis.com","metadata":{"previous_job_ids":"a,b"}}]}}`},
		{429, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RESOURCE_EXHAUSTED_TIME_BASED","metadata":{"timestamp_after_24hrs":"2026-01-02T03:04:05Z"}}]}}`},
		{409, `{"error":{"code":409,"status":"ALREADY_EXISTS","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ALREADY_EXISTS_ONE_TIME","metadata":{"job_id":"j"}}]}}`},
		{400, `{"error":{"code":400,"message":"see https://h/o?sig=1","status":"FAILED_PRECONDITION"}}`},
		{400, `{"error":{"code":400,"details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"x"}]},{"@type":"bogus"}]}}`},
		{401, `{"error":{"code":401,"details":[null,{},{"@type":7}]}}`},
		{403, `{"error":"x"}`},
		{500, `<html>oops</html>`},
		{503, ``},
		{200, `{"archiveJobId":"j","accessType":"ACCESS_TYPE_ONE_TIME"}`},
		{200, `{}`},
		{200, `{"state":"COMPLETE","exportTime":"yesterday","urls":[1]}`},
	}
	for _, s := range seeds {
		for op := range 6 {
			f.Add(s.status, []byte(s.body), uint8(op))
		}
	}
	ops := []string{"initiate", "get state", "retry", "cancel", "reset", "check access"}
	f.Fuzz(func(t *testing.T, status int, body []byte, op uint8) {
		if status < 0 {
			status = -status
		}
		status = 200 + status%400 // 200..599: the client sees 1xx only inside a response
		c := newClient(t, "https://dataportability.invalid/", &http.Client{Transport: answer{status, body}})
		name := ops[int(op)%len(ops)]
		err := call(context.Background(), c, name)
		if err == nil {
			if status >= 300 {
				t.Fatalf("HTTP %d to %s gave no error", status, name)
			}
			return
		}
		var e *portability.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: error %v (%T) is not classified", name, err, err)
		}
		if e.Kind < portability.KindRetry || e.Kind > portability.KindPermanent {
			t.Fatalf("unknown kind %d", e.Kind)
		}
		msg := err.Error()
		_ = e.Kind.String()
		if strings.Contains(msg, "alt=json") {
			t.Fatalf("message holds the request URL: %q", msg)
		}
		// The status is the body's "code" when it has one (googleapi prefers it to the HTTP status).
		if e.Status >= 500 && e.Kind != portability.KindRetry {
			t.Fatalf("HTTP %d (status %d) classified as %s", status, e.Status, e.Kind)
		}
	})
}
