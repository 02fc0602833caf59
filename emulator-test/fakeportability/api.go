package fakeportability

import (
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/resources"
)

// The six methods of the Data Portability API (v1), at the paths the generated Go client uses.

// Method names as used by faults and call counters.
const (
	MethodInitiate = "initiate"
	MethodGetState = "getState"
	MethodRetry    = "retry"
	MethodCancel   = "cancel"
	MethodReset    = "reset"
	MethodCheck    = "check"
	MethodToken    = "token"
)

// begin counts the call, applies delay and status faults of method and authenticates the caller. On false
// the answer is written.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, method string) (*grant, bool) {
	s.mu.Lock()
	s.calls.add("", method)
	delay, status := s.faults.takeMethod(method, s.callerLocked(r))
	s.mu.Unlock()
	if !sleepCtx(r, delay) {
		return nil, false
	}
	if status != 0 {
		writeAPIError(w, errInjected(status))
		return nil, false
	}
	s.mu.Lock()
	g, apiErr := s.authenticateLocked(r)
	if apiErr == nil {
		s.calls.add(g.user, method)
	}
	s.mu.Unlock()
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return nil, false
	}
	return g, true
}

// apiMethod is the handler of one API method: h serves the call once begin has counted it, applied the
// method's faults and found the caller's grant.
func (s *Server) apiMethod(method string, h func(w http.ResponseWriter, r *http.Request, g *grant)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if g, ok := s.begin(w, r, method); ok {
			h(w, r, g)
		}
	}
}

func sleepCtx(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// decodeBody reads an optional JSON object body into v.
func decodeBody(r *http.Request, v any) *apiError {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return errInvalidArgument("reading the body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errInvalidArgument("Invalid JSON payload received. %v", err)
	}
	return nil
}

type initiateRequest struct {
	Resources []string `json:"resources"`
	StartTime string   `json:"startTime"`
	EndTime   string   `json:"endTime"`
}

func (s *Server) handleInitiate(w http.ResponseWriter, r *http.Request, g *grant) {
	var req initiateRequest
	if e := decodeBody(r, &req); e != nil {
		writeAPIError(w, e)
		return
	}
	s.mu.Lock()
	for _, res := range req.Resources {
		s.calls.addResource(g.user, res)
	}
	resp, e := s.initiateLocked(g, req)
	s.mu.Unlock()
	answer(w, resp, e)
}

func (s *Server) initiateLocked(g *grant, req initiateRequest) (map[string]string, *apiError) {
	if len(req.Resources) == 0 {
		return nil, errInvalidArgument("Request must specify at least one resource.")
	}
	seen := map[string]bool{}
	for _, res := range req.Resources {
		if strings.HasPrefix(res, resources.ScopePrefix) || !resources.Known(res) {
			return nil, errInvalidArgument("Invalid resource: %q is not a Data Portability resource group.", res)
		}
		if seen[res] {
			return nil, errInvalidArgument("Resource %q is given twice.", res)
		}
		seen[res] = true
	}
	groups := slices.Sorted(slices.Values(req.Resources))
	for _, res := range groups {
		if !g.has(res) {
			return nil, errPermissionDenied()
		}
	}
	now := s.clock.Now()
	exportTime := now
	if req.StartTime != "" || req.EndTime != "" {
		for _, res := range groups {
			if !resources.SupportsTimeFilter(res) {
				return nil, errInvalidArgument("Time filters are not supported for resource %q.", res)
			}
		}
		var start, end time.Time
		var err error
		if req.StartTime != "" {
			if start, err = time.Parse(time.RFC3339Nano, req.StartTime); err != nil {
				return nil, errInvalidArgument("Invalid startTime %q: %v", req.StartTime, err)
			}
		}
		if req.EndTime != "" {
			if end, err = time.Parse(time.RFC3339Nano, req.EndTime); err != nil {
				return nil, errInvalidArgument("Invalid endTime %q: %v", req.EndTime, err)
			}
			exportTime = end
		}
		if !start.IsZero() && !end.IsZero() && end.Before(start) {
			return nil, errInvalidArgument("endTime is before startTime.")
		}
	}
	u := s.userLocked(g.user)
	oneTime := false
	for _, res := range groups {
		if u.access[res] == accessOneTime {
			oneTime = true
		}
	}
	for _, j := range s.jobSeq {
		if j.user == u.name && j.epoch == u.epoch && slices.Equal(j.resources, groups) && j.state(now) == StateInProgress {
			reason := "ALREADY_EXISTS_TIME_BASED"
			if j.oneTime {
				reason = "ALREADY_EXISTS_ONE_TIME"
			}
			return nil, &apiError{code: http.StatusConflict, status: "ALREADY_EXISTS", reason: reason,
				message:  "An archive job for the requested resources is already in progress.",
				metadata: map[string]string{"job_id": j.id}}
		}
	}
	if e := s.exhaustionLocked(u, groups, now); e != nil {
		return nil, e
	}
	j := s.newJobLocked(u, groups, oneTime, req.StartTime, req.EndTime, exportTime)
	s.log.Info("job started", "user", u.name, "job", j.id, "resources", strings.Join(groups, ","), "outcome", j.outcome)
	return map[string]string{"archiveJobId": j.id, "accessType": j.accessType()}, nil
}

// jobOfLocked finds a job of the grant's user.
func (s *Server) jobOfLocked(g *grant, id string) (*job, *apiError) {
	j := s.jobs[id]
	if j == nil || j.user != g.user {
		return nil, errNotFound("Archive job %q not found.", id)
	}
	return j, nil
}

type stateResponse struct {
	Name       string   `json:"name"`
	State      string   `json:"state"`
	URLs       []string `json:"urls,omitempty"`
	StartTime  string   `json:"startTime,omitempty"`
	ExportTime string   `json:"exportTime"`
}

func (s *Server) handleGetState(w http.ResponseWriter, r *http.Request, g *grant) {
	s.mu.Lock()
	j, e := s.jobOfLocked(g, r.PathValue("id"))
	var resp stateResponse
	if e == nil {
		now := s.clock.Now()
		resp = stateResponse{Name: "archiveJobs/" + j.id + "/portabilityArchiveState", State: j.state(now),
			StartTime: j.startTime, ExportTime: j.exportTime.UTC().Format(time.RFC3339Nano)}
		if resp.State == StateComplete {
			sf := s.faults.takeState(j.user)
			for _, f := range j.files {
				u := s.signedURL(s.baseURL(r), j.id, f.name, now, s.opts.URLTTL)
				s.rec.signedURL(u)
				resp.URLs = append(resp.URLs, u)
			}
			switch {
			case sf.NoURLs:
				resp.URLs = nil
			case sf.ShuffleURLs:
				// Nothing documents that urls keep their order between state calls.
				mrand.Shuffle(len(resp.URLs), func(a, b int) { resp.URLs[a], resp.URLs[b] = resp.URLs[b], resp.URLs[a] })
			}
		}
	}
	s.mu.Unlock()
	answer(w, resp, e)
}

// handleJobAction serves archiveJobs/{id}:retry and archiveJobs/{id}:cancel.
func (s *Server) handleJobAction(w http.ResponseWriter, r *http.Request) {
	idAction := r.PathValue("idAction")
	i := strings.LastIndexByte(idAction, ':')
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	r.SetPathValue("id", idAction[:i])
	switch idAction[i+1:] {
	case "retry":
		s.apiMethod(MethodRetry, s.handleRetry)(w, r)
	case "cancel":
		s.apiMethod(MethodCancel, s.handleCancel)(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request, g *grant) {
	id := r.PathValue("id")
	s.mu.Lock()
	resp, e := s.retryLocked(g, id)
	s.mu.Unlock()
	answer(w, resp, e)
}

func (s *Server) retryLocked(g *grant, id string) (map[string]string, *apiError) {
	j, e := s.jobOfLocked(g, id)
	if e != nil {
		return nil, e
	}
	for _, res := range j.resources {
		if !g.has(res) {
			return nil, errPermissionDenied()
		}
	}
	now := s.clock.Now()
	if st := j.state(now); st != StateFailed {
		return nil, errFailedPrecondition("", "Only failed archive jobs can be retried; job %q is %s.", id, st)
	}
	if j.retriedBy != "" {
		return nil, errFailedPrecondition("", "Archive job %q was already retried as %q.", id, j.retriedBy)
	}
	if j.root.retries >= s.opts.MaxRetries {
		return nil, errFailedPrecondition("RETRY_LIMIT_EXCEEDED", "Archive job %q has been retried %d times already, the maximum.", j.root.id, j.root.retries)
	}
	u := s.userLocked(g.user)
	exportTime := now
	if j.endTime != "" {
		exportTime = j.exportTime
	}
	nj := s.newJobLocked(u, j.resources, j.oneTime, j.startTime, j.endTime, exportTime)
	nj.retryOf, nj.root = j.id, j.root
	j.root.retries++
	j.retriedBy = nj.id
	s.log.Info("job retried", "user", u.name, "job", nj.id, "retryOf", j.id, "outcome", nj.outcome)
	return map[string]string{"archiveJobId": nj.id}, nil
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request, g *grant) {
	id := r.PathValue("id")
	s.mu.Lock()
	j, e := s.jobOfLocked(g, id)
	if e == nil {
		now := s.clock.Now()
		switch {
		case j.state(now) != StateInProgress:
			e = errFailedPrecondition("", "Only in-progress archive jobs can be cancelled; job %q is %s.", id, j.state(now))
		case j.oneTime:
			e = errFailedPrecondition("", "Only archive jobs with time-based access can be cancelled.")
		default:
			j.cancelledAt = now
		}
	}
	s.mu.Unlock()
	answer(w, struct{}{}, e)
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request, g *grant) {
	var body map[string]any
	if e := decodeBody(r, &body); e != nil {
		writeAPIError(w, e)
		return
	}
	if len(body) > 0 {
		writeAPIError(w, errInvalidArgument("The request body of authorization:reset must be empty."))
		return
	}
	s.mu.Lock()
	u := s.userLocked(g.user)
	u.epoch++
	u.access = map[string]accessKind{}
	s.revokeUserLocked(u.name)
	s.rec.resets[u.name] = append(s.rec.resets[u.name], time.Now())
	s.mu.Unlock()
	s.log.Info("authorization reset", "user", g.user)
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request, g *grant) {
	resp := struct {
		OneTime   []string `json:"oneTimeResources,omitempty"`
		TimeBased []string `json:"timeBasedResources,omitempty"`
	}{}
	s.mu.Lock()
	u := s.userLocked(g.user)
	for _, res := range g.resources {
		a, ok := u.access[res]
		if !ok {
			a = g.access
		}
		if a.timeBased() {
			resp.TimeBased = append(resp.TimeBased, res)
		} else {
			resp.OneTime = append(resp.OneTime, res)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}
