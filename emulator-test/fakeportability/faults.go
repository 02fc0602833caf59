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
	status int
	delay  time.Duration
	count  int
}

type faultState struct {
	failNext   map[string]int
	cancelNext map[string]int
	method     map[string][]*methodFault // FIFO per method
	download   []*DownloadFault
}

func newFaultState() faultState {
	return faultState{failNext: map[string]int{}, cancelNext: map[string]int{}, method: map[string][]*methodFault{}}
}

// takeJobOutcome returns the outcome of a new job on groups, consuming one job fault.
func (f *faultState) takeJobOutcome(groups []string) string {
	for _, r := range groups {
		if f.failNext[r] > 0 {
			f.failNext[r]--
			return StateFailed
		}
	}
	for _, r := range groups {
		if f.cancelNext[r] > 0 {
			f.cancelNext[r]--
			return StateCancelled
		}
	}
	return StateComplete
}

// takeMethod returns the delay and status (0: none) for the next call of method.
func (f *faultState) takeMethod(method string) (time.Duration, int) {
	q := f.method[method]
	if len(q) == 0 {
		return 0, 0
	}
	mf := q[0]
	mf.count--
	if mf.count <= 0 {
		f.method[method] = q[1:]
	}
	return mf.delay, mf.status
}

// takeDownload returns the fault for the next download, or nil.
func (f *faultState) takeDownload() *DownloadFault {
	if len(f.download) == 0 {
		return nil
	}
	d := f.download[0]
	d.Count--
	if d.Count <= 0 {
		f.download = f.download[1:]
	}
	c := *d
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
		s.faults.failNext[fl.Resource] += fl.FailNextJobs
		s.faults.cancelNext[fl.Resource] += fl.CancelNextJobs
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
			&methodFault{status: fl.Status, delay: time.Duration(fl.DelayMs) * time.Millisecond, count: count})
	case fl.Download != nil:
		d := *fl.Download
		if d.CutAfterBytes == nil && d.CorruptAt == nil && d.SlowStartMs <= 0 {
			return fmt.Errorf("download fault needs cutAfterBytes, corruptAt or slowStartMs")
		}
		d.Count = max(d.Count, 1)
		s.faults.download = append(s.faults.download, &d)
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
