package stack

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/portability-pipeline/pipeline/emulator-test/internal/faultqueue"
)

// Cloud Storage faults on our side. fake-gcs-server cannot inject errors, so the functions reach it through
// this proxy (their STORAGE_EMULATOR_HOST), which forwards every request unchanged unless a fault matches.
// Tests and the stack's own clients talk to fake-gcs-server directly, so checks are never faulted.

// GCS operations a fault can hit.
const (
	GCSUpload  = "upload"  // object uploads (JSON API /upload/..., the session start and its chunks)
	GCSCompose = "compose" // objects.compose
)

// GCSFault is one fault of the storage proxy.
type GCSFault struct {
	Op string // GCSUpload or GCSCompose
	// Status answers instead of the real answer: 429 and 503 (retryable, Cloud Storage's rate limit and
	// outage answers) or 412 (conditionNotMet: a precondition that failed because an earlier delivery did
	// the work already).
	Status int
	// Halfway forwards the request first (compose: the object is written) and then answers Status, as a
	// compose that succeeded at Cloud Storage but whose answer was lost.
	Halfway bool
	// Match, when set, limits the fault to requests whose path or query contains it (an object name
	// holds the user ID: the fault suite scopes faults to a scenario's user).
	Match string
	Count int // default 1
}

type gcsProxy struct {
	lis   net.Listener
	srv   *http.Server
	rp    *httputil.ReverseProxy
	mu    sync.Mutex
	queue []*GCSFault
	taken map[string]int // faults answered, by op and status
}

func startGCSProxy(target string) (*gcsProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &gcsProxy{lis: lis, rp: httputil.NewSingleHostReverseProxy(u), taken: map[string]int{}}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(lis)
	return p, nil
}

// Host is HOST:PORT for STORAGE_EMULATOR_HOST.
func (p *gcsProxy) Host() string { return p.lis.Addr().String() }

func (p *gcsProxy) Close() { p.srv.Close() }

var composePath = regexp.MustCompile(`^/storage/v1/b/[^/]+/o/.+/compose$`)

func gcsOp(r *http.Request) string {
	switch {
	case strings.HasPrefix(r.URL.Path, "/upload/storage/v1/b/"):
		return GCSUpload
	case r.Method == http.MethodPost && composePath.MatchString(r.URL.Path):
		return GCSCompose
	}
	return ""
}

func (p *gcsProxy) take(r *http.Request) *GCSFault {
	op := gcsOp(r)
	if op == "" {
		return nil
	}
	where := r.URL.RawPath + r.URL.Path + "?" + r.URL.RawQuery
	p.mu.Lock()
	defer p.mu.Unlock()
	f := faultqueue.Take(&p.queue, func(f *GCSFault) bool { return f.Op == op && strings.Contains(where, f.Match) },
		func(f *GCSFault) *int { return &f.Count })
	if f == nil {
		return nil
	}
	p.taken[fmt.Sprintf("%s %d", op, f.Status)]++
	c := *f
	return &c
}

func (p *gcsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.take(r)
	if f == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	if f.Halfway {
		rec := &discardWriter{h: http.Header{}}
		p.rp.ServeHTTP(rec, r)
	} else {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	writeGCSError(w, f.Status)
}

// writeGCSError answers as the JSON API does (https://cloud.google.com/storage/docs/json_api/v1/status-codes).
func writeGCSError(w http.ResponseWriter, status int) {
	reason, msg := "backendError", "Backend Error"
	switch status {
	case http.StatusTooManyRequests:
		reason, msg = "rateLimitExceeded", "The rate of change requests to the object exceeds the rate limit. Please reduce the rate of create, update, and delete requests."
	case http.StatusServiceUnavailable:
		reason, msg = "backendError", "We encountered an internal error. Please try again."
	case http.StatusPreconditionFailed:
		reason, msg = "conditionNotMet", "At least one of the pre-conditions you specified did not hold."
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"errors":[{"message":%q,"domain":"global","reason":%q}]}}`, status, msg, msg, reason)
}

type discardWriter struct {
	h http.Header
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// InjectGCSFault queues a storage fault for the functions' requests.
func (s *Stack) InjectGCSFault(f GCSFault) error {
	if s.gcsProxy == nil {
		return errors.New("stack has no storage proxy")
	}
	if f.Op != GCSUpload && f.Op != GCSCompose {
		return fmt.Errorf("storage fault op %q: want %q or %q", f.Op, GCSUpload, GCSCompose)
	}
	if f.Status < 400 || f.Status > 599 {
		return fmt.Errorf("storage fault status %d is not an error status", f.Status)
	}
	f.Count = max(f.Count, 1)
	s.gcsProxy.mu.Lock()
	s.gcsProxy.queue = append(s.gcsProxy.queue, &f)
	s.gcsProxy.mu.Unlock()
	return nil
}

// GCSFaultsTaken counts the storage faults answered so far, by "op status" ("compose 503").
func (s *Stack) GCSFaultsTaken() map[string]int {
	out := map[string]int{}
	if s.gcsProxy == nil {
		return out
	}
	s.gcsProxy.mu.Lock()
	defer s.gcsProxy.mu.Unlock()
	for k, v := range s.gcsProxy.taken {
		out[k] = v
	}
	return out
}

// clearGCSFaults drops the storage faults not yet answered (Reset).
func (s *Stack) clearGCSFaults() {
	if s.gcsProxy == nil {
		return
	}
	s.gcsProxy.mu.Lock()
	s.gcsProxy.queue = nil
	s.gcsProxy.mu.Unlock()
}
