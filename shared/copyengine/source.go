package copyengine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// RangeSource is what CopyPart reads from.
type RangeSource interface {
	// OpenRange starts reading bytes [off, off+n) of the object. The body may
	// end early (a broken connection): CopyPart resumes with a new call.
	// HTTP refusals are *HTTPError; errors never hold the URL's query.
	OpenRange(ctx context.Context, off, n int64) (io.ReadCloser, error)
	// RefreshURL gets a fresh signed URL after a refusal of the URL
	// (URLExpired, or Gone: a 404 inside the retention may be a stale URL).
	// Calls from concurrent copies that saw the same refused URL refresh once.
	RefreshURL(ctx context.Context) error
}

// RefreshFunc returns a fresh signed URL for the same object, e.g. from a
// Data Portability getPortabilityArchiveState call (urls[i]).
type RefreshFunc func(ctx context.Context) (string, error)

// URLSource reads a signed URL with ranged GETs. Safe for concurrent use.
type URLSource struct {
	client  *http.Client
	size    int64
	refresh RefreshFunc

	refreshMu sync.Mutex // serializes refreshes
	mu        sync.Mutex
	url       string
	gen       int  // incremented on every refresh
	expired   bool // the URL of generation gen was refused (URLExpired or Gone)
}

// NewURLSource reads rawURL, an object of size bytes (from Probe; every
// answer's Content-Range total is checked against it, so a changed object
// is caught). refresh may be nil: a 403 is then final.
func NewURLSource(client *http.Client, rawURL string, size int64, refresh RefreshFunc) *URLSource {
	if client == nil {
		client = http.DefaultClient
	}
	return &URLSource{client: client, url: rawURL, size: size, refresh: refresh}
}

// OpenRange implements RangeSource.
func (s *URLSource) OpenRange(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	rawURL, gen := s.url, s.gen
	s.mu.Unlock()
	if n <= 0 {
		return io.NopCloser(http.NoBody), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("get range %s: bad URL", RedactURL(rawURL))
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get range: %w", redactErr(err))
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cr := resp.Header.Get("Content-Range")
		start, ok1 := contentRangeStart(cr)
		total, ok2 := contentRangeTotal(cr)
		if !ok1 || !ok2 || start != off || total != s.size {
			resp.Body.Close()
			return nil, fmt.Errorf("get range %s: asked bytes %d-%d of %d, got %q: %w", RedactURL(rawURL), off, off+n-1, s.size, cr, ErrSizeMismatch)
		}
		return resp.Body, nil
	case http.StatusOK:
		// The whole object: usable only for a range that starts at 0 (the
		// copy reads n bytes and closes the body).
		if off != 0 {
			resp.Body.Close()
			return nil, fmt.Errorf("get range %s: %w", RedactURL(rawURL), ErrRangeIgnored)
		}
		if resp.ContentLength >= 0 && resp.ContentLength != s.size {
			resp.Body.Close()
			return nil, fmt.Errorf("get range %s: object has %d bytes, planned %d: %w", RedactURL(rawURL), resp.ContentLength, s.size, ErrSizeMismatch)
		}
		return resp.Body, nil
	}
	defer resp.Body.Close()
	herr := newHTTPError("get range", rawURL, resp)
	if c := Classify(herr); c == URLExpired || c == Gone {
		s.mu.Lock()
		if gen == s.gen {
			s.expired = true
		}
		s.mu.Unlock()
	}
	return nil, herr
}

// RefreshURL implements RangeSource.
func (s *URLSource) RefreshURL(ctx context.Context) error {
	if s.refresh == nil {
		return fmt.Errorf("refresh signed URL: no refresh function")
	}
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	s.mu.Lock()
	expired := s.expired
	s.mu.Unlock()
	if !expired {
		return nil // another copy refreshed it since our 403
	}
	u, err := s.refresh(ctx)
	if err != nil {
		return fmt.Errorf("refresh signed URL: %w", redactErr(err))
	}
	s.mu.Lock()
	s.url, s.gen, s.expired = u, s.gen+1, false
	s.mu.Unlock()
	return nil
}
