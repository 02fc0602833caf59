package faketasks

import (
	"context"
	"crypto/rand"
	"math/big"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	queueName = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]{1,100}$`)
	taskName  = regexp.MustCompile(`^(projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]{1,100})/tasks/([A-Za-z0-9_-]{1,500})$`)
)

const (
	maxTaskSize     = 1 << 20             // the real service refuses tasks over 1 MB
	maxScheduleAway = 30 * 24 * time.Hour // and schedule times more than 30 days ahead
)

// queueLocked returns the queue, creating it unless StrictQueues is set. s.mu is held.
func (s *Server) queueLocked(name string) (*cloudtaskspb.Queue, error) {
	if !queueName.MatchString(name) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid queue name %q", name)
	}
	q, ok := s.queues[name]
	if !ok {
		if s.opts.StrictQueues {
			return nil, status.Errorf(codes.NotFound, "queue %s does not exist", name)
		}
		q = &cloudtaskspb.Queue{Name: name, State: cloudtaskspb.Queue_RUNNING}
		s.queues[name] = q
	}
	return q, nil
}

// CreateQueue creates a queue; its retry_config (max_attempts, min/max backoff) applies to its tasks.
func (s *Server) CreateQueue(_ context.Context, req *cloudtaskspb.CreateQueueRequest) (*cloudtaskspb.Queue, error) {
	q := req.GetQueue()
	if q == nil || !strings.HasPrefix(q.GetName(), req.GetParent()+"/queues/") || !queueName.MatchString(q.GetName()) {
		return nil, status.Errorf(codes.InvalidArgument, "queue name %q must be %s/queues/ID", q.GetName(), req.GetParent())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.queues[q.GetName()]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "queue %s already exists", q.GetName())
	}
	q = cloneQueue(q)
	q.State = cloudtaskspb.Queue_RUNNING
	s.queues[q.GetName()] = q
	return cloneQueue(q), nil
}

// found answers f of the queue or task called name in m, with s.mu held, or NotFound as the real service
// does for a name it does not know (a task that has run, failed for good or been deleted included).
func found[V, R any](s *Server, m map[string]V, kind, name string, f func(V) R) (R, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := m[name]
	if !ok {
		var none R
		return none, status.Errorf(codes.NotFound, "%s %s does not exist", kind, name)
	}
	return f(v), nil
}

func cloneQueue(q *cloudtaskspb.Queue) *cloudtaskspb.Queue {
	return proto.Clone(q).(*cloudtaskspb.Queue)
}

// GetQueue returns a queue created explicitly or by a first CreateTask.
func (s *Server) GetQueue(_ context.Context, req *cloudtaskspb.GetQueueRequest) (*cloudtaskspb.Queue, error) {
	return found(s, s.queues, "queue", req.GetName(), cloneQueue)
}

// ListQueues lists the queues of a location (no paging).
func (s *Server) ListQueues(_ context.Context, req *cloudtaskspb.ListQueuesRequest) (*cloudtaskspb.ListQueuesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &cloudtaskspb.ListQueuesResponse{}
	for name, q := range s.queues {
		if strings.HasPrefix(name, req.GetParent()+"/queues/") {
			resp.Queues = append(resp.Queues, cloneQueue(q))
		}
	}
	sort.Slice(resp.Queues, func(i, j int) bool { return resp.Queues[i].Name < resp.Queues[j].Name })
	return resp, nil
}

// PurgeQueue deletes every task of the queue (their names stay taken).
func (s *Server) PurgeQueue(_ context.Context, req *cloudtaskspb.PurgeQueueRequest) (*cloudtaskspb.Queue, error) {
	return found(s, s.queues, "queue", req.GetName(), func(q *cloudtaskspb.Queue) *cloudtaskspb.Queue {
		for name, t := range s.tasks {
			if t.queue == q.Name {
				s.deleteLocked(name, t)
			}
		}
		q.PurgeTime = timestamppb.New(s.opts.Clock.Now())
		return cloneQueue(q)
	})
}

// CreateTask accepts an HTTP task. A task without a name gets a generated one; a name seen before (even of
// a task already run or deleted) gives AlreadyExists.
func (s *Server) CreateTask(_ context.Context, req *cloudtaskspb.CreateTaskRequest) (*cloudtaskspb.Task, error) {
	in := req.GetTask()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "task is required")
	}
	hr := in.GetHttpRequest()
	if hr == nil {
		return nil, status.Error(codes.InvalidArgument, "faketasks supports HTTP tasks only (http_request)")
	}
	if u, err := url.Parse(hr.GetUrl()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, status.Errorf(codes.InvalidArgument, "http_request.url %q must be an absolute http(s) URL", hr.GetUrl())
	}
	if hr.GetOauthToken() != nil {
		return nil, status.Error(codes.Unimplemented, "faketasks does not mint OAuth tokens (use oidc_token)")
	}
	if o := hr.GetOidcToken(); o != nil && o.GetServiceAccountEmail() == "" {
		return nil, status.Error(codes.InvalidArgument, "oidc_token.service_account_email is required")
	}
	if proto.Size(in) > maxTaskSize {
		return nil, status.Errorf(codes.InvalidArgument, "task size %d exceeds the maximum of %d bytes", proto.Size(in), maxTaskSize)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(req.GetParent())
	if err != nil {
		return nil, err
	}
	now := s.opts.Clock.Now()
	t := proto.Clone(in).(*cloudtaskspb.Task)
	if t.Name == "" {
		for t.Name == "" || s.seen[t.Name] {
			t.Name = q.Name + "/tasks/" + randomID()
		}
	} else {
		m := taskName.FindStringSubmatch(t.Name)
		if m == nil || m[1] != q.Name {
			return nil, status.Errorf(codes.InvalidArgument, "task name %q must be %s/tasks/ID (ID: letters, digits, hyphens, underscores)", t.Name, q.Name)
		}
		if s.seen[t.Name] {
			s.n.deduplicated.Add(1)
			return nil, status.Errorf(codes.AlreadyExists, "Requested entity already exists: %s", t.Name)
		}
	}
	due := now
	if t.ScheduleTime != nil {
		if err := t.ScheduleTime.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "schedule_time: %v", err)
		}
		if st := t.ScheduleTime.AsTime(); st.After(now) {
			if st.Sub(now) > maxScheduleAway {
				return nil, status.Errorf(codes.InvalidArgument, "schedule_time %s is more than 30 days ahead", st)
			}
			due = st
		}
	}
	if t.GetHttpRequest().HttpMethod == cloudtaskspb.HttpMethod_HTTP_METHOD_UNSPECIFIED {
		t.GetHttpRequest().HttpMethod = cloudtaskspb.HttpMethod_POST
	}
	if oidc := t.GetHttpRequest().GetOidcToken(); oidc != nil && oidc.Audience == "" {
		oidc.Audience = t.GetHttpRequest().Url // as the real service does
	}
	t.ScheduleTime = timestamppb.New(due)
	t.CreateTime = timestamppb.New(now)
	t.DispatchCount, t.ResponseCount, t.FirstAttempt, t.LastAttempt = 0, 0, nil, nil
	t.View = cloudtaskspb.Task_FULL

	s.seen[t.Name] = true
	s.seq++
	s.tasks[t.Name] = &task{pb: t, queue: q.Name, seq: s.seq, due: due}
	s.n.created.Add(1)
	s.poke()
	return viewOf(t, req.GetResponseView()), nil
}

// GetTask returns a live task (NotFound once it has run, failed for good or been deleted).
func (s *Server) GetTask(_ context.Context, req *cloudtaskspb.GetTaskRequest) (*cloudtaskspb.Task, error) {
	return found(s, s.tasks, "task", req.GetName(), func(t *task) *cloudtaskspb.Task {
		return viewOf(t.pb, req.GetResponseView())
	})
}

// DeleteTask deletes a live task. A dispatch in flight is not interrupted, but the task is not retried.
func (s *Server) DeleteTask(_ context.Context, req *cloudtaskspb.DeleteTaskRequest) (*emptypb.Empty, error) {
	return found(s, s.tasks, "task", req.GetName(), func(t *task) *emptypb.Empty {
		s.deleteLocked(req.GetName(), t)
		return &emptypb.Empty{}
	})
}

func (s *Server) deleteLocked(name string, t *task) {
	delete(s.tasks, name)
	t.deleted = true
	s.n.deleted.Add(1)
}

// ListTasks lists the live tasks of a queue in schedule order, with paging.
func (s *Server) ListTasks(_ context.Context, req *cloudtaskspb.ListTasksRequest) (*cloudtaskspb.ListTasksResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts []*task
	for _, t := range s.tasks {
		if t.queue == req.GetParent() {
			ts = append(ts, t)
		}
	}
	sortTasks(ts)
	start := 0
	if tok := req.GetPageToken(); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "bad page token %q", tok)
		}
		start = min(n, len(ts))
	}
	size := int(req.GetPageSize())
	if size <= 0 || size > 1000 {
		size = 1000
	}
	end := min(start+size, len(ts))
	resp := &cloudtaskspb.ListTasksResponse{}
	for _, t := range ts[start:end] {
		resp.Tasks = append(resp.Tasks, viewOf(t.pb, req.GetResponseView()))
	}
	if end < len(ts) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

func sortTasks(ts []*task) {
	sort.Slice(ts, func(i, j int) bool {
		if !ts[i].due.Equal(ts[j].due) {
			return ts[i].due.Before(ts[j].due)
		}
		return ts[i].seq < ts[j].seq
	})
}

// viewOf clones a task for a response; the BASIC view (the default) omits the body, as the real service.
func viewOf(t *cloudtaskspb.Task, v cloudtaskspb.Task_View) *cloudtaskspb.Task {
	c := proto.Clone(t).(*cloudtaskspb.Task)
	if v != cloudtaskspb.Task_FULL {
		c.View = cloudtaskspb.Task_BASIC
		if hr := c.GetHttpRequest(); hr != nil {
			hr.Body = nil
		}
	}
	return c
}

// randomID is a decimal ID like the real service's generated task IDs.
func randomID() string {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n.String()
}
