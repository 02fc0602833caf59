// Package portability calls the Data Portability API through the generated client
// (google.golang.org/api/dataportability/v1) and classifies its errors once, so every step reacts to the
// API's rules the same way.
package portability

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	dp "google.golang.org/api/dataportability/v1"
	"google.golang.org/api/option"

	"github.com/portability-pipeline/pipeline/shared/sameorigin"
)

// Access types as the API names them.
const (
	AccessOneTime   = "ACCESS_TYPE_ONE_TIME"
	AccessTimeBased = "ACCESS_TYPE_TIME_BASED"
)

// Job states.
const (
	StateInProgress = "IN_PROGRESS"
	StateComplete   = "COMPLETE"
	StateFailed     = "FAILED"
	StateCancelled  = "CANCELLED"
)

// Started is the answer to an initiate.
type Started struct {
	Job        string
	AccessType string
}

// State is a job's state; URLs are signed bearer credentials (never log them).
type State struct {
	State      string
	URLs       []string
	ExportTime time.Time
	StartTime  time.Time
}

// Access says which granted resources are one-time and which time-based.
type Access struct {
	OneTime   []string
	TimeBased []string
}

// API is the part of the Data Portability API the pipeline uses, for one user's token.
type API interface {
	Initiate(ctx context.Context, resources []string) (Started, error)
	// InitiateSince is Initiate with a startTime (no endTime: the API exports up to the request time).
	// A zero start sends none (the whole history). Only groups with resources.SupportsTimeFilter accept one.
	InitiateSince(ctx context.Context, resources []string, start time.Time) (Started, error)
	State(ctx context.Context, job string) (State, error)
	Retry(ctx context.Context, job string) (string, error)
	Cancel(ctx context.Context, job string) error
	Reset(ctx context.Context) error
	CheckAccess(ctx context.Context) (Access, error)
}

// Client implements API with the generated client.
type Client struct{ svc *dp.Service }

// New returns a client calling endpoint with httpClient, which must add the user's bearer token. The client
// is used through a copy that follows no redirect to another host (see redirectLimit).
func New(ctx context.Context, endpoint string, httpClient *http.Client) (*Client, error) {
	if httpClient == nil {
		return nil, errors.New("data portability client: no HTTP client")
	}
	hc := *httpClient
	hc.CheckRedirect = sameorigin.CheckRedirect(ErrCrossHostRedirect, redirectLimit(httpClient.CheckRedirect))
	svc, err := dp.NewService(ctx, option.WithEndpoint(endpoint), option.WithHTTPClient(&hc))
	if err != nil {
		return nil, fmt.Errorf("data portability client: %w", err)
	}
	return &Client{svc: svc}, nil
}

// Initiate starts one archive job for the resources.
func (c *Client) Initiate(ctx context.Context, resources []string) (Started, error) {
	return c.InitiateSince(ctx, resources, time.Time{})
}

// InitiateSince starts one archive job for the resources, limited to activity from start on (zero: the
// whole history); the API takes startTime only for groups with time filters.
func (c *Client) InitiateSince(ctx context.Context, resources []string, start time.Time) (Started, error) {
	req := &dp.InitiatePortabilityArchiveRequest{Resources: resources}
	if !start.IsZero() {
		req.StartTime = start.UTC().Format(time.RFC3339Nano)
	}
	r, err := c.svc.PortabilityArchive.Initiate(req).Context(ctx).Do()
	if err != nil {
		return Started{}, Classify("initiate", err)
	}
	if r == nil || r.ArchiveJobId == "" {
		return Started{}, &Error{Kind: KindRetry, Op: "initiate", Message: "answer without archiveJobId"}
	}
	return Started{Job: r.ArchiveJobId, AccessType: r.AccessType}, nil
}

// State reports a job's state, with the signed URLs once it is complete.
func (c *Client) State(ctx context.Context, job string) (State, error) {
	r, err := c.svc.ArchiveJobs.GetPortabilityArchiveState("archiveJobs/" + job + "/portabilityArchiveState").Context(ctx).Do()
	if err != nil {
		return State{}, Classify("get state", err)
	}
	if r == nil {
		return State{}, &Error{Kind: KindRetry, Op: "get state", Message: "empty answer"}
	}
	s := State{State: r.State, URLs: r.Urls}
	if r.ExportTime != "" {
		if s.ExportTime, err = time.Parse(time.RFC3339Nano, r.ExportTime); err != nil {
			return State{}, &Error{Kind: KindRetry, Op: "get state", Message: "bad exportTime " + r.ExportTime}
		}
	}
	if r.StartTime != "" {
		s.StartTime, _ = time.Parse(time.RFC3339Nano, r.StartTime)
	}
	return s, nil
}

// Retry runs a FAILED job again and returns the new job's ID.
func (c *Client) Retry(ctx context.Context, job string) (string, error) {
	r, err := c.svc.ArchiveJobs.Retry("archiveJobs/"+job, &dp.RetryPortabilityArchiveRequest{}).Context(ctx).Do()
	if err != nil {
		return "", Classify("retry", err)
	}
	if r == nil || r.ArchiveJobId == "" {
		return "", &Error{Kind: KindRetry, Op: "retry", Message: "answer without archiveJobId"}
	}
	return r.ArchiveJobId, nil
}

// Cancel cancels a running job.
func (c *Client) Cancel(ctx context.Context, job string) error {
	_, err := c.svc.ArchiveJobs.Cancel("archiveJobs/"+job, &dp.CancelPortabilityArchiveRequest{}).Context(ctx).Do()
	return Classify("cancel", err)
}

// Reset ends the grant (authorization:reset), which revokes the user's tokens.
func (c *Client) Reset(ctx context.Context) error {
	_, err := c.svc.Authorization.Reset(&dp.ResetAuthorizationRequest{}).Context(ctx).Do()
	return Classify("reset", err)
}

// CheckAccess reports which granted resources are one-time and which time-based.
func (c *Client) CheckAccess(ctx context.Context) (Access, error) {
	r, err := c.svc.AccessType.Check(&dp.CheckAccessTypeRequest{}).Context(ctx).Do()
	if err != nil {
		return Access{}, Classify("check access", err)
	}
	if r == nil {
		return Access{}, &Error{Kind: KindRetry, Op: "check access", Message: "empty answer"}
	}
	return Access{OneTime: r.OneTimeResources, TimeBased: r.TimeBasedResources}, nil
}

// ErrCrossHostRedirect is the error of a call the API answered with a redirect to another origin.
var ErrCrossHostRedirect = errors.New("redirect to another host refused")

// redirectLimit is what a redirect that stays on the API's host goes on to: the client's own policy
// (next), or Go's default limit of 10. Redirects to another host are refused before (shared/sameorigin):
// the client's transport adds the user's bearer token to every request it sends, and the API has no reason
// to redirect across hosts.
func redirectLimit(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	if next != nil {
		return next
	}
	return func(_ *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}
