package fakeportability

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Test control endpoints under /fake/v1/ (see README.md for the contract).

func controlError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

func (s *Server) handleControlGrant(w http.ResponseWriter, r *http.Request) {
	var req GrantRequest
	if err := decodeStrict(r, &req); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	resp, err := s.Grant(req)
	if err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	s.log.Info("grant created", "user", req.User, "access", req.Access)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleClockGet(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"now": s.clock.Now().Format(time.RFC3339Nano)})
}

func (s *Server) handleClockAdvance(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Seconds float64 `json:"seconds"`
	}
	if err := decodeStrict(r, &req); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	if req.Seconds < 0 {
		controlError(w, http.StatusBadRequest, fmt.Errorf("seconds must not be negative"))
		return
	}
	now := s.clock.Advance(time.Duration(req.Seconds * float64(time.Second)))
	s.log.Info("clock advanced", "seconds", req.Seconds, "now", now)
	writeJSON(w, http.StatusOK, map[string]string{"now": now.Format(time.RFC3339Nano)})
}

func (s *Server) handleControlFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decodeStrict(r, &f); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.InjectFault(f); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) handleControlReset(w http.ResponseWriter, r *http.Request) {
	s.ClearData()
	s.log.Info("state reset")
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// callCounts counts API calls by method, in total and per user.
type callCounts struct {
	total map[string]int
	users map[string]*userCalls
}

type userCalls struct {
	methods    map[string]int
	byResource map[string]int
}

func newCallCounts() callCounts {
	return callCounts{total: map[string]int{}, users: map[string]*userCalls{}}
}

func (c *callCounts) userOf(name string) *userCalls {
	u := c.users[name]
	if u == nil {
		u = &userCalls{methods: map[string]int{}, byResource: map[string]int{}}
		c.users[name] = u
	}
	return u
}

// add counts a call: in total when user is empty, else for the user (calls are counted in total on arrival
// and for the user once the token is resolved).
func (c *callCounts) add(user, method string) {
	if user == "" {
		c.total[method]++
		return
	}
	c.userOf(user).methods[method]++
}

func (c *callCounts) addResource(user, resource string) { c.userOf(user).byResource[resource]++ }

// Calls returns the call counters in the JSON shape of GET /fake/v1/calls.
func (s *Server) Calls() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{}
	for _, m := range faultMethods {
		out[m] = s.calls.total[m]
	}
	users := map[string]any{}
	for name, u := range s.calls.users {
		um := map[string]any{}
		for _, m := range faultMethods {
			if m != MethodToken {
				um[m] = u.methods[m]
			}
		}
		um["initiateByResource"] = u.byResource
		users[name] = um
	}
	out["users"] = users
	return out
}

func (s *Server) handleCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Calls())
}

// JobInfo describes a job for GET /fake/v1/jobs.
type JobInfo struct {
	ID         string    `json:"id"`
	User       string    `json:"user"`
	Resources  []string  `json:"resources"`
	AccessType string    `json:"accessType"`
	State      string    `json:"state"`
	CreatedAt  time.Time `json:"createdAt"`
	RetryOf    string    `json:"retryOf,omitempty"`
	// StartTime is the startTime the job was asked (empty: none); ExportTime ends its range.
	StartTime  string     `json:"startTime,omitempty"`
	ExportTime time.Time  `json:"exportTime"`
	Files      []FileInfo `json:"files"`
}

// FileInfo describes one file of a job; checksums are of the whole object as served.
type FileInfo struct {
	Index   int         `json:"index"`
	Name    string      `json:"name"`
	Kind    string      `json:"kind"`
	Size    int64       `json:"size"`
	CRC32C  string      `json:"crc32c"` // base64 of the big-endian value, as Cloud Storage gives it
	MD5     string      `json:"md5,omitempty"`
	Entries []EntryInfo `json:"entries,omitempty"`
}

// EntryInfo is one zip entry.
type EntryInfo struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	CRC32 uint32 `json:"crc32"`
}

// Jobs lists jobs in creation order (all users when user is empty). It waits for checksums to be computed.
func (s *Server) Jobs(user string) []JobInfo {
	s.mu.Lock()
	now := s.clock.Now()
	var jobs []*job
	states := map[*job]string{}
	for _, j := range s.jobSeq {
		if user == "" || j.user == user {
			jobs = append(jobs, j)
			states[j] = j.state(now)
		}
	}
	s.mu.Unlock()
	out := make([]JobInfo, 0, len(jobs))
	for _, j := range jobs {
		ji := JobInfo{ID: j.id, User: j.user, Resources: slices.Clone(j.resources), AccessType: j.accessType(),
			State: states[j], CreatedAt: j.createdAt, RetryOf: j.retryOf, StartTime: j.startTime, ExportTime: j.exportTime}
		for _, f := range j.files {
			f.obj.prepare()
			var c [4]byte
			binary.BigEndian.PutUint32(c[:], f.obj.crc32c)
			fi := FileInfo{Index: f.index, Name: f.name, Kind: f.obj.kind, Size: f.obj.size,
				CRC32C: base64.StdEncoding.EncodeToString(c[:])}
			if f.obj.md5 != nil {
				fi.MD5 = base64.StdEncoding.EncodeToString(f.obj.md5)
			}
			for _, e := range f.obj.entries {
				fi.Entries = append(fi.Entries, EntryInfo{Path: e.path, Size: e.size, CRC32: e.crc})
			}
			ji.Files = append(ji.Files, fi)
		}
		out = append(out, ji)
	}
	return out
}

func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Jobs(r.URL.Query().Get("user")))
}
