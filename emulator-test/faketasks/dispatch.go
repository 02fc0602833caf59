package faketasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/genproto/googleapis/rpc/code"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// errDropped is the outcome of an attempt that Options.Fault dropped.
var errDropped = errors.New("dropped by fault injection")

// errGiveUp is the outcome of an attempt that Options.Fault made the task's last.
var errGiveUp = errors.New("given up by fault injection")

// attempt is what one dispatch of a task needs, copied out under the lock.
type attempt struct {
	name, queueID, taskID string
	number                int // 1 for the first attempt
	responses, prevCode   int
	eta                   time.Time
	req                   *cloudtaskspb.HttpRequest
	deadline              time.Duration
	minBackoff            time.Duration
	maxBackoff            time.Duration
	maxAttempts           int
}

// schedule runs due tasks until Close: it wakes when a task is created or finishes an attempt, when the
// nearest task is due by the real-time distance, and at least every PollInterval (the clock may jump).
func (s *Server) schedule() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Reset(s.dispatchDue())
		select {
		case <-s.closed:
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// dispatchDue starts the due tasks, earliest first, within MaxConcurrent, and returns how long to sleep.
func (s *Server) dispatchDue() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Clock.Now()
	next := s.opts.PollInterval
	var due []*task
	for _, t := range s.tasks {
		switch {
		case t.running:
		case !t.due.After(now):
			due = append(due, t)
		case t.due.Sub(now) < next:
			next = t.due.Sub(now)
		}
	}
	sortTasks(due)
	for _, t := range due {
		if s.active >= s.opts.MaxConcurrent {
			break
		}
		t.running = true
		s.active++
		a := s.attemptLocked(t, now)
		s.wg.Add(1)
		go s.run(t, a)
	}
	return next
}

func (s *Server) attemptLocked(t *task, now time.Time) attempt {
	a := attempt{
		name:        t.pb.Name,
		queueID:     t.queue[strings.LastIndex(t.queue, "/")+1:],
		taskID:      t.pb.Name[strings.LastIndex(t.pb.Name, "/")+1:],
		number:      t.attempts + 1,
		responses:   t.responses,
		prevCode:    t.lastCode,
		eta:         t.due,
		req:         proto.Clone(t.pb.GetHttpRequest()).(*cloudtaskspb.HttpRequest),
		deadline:    s.opts.DispatchDeadline,
		minBackoff:  s.opts.MinBackoff,
		maxBackoff:  s.opts.MaxBackoff,
		maxAttempts: s.opts.MaxAttempts,
	}
	if d := t.pb.GetDispatchDeadline(); d != nil && d.AsDuration() > 0 {
		a.deadline = d.AsDuration()
	}
	if rc := s.queues[t.queue].GetRetryConfig(); rc != nil {
		if rc.MaxAttempts != 0 {
			a.maxAttempts = int(rc.MaxAttempts)
		}
		if d := rc.GetMinBackoff().AsDuration(); d > 0 {
			a.minBackoff = d
		}
		if d := rc.GetMaxBackoff().AsDuration(); d > 0 {
			a.maxBackoff = d
		}
	}
	t.pb.DispatchCount++
	t.pb.LastAttempt = &cloudtaskspb.Attempt{ScheduleTime: timestamppb.New(t.due), DispatchTime: timestamppb.New(now)}
	if t.pb.FirstAttempt == nil {
		t.pb.FirstAttempt = &cloudtaskspb.Attempt{DispatchTime: timestamppb.New(now)}
	}
	return a
}

// run makes one attempt and records its outcome: success deletes the task, failure schedules a retry after
// a backoff (on the clock) or gives the task up after the last attempt.
func (s *Server) run(t *task, a attempt) {
	defer s.wg.Done()
	status, err := s.deliverAll(a)
	ok := err == nil && status >= 200 && status < 300
	if !ok {
		s.opts.Logger.Info("faketasks: attempt failed", "task", a.name, "attempt", a.number, "status", status, "err", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.poke()
	now := s.opts.Clock.Now()
	t.running = false
	s.active--
	t.attempts++
	st := &spb.Status{Code: int32(code.Code_OK)}
	if status != 0 {
		t.responses++
		t.lastCode = status
		t.pb.ResponseCount++
		if !ok {
			st = &spb.Status{Code: int32(code.Code_UNKNOWN), Message: http.StatusText(status)}
		}
	} else {
		st = &spb.Status{Code: int32(code.Code_UNAVAILABLE), Message: fmt.Sprint(err)}
	}
	t.pb.LastAttempt.ResponseTime = timestamppb.New(now)
	t.pb.LastAttempt.ResponseStatus = st
	switch {
	case t.deleted:
		// Deleted during the attempt: no retry. DeleteTask already dropped it; Purge leaves running tasks.
		if s.tasks[a.name] == t {
			delete(s.tasks, a.name)
		}
	case ok:
		delete(s.tasks, a.name)
		s.n.dispatched.Add(1)
	case a.maxAttempts > 0 && t.attempts >= a.maxAttempts, errors.Is(err, errGiveUp):
		delete(s.tasks, a.name)
		s.n.failed.Add(1)
		s.opts.Logger.Warn("faketasks: task given up", "task", a.name, "attempts", t.attempts)
	default:
		t.due = now.Add(backoff(a.minBackoff, a.maxBackoff, t.attempts))
		t.pb.ScheduleTime = timestamppb.New(t.due)
		s.n.retried.Add(1)
	}
}

// backoff is min·2^(failures-1), capped at max.
func backoff(minB, maxB time.Duration, failures int) time.Duration {
	d := minB
	for i := 1; i < failures && d < maxB; i++ {
		d *= 2
	}
	return min(d, maxB)
}

// deliverAll sends the attempt (and its duplicates) and returns the first delivery's HTTP status, 0 if the
// request got no response.
func (s *Server) deliverAll(a attempt) (int, error) {
	s.n.attempts.Add(1)
	var f Fault
	switch {
	case s.opts.FaultBody != nil:
		f = s.opts.FaultBody(a.name, a.number, a.req.GetBody())
	case s.opts.Fault != nil:
		f = s.opts.Fault(a.name, a.number)
	}
	if f.GiveUp {
		return 0, errGiveUp
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-s.baseCtx.Done():
			return 0, s.baseCtx.Err()
		}
	}
	if f.Drop {
		return 0, errDropped
	}
	var token string
	if o := a.req.GetOidcToken(); o != nil {
		if s.opts.Tokens == nil {
			s.opts.Logger.Warn("faketasks: task has an oidc_token but no TokenSource is set", "task", a.name)
		} else {
			ctx, cancel := context.WithTimeout(s.baseCtx, a.deadline)
			var err error
			token, err = s.opts.Tokens.Token(ctx, o.GetServiceAccountEmail(), o.GetAudience())
			cancel()
			if err != nil {
				return 0, fmt.Errorf("mint OIDC token for %s: %w", o.GetServiceAccountEmail(), err)
			}
		}
	}

	dups := s.opts.DuplicateDeliveries - 1
	if n := s.dupOverride.Load(); n > 0 {
		dups = int(n) - 1
	}
	s.n.duplicates.Add(int64(dups))
	if !s.opts.DuplicateConcurrent {
		status, err := s.deliver(a, token)
		for range dups {
			_, _ = s.deliver(a, token)
		}
		return status, err
	}
	var wg sync.WaitGroup
	for range dups {
		wg.Go(func() { _, _ = s.deliver(a, token) })
	}
	status, err := s.deliver(a, token)
	wg.Wait()
	return status, err
}

// deliver sends one HTTP request with the headers of the real service.
func (s *Server) deliver(a attempt, token string) (int, error) {
	ctx, cancel := context.WithTimeout(s.baseCtx, a.deadline)
	defer cancel()
	method := a.req.GetHttpMethod().String()
	var body io.Reader
	if len(a.req.GetBody()) > 0 {
		body = bytes.NewReader(a.req.GetBody())
	}
	req, err := http.NewRequestWithContext(ctx, method, a.req.GetUrl(), body)
	if err != nil {
		return 0, err
	}
	for k, v := range a.req.GetHeaders() {
		req.Header.Set(k, v)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	h := req.Header
	h.Set("User-Agent", "Google-Cloud-Tasks")
	h.Set("X-CloudTasks-QueueName", a.queueID)
	h.Set("X-CloudTasks-TaskName", a.taskID)
	h.Set("X-CloudTasks-TaskRetryCount", strconv.Itoa(a.number-1))
	h.Set("X-CloudTasks-TaskExecutionCount", strconv.Itoa(a.responses))
	h.Set("X-CloudTasks-TaskETA", fmt.Sprintf("%d.%06d", a.eta.Unix(), a.eta.Nanosecond()/1000))
	if a.prevCode != 0 {
		h.Set("X-CloudTasks-TaskPreviousResponse", strconv.Itoa(a.prevCode))
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
