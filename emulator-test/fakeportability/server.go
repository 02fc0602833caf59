// Package fakeportability is a local stand-in for Google's Data Portability API and the parts of Google
// sign-in the pipeline uses: the six API methods with their rules, an OAuth 2.0 server with a consent page,
// an OIDC issuer for service-account ID tokens, signed archive downloads generated on the fly, a virtual
// clock, fault injection and JSON control endpoints under /fake/v1/.
//
// Use it in-process (New, then Handler with httptest) or as a command
// (go run ./emulator-test/cmd/fakeportability). See README.md for the control contract.
package fakeportability

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/felixge/httpsnoop"
)

// Client is a registered OAuth client.
type Client struct {
	ID     string
	Secret string
	// RedirectURIs lists the allowed redirect URIs; empty allows any http(s) URI.
	RedirectURIs []string
}

// Options configure a Server. Zero values take the defaults noted.
type Options struct {
	// BaseURL is the server's external URL (http://HOST:PORT): the OIDC issuer and the host of signed URLs.
	// Empty: taken from each request's Host header.
	BaseURL string
	// Clients are the registered OAuth clients (default: fake-client-id / fake-client-secret, any redirect).
	Clients []Client
	// JobDuration is the virtual time from initiate to the end of a job (default 3s).
	JobDuration time.Duration
	// ArchiveSize is the size in bytes of each data file of a job (default 1 MiB).
	ArchiveSize int64
	// History is how much activity an account has (default DefaultHistory, 365 days): a job without a
	// time filter covers it (ArchiveSize bytes per data file); a filtered job holds ArchiveSize*range/History.
	History time.Duration
	// URLsPerJob is the number of files (signed URLs) of a COMPLETE job (default 2): files 0..N-2 hold data,
	// the last one Portability/archive_browser.json. With 1 the single zip holds both.
	URLsPerJob int
	// EntrySize caps the size of one zip entry (default 512 MiB); a data zip holds ceil(size/EntrySize) entries
	// per resource.
	EntrySize int64
	// BareJSONResources lists groups whose single-resource jobs give bare JSON data files instead of zips.
	BareJSONResources []string
	// TimeBasedFailedPrecondition answers a time-based initiate inside 24 h with 400 FAILED_PRECONDITION (as the
	// reference docs say, without ErrorInfo) instead of 429 RESOURCE_EXHAUSTED_TIME_BASED.
	TimeBasedFailedPrecondition bool
	// AccessTokenTTL is the lifetime of access tokens on the virtual clock (default 1h).
	AccessTokenTTL time.Duration
	// ExpiredURL403 answers an expired signed URL with 403 ExpiredToken instead of Cloud Storage's 400
	// ExpiredToken, so both answers stay tested.
	ExpiredURL403 bool
	// URLTTL is the lifetime of signed URLs (default 6h, at most 7 days as for V4 signing); Retention how long
	// archives stay (default 14 days).
	URLTTL    time.Duration
	Retention time.Duration
	// MaxRetries is the number of retries per original job (default 3).
	MaxRetries int
	// BandwidthLimit caps each download at this many bytes per second (0: no cap).
	BandwidthLimit int64
	// MD5MaxSize omits md5 from x-goog-hash for objects larger than this (0: always md5), as for composite
	// objects. MD5 is the slow part of hashing (about 0.5 GB/s).
	MD5MaxSize int64
	// SigningKey signs download URLs (default: random).
	SigningKey []byte
	// Logger receives request logs (default: discard). Tokens, codes and signed URLs are never logged.
	Logger *slog.Logger
}

// Server is the fake. All methods are safe for concurrent use.
type Server struct {
	opts    Options
	clock   *Clock
	log     *slog.Logger
	clients map[string]Client
	bare    map[string]bool
	sigKey  []byte
	oidc    oidcKeys
	mux     *http.ServeMux
	objects *objectCache

	mu      sync.Mutex
	users   map[string]*user
	grants  map[string]*grant       // by ID
	access  map[string]*accessToken // by token
	refresh map[string]*grant       // by refresh token
	jobs    map[string]*job
	jobSeq  []*job // creation order
	authReq map[string]*authRequest
	codes   map[string]*authCode
	faults  faultState
	calls   callCounts
	rec     record
}

// New returns a Server with opts (defaults filled in).
func New(opts Options) *Server {
	if opts.JobDuration <= 0 {
		opts.JobDuration = 3 * time.Second
	}
	if opts.ArchiveSize <= 0 {
		opts.ArchiveSize = 1 << 20
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.URLsPerJob <= 0 {
		opts.URLsPerJob = 2
	}
	if opts.EntrySize <= 0 {
		opts.EntrySize = 512 << 20
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = time.Hour
	}
	if opts.URLTTL <= 0 {
		opts.URLTTL = 6 * time.Hour
	}
	opts.URLTTL = min(opts.URLTTL, maxV4Expires*time.Second)
	if opts.Retention <= 0 {
		opts.Retention = 14 * 24 * time.Hour
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 3
	}
	if len(opts.Clients) == 0 {
		opts.Clients = []Client{{ID: "fake-client-id", Secret: "fake-client-secret"}}
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	s := &Server{
		opts:    opts,
		clock:   newClock(),
		log:     opts.Logger,
		clients: map[string]Client{},
		bare:    map[string]bool{},
		sigKey:  opts.SigningKey,
		objects: newObjectCache(opts.MD5MaxSize),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, c := range opts.Clients {
		s.clients[c.ID] = c
	}
	for _, r := range opts.BareJSONResources {
		s.bare[r] = true
	}
	if len(s.sigKey) == 0 {
		s.sigKey = []byte(randomID(32))
	}
	s.resetState()
	s.routes()
	return s
}

// Clock returns the virtual clock.
func (s *Server) Clock() *Clock { return s.clock }

// Handler returns the HTTP handler serving the API, OAuth, OIDC, downloads and control endpoints.
func (s *Server) Handler() http.Handler { return s.logRequests(s.mux) }

// ClearData clears all state: users, grants, tokens, jobs, faults, counters and the clock offset. Cached archive
// checksums survive (content is deterministic).
func (s *Server) ClearData() {
	s.mu.Lock()
	s.resetState()
	s.mu.Unlock()
	s.clock.reset()
}

func (s *Server) resetState() {
	s.users = map[string]*user{}
	s.grants = map[string]*grant{}
	s.access = map[string]*accessToken{}
	s.refresh = map[string]*grant{}
	s.jobs = map[string]*job{}
	s.jobSeq = nil
	s.authReq = map[string]*authRequest{}
	s.codes = map[string]*authCode{}
	s.faults = newFaultState()
	s.calls = newCallCounts()
	s.rec.resets = map[string][]time.Time{}
}

// routes wires every endpoint of the fake, the README's list, in one place.
func (s *Server) routes() {
	m := http.NewServeMux()
	// The Data Portability API.
	m.HandleFunc("POST /v1/portabilityArchive:initiate", s.apiMethod(MethodInitiate, s.handleInitiate))
	m.HandleFunc("POST /v1/accessType:check", s.apiMethod(MethodCheck, s.handleCheck))
	m.HandleFunc("POST /v1/authorization:reset", s.apiMethod(MethodReset, s.handleReset))
	m.HandleFunc("GET /v1/archiveJobs/{id}/portabilityArchiveState", s.apiMethod(MethodGetState, s.handleGetState))
	m.HandleFunc("POST /v1/archiveJobs/{idAction}", s.handleJobAction) // {id}:retry, {id}:cancel
	// Google sign-in.
	m.HandleFunc("GET /o/oauth2/v2/auth", s.handleAuthorize)
	m.HandleFunc("POST /o/oauth2/v2/auth/consent", s.handleConsent)
	m.HandleFunc("POST /token", s.handleToken)
	m.HandleFunc("POST /revoke", s.handleRevoke)
	m.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	m.HandleFunc("GET /oauth2/v3/certs", s.handleJWKS)
	// Signed archive downloads.
	m.HandleFunc("GET /download/{job}/{file}", s.handleDownload)
	m.HandleFunc("HEAD /download/{job}/{file}", s.handleDownload)
	// Test control (control.go).
	m.HandleFunc("POST /fake/v1/grants", s.handleControlGrant)
	m.HandleFunc("GET /fake/v1/clock", s.handleClockGet)
	m.HandleFunc("POST /fake/v1/clock:advance", s.handleClockAdvance)
	m.HandleFunc("POST /fake/v1/faults", s.handleControlFault)
	m.HandleFunc("GET /fake/v1/calls", s.handleCalls)
	m.HandleFunc("GET /fake/v1/jobs", s.handleJobs)
	m.HandleFunc("POST /fake/v1/reset", s.handleControlReset)
	m.HandleFunc("POST /fake/v1/idtoken", s.handleIDToken)
	s.mux = m
}

// baseURL is the external URL of the server for r.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	return "http://" + r.Host
}

// logRequests logs one line per request: method, path without query (queries carry codes, states and URL
// signatures), status, size and duration.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// Metrics fills in as the handler writes, so a download cut mid-body (a panic with
		// http.ErrAbortHandler) still logs what it sent.
		m := httpsnoop.Metrics{Code: http.StatusOK}
		defer func() {
			level := slog.LevelInfo
			if m.Code >= 500 {
				level = slog.LevelWarn
			}
			s.log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", m.Code),
				slog.Int64("bytes", m.Written), slog.Duration("duration", time.Since(start)))
		}()
		m.CaptureMetrics(w, func(w http.ResponseWriter) { next.ServeHTTP(w, r) })
	})
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
