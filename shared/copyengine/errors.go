package copyengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"syscall"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
)

// Class tells the caller what to do with an error.
type Class int

const (
	// Unclassified is the class of a nil error.
	Unclassified Class = iota
	// Retryable: try again later (5xx, 429, broken connections, timeouts,
	// checksum mismatch: the caller counts attempts and gives up after N).
	Retryable
	// URLExpired: the signed URL no longer works (400 ExpiredToken or
	// MalformedSecurityHeader, 403 AccessDenied, SignatureDoesNotMatch or
	// ExpiredToken): get fresh URLs once and retry.
	URLExpired
	// Gone: the source no longer exists (404/410, past the 14 days retention).
	Gone
	// Permanent: retrying cannot help (other 4xx, a source that changed size,
	// bad arguments).
	Permanent
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case URLExpired:
		return "url-expired"
	case Gone:
		return "gone"
	case Permanent:
		return "permanent"
	}
	return "unclassified"
}

var (
	// ErrChecksumMismatch: the copied data does not have the source's CRC32C,
	// or storage reports another CRC32C than the bytes sent. Classified
	// Retryable: the caller recopies and decides after N attempts.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrSizeMismatch: the source sent more or fewer bytes than planned, or its
	// total size changed. Permanent.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrPartsMissing: Compose found neither a verified final object nor all
	// the part objects (deleted by a lifecycle rule or an earlier failed
	// Compose). Retryable in the sense that the parts must be copied again.
	ErrPartsMissing = errors.New("part objects missing")
	// ErrNotExist is returned by Sink.Attrs for a missing object.
	ErrNotExist = errors.New("object does not exist")
	// ErrRangeIgnored: the source answered a ranged GET with the whole
	// object. Retryable (a proxy may do it once); CopyPart gives up after
	// its attempts and the caller ends the object (IsSourceFault).
	ErrRangeIgnored = errors.New("source ignored the Range header")
)

// HTTPError is a non-success answer of the signed URL's host. It never holds
// the URL's query string (the signature: a bearer credential) nor the body.
type HTTPError struct {
	Op         string // "probe" or "get range"
	StatusCode int
	Code       string // the XML error <Code>, e.g. "ExpiredToken", when given
	URL        string // redacted: scheme, host and path only
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.Op, e.URL, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	return s
}

// RedactURL strips the user info, query and fragment of raw, so the result can
// be logged. An unparsable URL gives a fixed placeholder.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := r.String()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?REDACTED"
	}
	return s
}

// redactErr replaces the URL of a *url.Error (what http.Client.Do returns:
// it quotes the full request URL) with its redacted form.
func redactErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: redactErr(ue.Err)}
	}
	return err
}

var xmlCode = regexp.MustCompile(`<Code>([A-Za-z0-9_.-]{1,64})</Code>`)

// newHTTPError builds an HTTPError from a response, reading at most 4 KiB of
// the body to find the XML error code (messages may echo the request, so only
// the code is kept).
func newHTTPError(op, rawURL string, resp *http.Response) *HTTPError {
	e := &HTTPError{Op: op, StatusCode: resp.StatusCode, URL: RedactURL(rawURL)}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if m := xmlCode.FindSubmatch(b); m != nil {
		e.Code = string(m[1])
	}
	return e
}

// IsSourceFault reports whether err, returned by Probe or CopyPart, is the
// signed URL's host answering in a way no retry of ours can change: a
// permanent HTTP refusal, an object whose size changed, a URL the policy
// refuses, a server that kept ignoring Range. The caller ends the object with
// a reason; it never redelivers such an error until it is dead-lettered.
func IsSourceFault(err error) bool {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		return Classify(he) == Permanent
	case errors.Is(err, ErrSizeMismatch), errors.Is(err, ErrRangeIgnored), errors.Is(err, ErrURLRefused):
		return true
	}
	return false
}

// Describe names a source fault in a few plain words for a failure reason:
// the HTTP status and XML code of a refusal, or what a sentinel means. It
// never holds a URL's query.
func Describe(err error) string {
	var he *HTTPError
	switch {
	case errors.As(err, &he) && he.Code != "":
		return fmt.Sprintf("HTTP %d %s", he.StatusCode, he.Code)
	case errors.As(err, &he):
		return fmt.Sprintf("HTTP %d", he.StatusCode)
	case errors.Is(err, ErrRangeIgnored):
		return "the server kept ignoring byte ranges"
	case errors.Is(err, ErrSizeMismatch):
		return "the file's size is not the one planned"
	case errors.Is(err, ErrURLRefused):
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err.Error()
		}
		return err.Error()
	}
	return err.Error()
}

func classifyStatus(code int) Class {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return Retryable
	case code >= 400:
		return Permanent
	}
	return Retryable
}

// Classify tells what the caller should do about err. Errors of the source
// (HTTPError) and of the sink (Cloud Storage API errors) are told apart: a 403
// or 404 of the bucket is Permanent, not URLExpired or Gone.
func Classify(err error) Class {
	if err == nil {
		return Unclassified
	}
	var he *HTTPError
	if errors.As(err, &he) {
		switch he.StatusCode {
		case http.StatusForbidden:
			return URLExpired
		case http.StatusBadRequest:
			// Cloud Storage answers an expired V4 signed URL with 400
			// ExpiredToken, a malformed X-Goog-Date/X-Goog-Expires with 400
			// MalformedSecurityHeader: the URL no longer works, fresh ones may.
			if he.Code == "ExpiredToken" || he.Code == "MalformedSecurityHeader" {
				return URLExpired
			}
		case http.StatusNotFound, http.StatusGone:
			return Gone
		}
		return classifyStatus(he.StatusCode)
	}
	switch {
	case errors.Is(err, ErrChecksumMismatch), errors.Is(err, ErrPartsMissing), errors.Is(err, errStalled),
		errors.Is(err, ErrRangeIgnored):
		return Retryable
	case errors.Is(err, ErrSizeMismatch), errors.Is(err, ErrURLRefused),
		errors.Is(err, storage.ErrBucketNotExist):
		return Permanent
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return classifyStatus(ge.Code)
	}
	var ae *apierror.APIError
	if errors.As(err, &ae) && ae.HTTPCode() > 0 {
		return classifyStatus(ae.HTTPCode())
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return Retryable
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return Retryable
	}
	// Unknown errors are retried: the message is redelivered and, if it keeps
	// failing, dead-lettered.
	return Retryable
}
