package portability_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline/shared/portability"
)

// rpcStatus writes a google.rpc.Status error body as Google's JSON APIs do, with an ErrorInfo detail when
// reason is set.
func rpcStatus(code int, status, message, reason string, metadata map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e := map[string]any{"code": code, "message": message, "status": status}
		if reason != "" {
			e["details"] = []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
				"reason": reason, "domain": "dataportability.googleapis.com", "metadata": metadata}}
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
	}
}

// client returns the generated client talking to h.
func client(t *testing.T, h http.Handler) *portability.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newClient(t, srv.URL+"/", srv.Client())
}

func newClient(t *testing.T, endpoint string, hc *http.Client) *portability.Client {
	t.Helper()
	c, err := portability.New(context.Background(), endpoint, hc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// call runs one API method and returns its error.
func call(ctx context.Context, c *portability.Client, op string) error {
	switch op {
	case "initiate":
		_, err := c.Initiate(ctx, []string{"myactivity.search"})
		return err
	case "get state":
		_, err := c.State(ctx, "job-1")
		return err
	case "retry":
		_, err := c.Retry(ctx, "job-1")
		return err
	case "cancel":
		return c.Cancel(ctx, "job-1")
	case "reset":
		return c.Reset(ctx)
	case "check access":
		_, err := c.CheckAccess(ctx)
		return err
	}
	panic("unknown op " + op)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	after := time.Date(2026, 7, 20, 10, 11, 12, 0, time.UTC)
	tests := []struct {
		name    string
		op      string // default initiate
		handler http.HandlerFunc
		want    portability.Error // Kind, Status, Reason, PreviousJobs, After, Job are compared
	}{
		{
			name: "one-time exhausted",
			handler: rpcStatus(429, "RESOURCE_EXHAUSTED", "already exported", "RESOURCE_EXHAUSTED_ONE_TIME",
				map[string]string{"previous_job_ids": "a,b"}),
			want: portability.Error{Kind: portability.KindExhausted, Status: 429, Reason: "RESOURCE_EXHAUSTED_ONE_TIME", PreviousJobs: []string{"a", "b"}},
		},
		{
			name: "one-time exhausted, spaces and empty IDs",
			handler: rpcStatus(429, "RESOURCE_EXHAUSTED", "already exported", "RESOURCE_EXHAUSTED_ONE_TIME",
				map[string]string{"previous_job_ids": " a, ,b,"}),
			want: portability.Error{Kind: portability.KindExhausted, Status: 429, Reason: "RESOURCE_EXHAUSTED_ONE_TIME", PreviousJobs: []string{"a", "b"}},
		},
		{
			name: "time-based cooldown with timestamp",
			handler: rpcStatus(429, "RESOURCE_EXHAUSTED", "once every 24 hours", "RESOURCE_EXHAUSTED_TIME_BASED",
				map[string]string{"previous_job_ids": "c", "timestamp_after_24hrs": after.Format(time.RFC3339)}),
			want: portability.Error{Kind: portability.KindCooldown, Status: 429, Reason: "RESOURCE_EXHAUSTED_TIME_BASED", PreviousJobs: []string{"c"}, After: after},
		},
		{
			name: "time-based cooldown with an unreadable timestamp",
			handler: rpcStatus(429, "RESOURCE_EXHAUSTED", "once every 24 hours", "RESOURCE_EXHAUSTED_TIME_BASED",
				map[string]string{"timestamp_after_24hrs": "tomorrow"}),
			want: portability.Error{Kind: portability.KindCooldown, Status: 429, Reason: "RESOURCE_EXHAUSTED_TIME_BASED"},
		},
		{
			name:    "documented FAILED_PRECONDITION on initiate",
			handler: rpcStatus(400, "FAILED_PRECONDITION", "once every 24 hours", "", nil),
			want:    portability.Error{Kind: portability.KindCooldown, Status: 400},
		},
		{
			name:    "FAILED_PRECONDITION on retry is permanent",
			op:      "retry",
			handler: rpcStatus(400, "FAILED_PRECONDITION", "job has not failed", "", nil),
			want:    portability.Error{Kind: portability.KindPermanent, Status: 400},
		},
		{
			name:    "already exists",
			handler: rpcStatus(409, "ALREADY_EXISTS", "running", "ALREADY_EXISTS_ONE_TIME", map[string]string{"job_id": "j-9"}),
			want:    portability.Error{Kind: portability.KindAlreadyExists, Status: 409, Reason: "ALREADY_EXISTS_ONE_TIME", Job: "j-9"},
		},
		{
			name:    "not granted",
			handler: rpcStatus(403, "PERMISSION_DENIED", "The requested resources are not authorized by the OAuth token.", "", nil),
			want:    portability.Error{Kind: portability.KindNotGranted, Status: 403},
		},
		{
			name:    "unauthorized",
			op:      "get state",
			handler: rpcStatus(401, "UNAUTHENTICATED", "invalid credentials", "ACCESS_TOKEN_EXPIRED", nil),
			want:    portability.Error{Kind: portability.KindUnauthorized, Status: 401, Reason: "ACCESS_TOKEN_EXPIRED"},
		},
		{
			name:    "rate limited",
			op:      "get state",
			handler: rpcStatus(429, "RESOURCE_EXHAUSTED", "slow down", "RATE_LIMIT_EXCEEDED", nil),
			want:    portability.Error{Kind: portability.KindRetry, Status: 429, Reason: "RATE_LIMIT_EXCEEDED"},
		},
		{
			name:    "429 without details",
			handler: rpcStatus(429, "RESOURCE_EXHAUSTED", "slow down", "", nil),
			want:    portability.Error{Kind: portability.KindRetry, Status: 429},
		},
		{
			name:    "internal error",
			op:      "reset",
			handler: rpcStatus(500, "INTERNAL", "oops", "", nil),
			want:    portability.Error{Kind: portability.KindRetry, Status: 500},
		},
		{
			name:    "unavailable",
			op:      "check access",
			handler: rpcStatus(503, "UNAVAILABLE", "try later", "", nil),
			want:    portability.Error{Kind: portability.KindRetry, Status: 503},
		},
		{
			name: "503 with an HTML body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(503)
				fmt.Fprint(w, "<html>Service Unavailable</html>")
			},
			want: portability.Error{Kind: portability.KindRetry, Status: 503},
		},
		{
			name:    "invalid argument",
			handler: rpcStatus(400, "INVALID_ARGUMENT", "unknown resource", "", nil),
			want:    portability.Error{Kind: portability.KindPermanent, Status: 400},
		},
		{
			name:    "not found",
			op:      "cancel",
			handler: rpcStatus(404, "NOT_FOUND", "no such job", "", nil),
			want:    portability.Error{Kind: portability.KindPermanent, Status: 404},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			op := tc.op
			if op == "" {
				op = "initiate"
			}
			err := call(context.Background(), client(t, tc.handler), op)
			got := asError(t, err)
			if got.Op != op {
				t.Errorf("Op = %q, want %q", got.Op, op)
			}
			if got.Kind != tc.want.Kind || got.Status != tc.want.Status || got.Reason != tc.want.Reason ||
				!reflect.DeepEqual(got.PreviousJobs, tc.want.PreviousJobs) || !got.After.Equal(tc.want.After) || got.Job != tc.want.Job {
				t.Errorf("classified as %s status %d reason %q previous %q after %v job %q;\nwant %s status %d reason %q previous %q after %v job %q",
					got.Kind, got.Status, got.Reason, got.PreviousJobs, got.After, got.Job,
					tc.want.Kind, tc.want.Status, tc.want.Reason, tc.want.PreviousJobs, tc.want.After, tc.want.Job)
			}
			if k := portability.KindOf(err); k != tc.want.Kind {
				t.Errorf("KindOf = %s, want %s", k, tc.want.Kind)
			}
			// Classifying again keeps the first classification.
			if again := portability.Classify("other", err); again != err {
				t.Errorf("Classify of a classified error gave %v", again)
			}
			noQuery(t, err)
		})
	}
}

func asError(t *testing.T, err error) *portability.Error {
	t.Helper()
	var e *portability.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *portability.Error", err, err)
	}
	return e
}

// noQuery fails when the error message holds a URL query (request URLs carry ?alt=json; signed URLs carry
// their signature in it).
func noQuery(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, bad := range []string{"alt=json", "prettyPrint", "X-Goog-Signature", "sig=", "access_token"} {
		if strings.Contains(msg, bad) {
			t.Errorf("error message %q contains %q", msg, bad)
		}
	}
}

func TestClassifyTransport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("network error", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		err := call(ctx, newClient(t, url+"/", http.DefaultClient), "initiate")
		if e := asError(t, err); e.Kind != portability.KindRetry || e.Status != 0 {
			t.Errorf("got %s status %d, want retry without status", e.Kind, e.Status)
		}
		noQuery(t, err)
	})

	t.Run("connection cut", func(t *testing.T) {
		t.Parallel()
		c := client(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		err := call(ctx, c, "get state")
		if e := asError(t, err); e.Kind != portability.KindRetry {
			t.Errorf("got %s, want retry", e.Kind)
		}
		noQuery(t, err)
	})

	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		c := client(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client leave
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		err := call(ctx, c, "initiate")
		if e := asError(t, err); e.Kind != portability.KindRetry {
			t.Errorf("got %s, want retry", e.Kind)
		}
		noQuery(t, err)
	})

	for _, tc := range []struct {
		code string
		want portability.Kind
	}{
		{"invalid_grant", portability.KindUnauthorized},
		{"invalid_client", portability.KindUnauthorized},
		{"temporarily_unavailable", portability.KindRetry},
	} {
		t.Run("token refresh "+tc.code, func(t *testing.T) {
			t.Parallel()
			tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":%q,"error_description":"Token has been expired or revoked."}`, tc.code)
			}))
			t.Cleanup(tokenSrv.Close)
			conf := &oauth2.Config{ClientID: "id", ClientSecret: "secret", Endpoint: oauth2.Endpoint{TokenURL: tokenSrv.URL + "/token?x=1"}}
			expired := &oauth2.Token{AccessToken: "ya29.old", RefreshToken: "1//refresh", Expiry: time.Now().Add(-time.Hour)}
			apiSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Error("the API was called without a fresh token")
			}))
			t.Cleanup(apiSrv.Close)
			err := call(ctx, newClient(t, apiSrv.URL+"/", conf.Client(ctx, expired)), "initiate")
			e := asError(t, err)
			if e.Kind != tc.want || e.Reason != tc.code || e.Status != http.StatusBadRequest {
				t.Errorf("got %s reason %q status %d, want %s reason %q status 400", e.Kind, e.Reason, e.Status, tc.want, tc.code)
			}
			noQuery(t, err)
			for _, secret := range []string{"ya29.old", "1//refresh", "secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds %q", err, secret)
				}
			}
		})
	}

	t.Run("nil", func(t *testing.T) {
		t.Parallel()
		if err := portability.Classify("x", nil); err != nil {
			t.Errorf("Classify(nil) = %v", err)
		}
		if k := portability.KindOf(errors.New("plain")); k != portability.KindRetry {
			t.Errorf("KindOf(plain error) = %s, want retry", k)
		}
	})
}

// TestErrorRedactsURLs shows that a signed URL in an API message loses its query (its signature).
func TestErrorRedactsURLs(t *testing.T) {
	t.Parallel()
	signed := "https://storage.googleapis.com/b/o.zip?X-Goog-Signature=c2VjcmV0&X-Goog-Expires=21600"
	for _, msg := range []string{
		"archive at " + signed,
		"Why? The archive at " + signed + " expired",
		"first https://example.com/a then " + signed,
		signed,
	} {
		t.Run(msg[:10], func(t *testing.T) {
			t.Parallel()
			err := call(context.Background(), client(t, rpcStatus(400, "INVALID_ARGUMENT", msg, "", nil)), "get state")
			if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "X-Goog-Signature") {
				t.Errorf("message %q kept the signature: %q", msg, err)
			}
			if !strings.Contains(err.Error(), "storage.googleapis.com/b/o.zip") {
				t.Errorf("message %q lost the URL path: %q", msg, err)
			}
			noQuery(t, err)
		})
	}
	// A plain error (not from the API) with a signed URL in it.
	err := portability.Classify("probe", fmt.Errorf("copy from %s: short read", signed))
	if strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("plain error kept the signature: %q", err)
	}
}
