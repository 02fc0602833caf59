package fakeportability

import (
	"fmt"
	"slices"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/internal/faultqueue"
	"github.com/portability-pipeline/pipeline/shared/resources"
)

// Fault is one fault to inject (the body of POST /fake/v1/faults). Set one group of fields:
//
//   - Resource with FailNextJobs and/or CancelNextJobs: the next jobs including that resource end FAILED or
//     CANCELLED (retries count as jobs).
//   - Method (initiate, getState, retry, cancel, reset, check, token) with Status and/or DelayMs: the next Count
//     calls of that method wait DelayMs, then answer Status instead of the real answer.
//   - Resource with StallNextJobs: the next jobs including that resource stay IN_PROGRESS for ever.
//   - Download: the next Count downloads are cut, corrupted, slow to start, refused with an XML error,
//     redirected, or answered oddly (no x-goog-hash, no crc32c, no Content-Length, Range ignored, a short 206).
//   - State: the next Count state calls of a COMPLETE job list its URLs shuffled, or none.
//   - User with Revoke: every grant of the user is revoked, as if the user withdrew consent.
//
// User set with Resource, Method or Download scopes the fault to that user: only that user's jobs, calls
// (the caller's token, code or refresh token) and downloads (the job's user) take it, so tests running
// side by side do not take each other's faults. Without User a fault is taken by the next matching event of
// anyone.
type Fault struct {
	Resource       string         `json:"resource,omitempty"`
	FailNextJobs   int            `json:"failNextJobs,omitempty"`
	CancelNextJobs int            `json:"cancelNextJobs,omitempty"`
	StallNextJobs  int            `json:"stallNextJobs,omitempty"`
	Method         string         `json:"method,omitempty"`
	Status         int            `json:"status,omitempty"`
	DelayMs        int            `json:"delayMs,omitempty"`
	Count          int            `json:"count,omitempty"` // default 1
	Download       *DownloadFault `json:"download,omitempty"`
	State          *StateFault    `json:"state,omitempty"`
	User           string         `json:"user,omitempty"`
	Revoke         bool           `json:"revoke,omitempty"`
}

// DownloadFault breaks downloads. Offsets are of the body sent (CutAfterBytes) or of the object (CorruptAt).
type DownloadFault struct {
	// CutAfterBytes closes the connection after this many body bytes.
	CutAfterBytes *int64 `json:"cutAfterBytes,omitempty"`
	// CorruptAt flips the bits of the object's byte at this offset (when the answer covers it).
	CorruptAt *int64 `json:"corruptAt,omitempty"`
	// SlowStartMs waits before the answer's headers.
	SlowStartMs int `json:"slowStartMs,omitempty"`
	// Status and Code answer this HTTP status with this XML <Code> instead of the object (e.g. 403
	// AccessDenied when the signer lost its permission, 404 NoSuchKey inside the retention).
	Status int    `json:"status,omitempty"`
	Code   string `json:"code,omitempty"`
	// RedirectTo answers 302 to this URL.
	RedirectTo string `json:"redirectTo,omitempty"`
	// NoHash omits x-goog-hash; NoCRC32C sends it with md5 only.
	NoHash   bool `json:"noHash,omitempty"`
	NoCRC32C bool `json:"noCrc32c,omitempty"`
	// NoContentLength sends the body chunked, without Content-Length.
	NoContentLength bool `json:"noContentLength,omitempty"`
	// IgnoreRange answers a ranged GET with 200 and the whole object.
	IgnoreRange bool `json:"ignoreRange,omitempty"`
	// ShortBy sends a 206 whose body (and Content-Length) is this many bytes shorter than its
	// Content-Range, ending cleanly.
	ShortBy int64 `json:"shortBy,omitempty"`
	Count   int   `json:"count,omitempty"` // default 1
}

func (d *DownloadFault) empty() bool {
	return d.CutAfterBytes == nil && d.CorruptAt == nil && d.SlowStartMs <= 0 && d.Status == 0 && d.RedirectTo == "" &&
		!d.NoHash && !d.NoCRC32C && !d.NoContentLength && !d.IgnoreRange && d.ShortBy <= 0
}

// StateFault changes the next state calls' answers for a COMPLETE job.
type StateFault struct {
	// ShuffleURLs lists the job's URLs in a random order.
	ShuffleURLs bool `json:"shuffleUrls,omitempty"`
	// NoURLs answers COMPLETE with no URLs at all.
	NoURLs bool `json:"noUrls,omitempty"`
	Count  int  `json:"count,omitempty"` // default 1
}

var faultMethods = []string{MethodInitiate, MethodGetState, MethodRetry, MethodCancel, MethodReset, MethodCheck, MethodToken}

type methodFault struct {
	user   string // "" for anyone
	status int
	delay  time.Duration
	count  int
}

type downloadFault struct {
	user string // "" for anyone
	DownloadFault
}

// jobKey keys the job faults: a resource, for anyone ("" user) or one user.
type jobKey struct{ user, resource string }

type stateFault struct {
	user string // "" for anyone
	StateFault
}

type faultState struct {
	failNext   map[jobKey]int
	cancelNext map[jobKey]int
	stallNext  map[jobKey]int
	method     map[string][]*methodFault // FIFO per method
	download   []*downloadFault          // FIFO
	state      []*stateFault             // FIFO
}

func newFaultState() faultState {
	return faultState{failNext: map[jobKey]int{}, cancelNext: map[jobKey]int{}, stallNext: map[jobKey]int{}, method: map[string][]*methodFault{}}
}

// stalled is the outcome of a job that never ends (a fault).
const stalled = "STALLED"

// takeJobOutcome returns the outcome of user's new job on groups, consuming one job fault (the user's own
// first, then anyone's).
func (f *faultState) takeJobOutcome(user string, groups []string) string {
	for _, who := range []string{user, ""} {
		for _, r := range groups {
			if k := (jobKey{who, r}); f.failNext[k] > 0 {
				f.failNext[k]--
				return StateFailed
			}
		}
		for _, r := range groups {
			if k := (jobKey{who, r}); f.cancelNext[k] > 0 {
				f.cancelNext[k]--
				return StateCancelled
			}
		}
		for _, r := range groups {
			if k := (jobKey{who, r}); f.stallNext[k] > 0 {
				f.stallNext[k]--
				return stalled
			}
		}
	}
	return StateComplete
}

// takeMethod returns the delay and status (0: none) for the next call of method by user ("" when the caller
// is unknown): the first fault queued for anyone or for that user.
func (f *faultState) takeMethod(method, user string) (time.Duration, int) {
	q := f.method[method]
	mf := faultqueue.Take(&q, func(mf *methodFault) bool { return mf.user == "" || mf.user == user },
		func(mf *methodFault) *int { return &mf.count })
	if mf == nil {
		return 0, 0
	}
	f.method[method] = q
	return mf.delay, mf.status
}

// takeDownload returns the fault for the next download of user's archive, or nil.
func (f *faultState) takeDownload(user string) *DownloadFault {
	d := faultqueue.Take(&f.download, func(d *downloadFault) bool { return d.user == "" || d.user == user },
		func(d *downloadFault) *int { return &d.Count })
	if d == nil {
		return nil
	}
	c := d.DownloadFault
	return &c
}

// takeState returns the state fault for the next state call of user's COMPLETE job (zero: none).
func (f *faultState) takeState(user string) StateFault {
	d := faultqueue.Take(&f.state, func(d *stateFault) bool { return d.user == "" || d.user == user },
		func(d *stateFault) *int { return &d.Count })
	if d == nil {
		return StateFault{}
	}
	return d.StateFault
}

// InjectFault adds a fault (see Fault).
func (s *Server) InjectFault(fl Fault) error {
	count := max(fl.Count, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case fl.Resource != "":
		if !resources.Known(fl.Resource) {
			return fmt.Errorf("unknown resource %q", fl.Resource)
		}
		if fl.FailNextJobs <= 0 && fl.CancelNextJobs <= 0 && fl.StallNextJobs <= 0 {
			return fmt.Errorf("resource fault needs failNextJobs, cancelNextJobs or stallNextJobs")
		}
		k := jobKey{fl.User, fl.Resource}
		s.faults.failNext[k] += fl.FailNextJobs
		s.faults.cancelNext[k] += fl.CancelNextJobs
		s.faults.stallNext[k] += fl.StallNextJobs
	case fl.Method != "":
		if !slices.Contains(faultMethods, fl.Method) {
			return fmt.Errorf("unknown method %q (want one of %v)", fl.Method, faultMethods)
		}
		if fl.Status == 0 && fl.DelayMs <= 0 {
			return fmt.Errorf("method fault needs status or delayMs")
		}
		if fl.Status != 0 && (fl.Status < 400 || fl.Status > 599) {
			return fmt.Errorf("status %d is not an error status", fl.Status)
		}
		s.faults.method[fl.Method] = append(s.faults.method[fl.Method],
			&methodFault{user: fl.User, status: fl.Status, delay: time.Duration(fl.DelayMs) * time.Millisecond, count: count})
	case fl.Download != nil:
		d := *fl.Download
		if d.empty() {
			return fmt.Errorf("download fault needs one of cutAfterBytes, corruptAt, slowStartMs, status, redirectTo, noHash, noCrc32c, noContentLength, ignoreRange, shortBy")
		}
		if d.Status != 0 && (d.Status < 400 || d.Status > 599) {
			return fmt.Errorf("download status %d is not an error status", d.Status)
		}
		d.Count = max(d.Count, 1)
		s.faults.download = append(s.faults.download, &downloadFault{user: fl.User, DownloadFault: d})
	case fl.State != nil:
		d := *fl.State
		if !d.ShuffleURLs && !d.NoURLs {
			return fmt.Errorf("state fault needs shuffleUrls or noUrls")
		}
		d.Count = max(d.Count, 1)
		s.faults.state = append(s.faults.state, &stateFault{user: fl.User, StateFault: d})
	case fl.User != "" && fl.Revoke:
		s.revokeUserLocked(fl.User)
	default:
		return fmt.Errorf("empty fault: set resource, method, download, state or user+revoke")
	}
	return nil
}

// ClearFaults drops every fault not yet consumed (job, method and download faults).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = newFaultState()
	s.mu.Unlock()
}
