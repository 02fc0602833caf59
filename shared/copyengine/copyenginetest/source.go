// Package copyenginetest provides fakes for tests of code built on package
// copyengine: an HTTP source that serves deterministic content like a signed
// Cloud Storage URL (Range, x-goog-hash, injectable faults), an in-memory
// Sink and a Sink that keeps only checksums.
package copyenginetest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// period is the length of the repeating pattern of the content: not a power
// of two, so swapped or shifted parts change the data.
const period = 1<<20 + 7

var pattern = func() []byte {
	b := make([]byte, period)
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// Content writes bytes [off, off+n) of the deterministic content to w.
func Content(w io.Writer, off, n int64) (int64, error) {
	var done int64
	for done < n {
		p := (off + done) % period
		chunk := pattern[p:min(int64(period), p+n-done)]
		m, err := w.Write(chunk)
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Bytes returns bytes [off, off+n) of the content (small n only).
func Bytes(off, n int64) []byte {
	var b strings.Builder
	Content(&b, off, n)
	return []byte(b.String())
}

// CRC32C returns the CRC32C of the first size bytes of the content.
func CRC32C(size int64) uint32 {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	Content(h, 0, size)
	return h.Sum32()
}

// Faults are injected by a Source. Counters are consumed atomically across
// requests.
type Faults struct {
	// CutAfter bytes of body, the connection is broken, in the first CutTimes
	// ranged answers (Probe's byte 0 excepted).
	CutAfter int64
	CutTimes int32
	// StallAfter bytes of body, the answer stops sending (without closing)
	// until the client gives up, in the first StallTimes ranged answers.
	StallAfter int64
	StallTimes int32
	// Corrupt flips the byte at CorruptAt in every answer (x-goog-hash keeps
	// the true CRC32C).
	Corrupt   bool
	CorruptAt int64
	// Fail503 answers the first Fail503 data requests (not counting Probe's
	// byte 0) with 503.
	Fail503 int32
	// URLRequests: each signed URL answers this many requests, then 403
	// ExpiredToken (0: unlimited).
	URLRequests int32
}

// Request is one request a Source received.
type Request struct {
	Range  string
	Status int
}

// Source serves the first Size bytes of the content at signed URLs.
type Source struct {
	Server *httptest.Server
	Size   int64
	CRC32C uint32
	Name   string // file name in the URL path

	faults   Faults
	cuts     atomic.Int32
	stalls   atomic.Int32
	fails    atomic.Int32
	mu       sync.Mutex
	tokens   map[string]*atomic.Int32 // signature -> requests left (or -1)
	requests []Request
}

// NewSource starts a Source; it is closed with t's cleanup by the caller
// (Close).
func NewSource(size int64, f Faults) *Source {
	s := &Source{Size: size, CRC32C: CRC32C(size), Name: "archive-001.zip", faults: f, tokens: map[string]*atomic.Int32{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close stops the server.
func (s *Source) Close() { s.Server.Close() }

// Secret is a marker every signature holds: tests assert it never appears in
// an error.
const Secret = "SIGNATURE-SECRET"

// SignedURL issues a new signed URL (a new signature, with its own request
// budget Faults.URLRequests).
func (s *Source) SignedURL() string {
	var b [8]byte
	rand.Read(b[:])
	sig := Secret + hex.EncodeToString(b[:])
	n := &atomic.Int32{}
	n.Store(s.faults.URLRequests)
	if s.faults.URLRequests == 0 {
		n.Store(-1)
	}
	s.mu.Lock()
	s.tokens[sig] = n
	s.mu.Unlock()
	return fmt.Sprintf("%s/bucket/%s?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%%40p.iam&X-Goog-Expires=21600&X-Goog-Signature=%s", s.Server.URL, s.Name, sig)
}

// Requests returns the requests served so far.
func (s *Source) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Source) record(r *http.Request, status int) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{Range: r.Header.Get("Range"), Status: status})
	s.mu.Unlock()
}

func (s *Source) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.record(r, http.StatusMethodNotAllowed)
		http.Error(w, "signed for GET", http.StatusMethodNotAllowed)
		return
	}
	sig := r.URL.Query().Get("X-Goog-Signature")
	s.mu.Lock()
	left := s.tokens[sig]
	s.mu.Unlock()
	if left == nil {
		s.record(r, http.StatusForbidden)
		s.xmlError(w, r, http.StatusForbidden, "SignatureDoesNotMatch")
		return
	}
	if left.Load() >= 0 && left.Add(-1) < 0 {
		s.record(r, http.StatusForbidden)
		s.xmlError(w, r, http.StatusForbidden, "ExpiredToken")
		return
	}
	rng := r.Header.Get("Range")
	if rng != "bytes=0-0" && s.fails.Add(1) <= s.faults.Fail503 {
		s.record(r, http.StatusServiceUnavailable)
		s.xmlError(w, r, http.StatusServiceUnavailable, "ServiceUnavailable")
		return
	}
	var crc [4]byte
	binary.BigEndian.PutUint32(crc[:], s.CRC32C)
	h := w.Header()
	h.Set("X-Goog-Hash", "crc32c="+base64.StdEncoding.EncodeToString(crc[:]))
	h.Set("X-Goog-Stored-Content-Length", strconv.FormatInt(s.Size, 10))
	h.Set("Content-Type", "application/zip")
	start, end := int64(0), s.Size-1
	status := http.StatusOK
	if rng != "" {
		a, b, ok := parseRange(rng)
		if !ok || a >= s.Size {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", s.Size))
			s.record(r, http.StatusRequestedRangeNotSatisfiable)
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start, end = a, min(b, s.Size-1)
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, s.Size))
	}
	n := end - start + 1
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	s.record(r, status)
	w.WriteHeader(status)
	var out io.Writer = w
	if s.faults.Corrupt && s.faults.CorruptAt >= start && s.faults.CorruptAt <= end {
		out = &corrupter{w: w, pos: start, at: s.faults.CorruptAt}
	}
	probe := rng == "bytes=0-0"
	if status == http.StatusPartialContent && !probe && s.faults.CutAfter < n && s.cuts.Add(1) <= s.faults.CutTimes {
		Content(out, start, s.faults.CutAfter)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // breaks the connection mid-body
	}
	if status == http.StatusPartialContent && !probe && s.faults.StallAfter < n && s.stalls.Add(1) <= s.faults.StallTimes {
		Content(out, start, s.faults.StallAfter)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		<-r.Context().Done()
		return
	}
	Content(out, start, n)
}

func (s *Source) xmlError(w http.ResponseWriter, r *http.Request, code int, xmlCode string) {
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	w.WriteHeader(code)
	// Like Cloud Storage, echo details of the request (which hold the
	// signature): a client must not copy the body into errors.
	fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>Request for %s refused.</Message><Details>%s</Details></Error>", xmlCode, r.URL.String(), r.URL.RawQuery)
}

// parseRange parses "bytes=a-b" (b may be empty).
func parseRange(h string) (int64, int64, bool) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return 0, 0, false
	}
	as, bs, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false
	}
	a, err := strconv.ParseInt(as, 10, 64)
	if err != nil || a < 0 {
		return 0, 0, false
	}
	if bs == "" {
		return a, 1<<62 - 1, true
	}
	b, err := strconv.ParseInt(bs, 10, 64)
	if err != nil || b < a {
		return 0, 0, false
	}
	return a, b, true
}

type corrupter struct {
	w   io.Writer
	pos int64
	at  int64
}

func (c *corrupter) Write(p []byte) (int, error) {
	if c.at >= c.pos && c.at < c.pos+int64(len(p)) {
		q := append([]byte(nil), p...)
		q[c.at-c.pos] ^= 0xff
		p = q
	}
	c.pos += int64(len(p))
	return c.w.Write(p)
}
