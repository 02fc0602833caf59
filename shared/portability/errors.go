package portability

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/googleapis/gax-go/v2/apierror"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
)

// Kind is what a caller should do about an error.
type Kind int

const (
	// KindRetry: transient (5xx, plain 429, network, timeouts). Try again later.
	KindRetry Kind = iota
	// KindExhausted: one-time access already used for the resource (429 RESOURCE_EXHAUSTED_ONE_TIME).
	KindExhausted
	// KindCooldown: time-based access used within 24 h (429 RESOURCE_EXHAUSTED_TIME_BASED or FAILED_PRECONDITION).
	KindCooldown
	// KindAlreadyExists: an identical job is running (409); JobID names it.
	KindAlreadyExists
	// KindNotGranted: the token lacks the resource (403).
	KindNotGranted
	// KindUnauthorized: the token is revoked or expired for good (401, invalid_grant): the user must act.
	KindUnauthorized
	// KindPermanent: the request can never succeed (400, 404, retry of a job that has not failed...).
	KindPermanent
)

func (k Kind) String() string {
	return [...]string{"retry", "exhausted", "cooldown", "already-exists", "not-granted", "unauthorized", "permanent"}[k]
}

// Error is a classified API error. Its message never holds tokens or URLs.
type Error struct {
	Kind    Kind
	Op      string
	Status  int
	Reason  string
	Message string
	// PreviousJobs lists earlier jobs of the resource (exhaustion and cooldown).
	PreviousJobs []string
	// After is when a time-based export is allowed again (zero when the API did not say).
	After time.Time
	// Job is the running job of an ALREADY_EXISTS answer.
	Job string
	err error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", e.Op, e.Kind)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Reason != "" {
			s += " " + e.Reason
		}
		s += ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *Error) Unwrap() error { return e.err }

// KindOf returns the kind of err (KindRetry for errors this package did not classify).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindRetry
}

// StatusOf is the HTTP status of a classified API error (0: none): 404 from a state or retry call means
// Google no longer knows the job.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Classify turns a client error into an *Error; nil stays nil.
func Classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Kind: KindRetry, Op: op, err: err}

	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e.Status = re.Response.StatusCode
		e.Reason = re.ErrorCode
		e.Message = "token refresh failed"
		if re.ErrorCode == "invalid_grant" || re.ErrorCode == "unauthorized_client" || re.ErrorCode == "invalid_client" {
			e.Kind = KindUnauthorized
		}
		return e
	}

	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			e.Message = "timed out"
		case errors.Is(err, ErrCrossHostRedirect):
			// The user's token was not sent on; a later try may be answered without the redirect.
			e.Message = ErrCrossHostRedirect.Error()
		default:
			var ne net.Error
			if errors.As(err, &ne) {
				e.Message = "network error"
			} else {
				e.Message = redact(err.Error())
			}
		}
		return e
	}
	e.Status = ge.Code
	e.Message = redact(ge.Message)
	status := ""
	// The generated client's googleapi.Error wraps an *apierror.APIError parsed from the body. Reach it with
	// errors.As: apierror.FromError on the googleapi.Error finds its gRPC status first and loses the details.
	var ae *apierror.APIError
	if errors.As(err, &ae) {
		e.Reason = ae.Reason()
		md := ae.Metadata()
		if v := md["previous_job_ids"]; v != "" {
			for _, id := range strings.Split(v, ",") {
				if id = strings.TrimSpace(id); id != "" {
					e.PreviousJobs = append(e.PreviousJobs, id)
				}
			}
		}
		if v := md["timestamp_after_24hrs"]; v != "" {
			e.After, _ = time.Parse(time.RFC3339Nano, v)
		}
		e.Job = md["job_id"]
		if ae.GRPCStatus() != nil {
			status = ae.GRPCStatus().Code().String()
		}
	}
	switch {
	case ge.Code == http.StatusTooManyRequests && strings.HasPrefix(e.Reason, "RESOURCE_EXHAUSTED_ONE_TIME"):
		e.Kind = KindExhausted
	case ge.Code == http.StatusTooManyRequests && strings.HasPrefix(e.Reason, "RESOURCE_EXHAUSTED_TIME_BASED"):
		e.Kind = KindCooldown
	case ge.Code == http.StatusBadRequest && (status == "FailedPrecondition" || strings.Contains(strings.ToUpper(e.Reason), "FAILED_PRECONDITION") || isFailedPrecondition(ge)) && op == "initiate":
		e.Kind = KindCooldown
	case ge.Code == http.StatusConflict:
		e.Kind = KindAlreadyExists
	case ge.Code == http.StatusForbidden:
		e.Kind = KindNotGranted
	case ge.Code == http.StatusUnauthorized:
		e.Kind = KindUnauthorized
	case ge.Code == http.StatusTooManyRequests || ge.Code >= 500 || ge.Code == http.StatusRequestTimeout:
		e.Kind = KindRetry
	case ge.Code >= 400:
		e.Kind = KindPermanent
	}
	return e
}

// isFailedPrecondition reads the google.rpc.Status "status" field of the JSON body.
func isFailedPrecondition(ge *googleapi.Error) bool {
	return strings.Contains(ge.Body, `"FAILED_PRECONDITION"`)
}

// urlQuery matches the query of every URL in a message.
var urlQuery = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^\s?#"'<>]*)\?[^\s"'<>]*`)

// redact cuts the query out of every URL in a message (signed URLs are credentials).
func redact(s string) string {
	return urlQuery.ReplaceAllString(s, "${1}?[redacted]")
}
