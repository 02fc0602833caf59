package fakeportability

import (
	"fmt"
	"slices"
	"time"

	"github.com/portability-pipeline/pipeline/shared/resources"
)

// Fault is one fault to inject (the body of POST /fake/v1/faults). Set one group of fields:
//
//   - Resource with FailNextJobs and/or CancelNextJobs: the next jobs including that resource end FAILED or
//     CANCELLED (retries count as jobs).
//   - Method (initiate, getState, retry, cancel, reset, check, token) with Status and/or DelayMs: the next Count
//     calls of that method wait DelayMs, then answer Status instead of the real answer.
//   - Download: the next Count downloads are cut, corrupted or slow to start.
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
	Method         string         `json:"method,omitempty"`
	Status         int            `json:"status,omitempty"`
	DelayMs        int            `json:"delayMs,omitempty"`
	Count          int            `json:"count,omitempty"` // default 1
	Download       *DownloadFault `json:"download,omitempty"`
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
	Count       int `json:"count,omitempty"` // default 1
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

type faultState struct {
	failNext   map[jobKey]int
	cancelNext map[jobKey]int
	method     map[string][]*methodFault // FIFO per method
	download   []*downloadFault          // FIFO
}

func newFaultState() faultState {
	return faultState{failNext: map[jobKey]int{}, cancelNext: map[jobKey]int{}, method: map[string][]*methodFault{}}
}

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
	}
	return StateComplete
}

// takeMethod returns the delay and status (0: none) for the next call of method by user ("" when the caller
// is unknown): the first fault queued for anyone or for that user.
func (f *faultState) takeMethod(method, user string) (time.Duration, int) {
	q := f.method[method]
	i := slices.IndexFunc(q, func(mf *methodFault) bool { return mf.user == "" || mf.user == user })
	if i < 0 {
		return 0, 0
	}
	mf := q[i]
	mf.count--
	if mf.count <= 0 {
		f.method[method] = slices.Delete(q, i, i+1)
	}
	return mf.delay, mf.status
}

// takeDownload returns the fault for the next download of user's archive, or nil.
func (f *faultState) takeDownload(user string) *DownloadFault {
	i := slices.IndexFunc(f.download, func(d *downloadFault) bool { return d.user == "" || d.user == user })
	if i < 0 {
		return nil
	}
	d := f.download[i]
	d.Count--
	if d.Count <= 0 {
		f.download = slices.Delete(f.download, i, i+1)
	}
	c := d.DownloadFault
	return &c
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
		if fl.FailNextJobs <= 0 && fl.CancelNextJobs <= 0 {
			return fmt.Errorf("resource fault needs failNextJobs or cancelNextJobs")
		}
		k := jobKey{fl.User, fl.Resource}
		s.faults.failNext[k] += fl.FailNextJobs
		s.faults.cancelNext[k] += fl.CancelNextJobs
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
		if d.CutAfterBytes == nil && d.CorruptAt == nil && d.SlowStartMs <= 0 {
			return fmt.Errorf("download fault needs cutAfterBytes, corruptAt or slowStartMs")
		}
		d.Count = max(d.Count, 1)
		s.faults.download = append(s.faults.download, &downloadFault{user: fl.User, DownloadFault: d})
	case fl.User != "" && fl.Revoke:
		s.revokeUserLocked(fl.User)
	default:
		return fmt.Errorf("empty fault: set resource, method, download or user+revoke")
	}
	return nil
}

// ClearFaults drops every fault not yet consumed (job, method and download faults).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = newFaultState()
	s.mu.Unlock()
}
