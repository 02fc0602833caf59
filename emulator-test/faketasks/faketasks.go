// Package faketasks is a Cloud Tasks stand-in for tests and the local stack: a gRPC server that the real
// cloud.google.com/go/cloudtasks/apiv2 client talks to (see Server.ClientOptions), and that dispatches HTTP
// tasks at their schedule time, read from a Clock the caller may control.
//
// Implemented: CreateTask (HTTP tasks only, schedule_time, dispatch_deadline, OIDC tokens, named-task dedup
// with tombstones: a name seen once, even of a task already executed or deleted, gives AlreadyExists),
// GetTask, DeleteTask, ListTasks, GetQueue, CreateQueue, ListQueues, PurgeQueue. Dispatch sends the
// X-CloudTasks-* headers of the real service, retries non-2xx answers with exponential backoff and gives up
// after MaxAttempts attempts.
package faketasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Clock gives the time that decides when a task is due. The local stack passes the Data Portability fake's
// virtual clock (real time plus an offset that tests advance).
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Fault is what Options.Fault decides for one attempt of one task.
type Fault struct {
	// Drop loses the request: the handler is not called and the attempt fails without a response, so the
	// task is retried as after a network error.
	Drop bool
	// Delay holds the request back (real time) before it is sent; it counts against the dispatch deadline.
	Delay time.Duration
	// GiveUp fails the attempt without calling the handler and gives the task up at once, as the queue
	// does after the last of its max_attempts: a task that used up its attempts (Cloud Tasks has no
	// dead-letter queue; the task is deleted and counted failed).
	GiveUp bool
}

// Options configure a Server. The zero value is usable: defaults fit tests.
type Options struct {
	// Clock decides when tasks are due (default: the wall clock).
	Clock Clock
	// Tokens mints OIDC tokens for tasks with an oidc_token. Nil: such tasks are dispatched without an
	// Authorization header (and a warning is logged).
	Tokens TokenSource
	// MinBackoff and MaxBackoff bound the exponential backoff between attempts, measured on Clock
	// (defaults 100ms and 2s). A queue created with a retry_config overrides them for its tasks.
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts is the number of attempts before a task is given up and deleted (default 10; negative:
	// unlimited).
	MaxAttempts int
	// DispatchDeadline is the default time a handler has to answer, in real time (default 1 min); a task's
	// dispatch_deadline overrides it.
	DispatchDeadline time.Duration
	// MaxConcurrent is the maximum number of tasks being dispatched at once (default 10).
	MaxConcurrent int
	// PollInterval is how often the clock is read when no task is known to become due sooner (default 50ms).
	PollInterval time.Duration
	// DuplicateDeliveries > 1 delivers every attempt that many times with identical headers, as Cloud
	// Tasks' at-least-once delivery may. The first delivery's answer decides success or retry; the others
	// are sent after it, one by one, or all at once with the first when DuplicateConcurrent is set.
	DuplicateDeliveries int
	DuplicateConcurrent bool
	// Fault, if set, is asked before every attempt (attempt counts from 1). FaultBody, if set, is asked
	// instead, with the task's HTTP body (a test picks the tasks of one user).
	Fault     func(taskName string, attempt int) Fault
	FaultBody func(taskName string, attempt int, body []byte) Fault
	// StrictQueues makes CreateTask fail with NotFound for a queue not created with CreateQueue, as the
	// real service does. By default queues are created on first use.
	StrictQueues bool
	// HTTPClient sends the tasks (default: a client without timeout; deadlines come from the task).
	HTTPClient *http.Client
	// Logger receives one line per failed attempt (default: discard).
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Clock == nil {
		o.Clock = RealClock
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 10
	}
	if o.DispatchDeadline <= 0 {
		o.DispatchDeadline = time.Minute
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 10
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 50 * time.Millisecond
	}
	if o.DuplicateDeliveries < 1 {
		o.DuplicateDeliveries = 1
	}
	if o.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		o.HTTPClient = &http.Client{Transport: tr}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats are counters since Start.
type Stats struct {
	Created      int64 // tasks accepted by CreateTask
	Deduplicated int64 // CreateTask calls refused with AlreadyExists
	Attempts     int64 // dispatch attempts (duplicates not counted)
	Duplicates   int64 // extra deliveries sent because of DuplicateDeliveries
	Dispatched   int64 // tasks whose handler answered 2xx (then deleted)
	Retried      int64 // failed attempts followed by a retry
	Failed       int64 // tasks given up after MaxAttempts
	Deleted      int64 // tasks deleted by DeleteTask or PurgeQueue
}

type counters struct {
	created, deduplicated, attempts, duplicates, dispatched, retried, failed, deleted atomic.Int64
}

// Server is a running Cloud Tasks stand-in.
type Server struct {
	cloudtaskspb.UnimplementedCloudTasksServer

	opts Options
	lis  net.Listener
	gs   *grpc.Server

	mu     sync.Mutex
	queues map[string]*cloudtaskspb.Queue // by full name
	tasks  map[string]*task               // live tasks by full name
	seen   map[string]bool                // every task name ever created (tombstones)
	seq    uint64
	active int // tasks being dispatched

	n counters
	// dupOverride, when positive, replaces Options.DuplicateDeliveries (SetDuplicateDeliveries).
	dupOverride atomic.Int32

	wake      chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	baseCtx   context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// task is the server's record of one live task.
type task struct {
	pb        *cloudtaskspb.Task // FULL view, owned by the server (clone before handing out)
	queue     string
	seq       uint64
	due       time.Time // next attempt time
	running   bool
	deleted   bool // deleted while being dispatched
	attempts  int  // attempts made
	responses int  // attempts that got an HTTP response
	lastCode  int  // last HTTP status, 0 if none
}

// Start listens on addr ("" or "127.0.0.1:0" for a free loopback port) and serves until Close. ctx only
// bounds the start-up.
func Start(ctx context.Context, addr string, opts Options) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	opts.setDefaults()
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faketasks: listen %s: %w", addr, err)
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:    opts,
		lis:     lis,
		gs:      grpc.NewServer(),
		queues:  map[string]*cloudtaskspb.Queue{},
		tasks:   map[string]*task{},
		seen:    map[string]bool{},
		wake:    make(chan struct{}, 1),
		closed:  make(chan struct{}),
		baseCtx: base,
		cancel:  cancel,
	}
	cloudtaskspb.RegisterCloudTasksServer(s.gs, s)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.gs.Serve(lis) // returns when Stop is called
	}()
	go func() {
		defer s.wg.Done()
		s.schedule()
	}()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// ClientOptions are the options that point the real cloudtasks client at this server.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// NewClient returns a real cloudtasks client connected to this server; the caller closes it.
func (s *Server) NewClient(ctx context.Context) (*cloudtasks.Client, error) {
	return cloudtasks.NewClient(ctx, s.ClientOptions()...)
}

// Close stops serving, cancels dispatches in flight and waits for them. Tasks not yet run are dropped.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.gs.Stop()
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Created:      s.n.created.Load(),
		Deduplicated: s.n.deduplicated.Load(),
		Attempts:     s.n.attempts.Load(),
		Duplicates:   s.n.duplicates.Load(),
		Dispatched:   s.n.dispatched.Load(),
		Retried:      s.n.retried.Load(),
		Failed:       s.n.failed.Load(),
		Deleted:      s.n.deleted.Load(),
	}
}

// Pending is the number of live tasks (scheduled, waiting for a retry, or being dispatched).
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tasks)
}

// WaitIdle returns once no task is being dispatched and none is due by the clock: nothing more happens
// until the clock reaches the next task's time. Tasks scheduled later stay pending.
func (s *Server) WaitIdle(ctx context.Context) error {
	return s.waitFor(ctx, "idle", func() bool {
		now := s.opts.Clock.Now()
		for _, t := range s.tasks {
			if t.running || !t.due.After(now) {
				return false
			}
		}
		return true
	})
}

// WaitEmpty returns once no task is left at all (every task succeeded, failed for good or was deleted).
func (s *Server) WaitEmpty(ctx context.Context) error {
	return s.waitFor(ctx, "empty", func() bool { return len(s.tasks) == 0 })
}

func (s *Server) waitFor(ctx context.Context, what string, cond func() bool) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		ok, n := cond(), len(s.tasks)
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("faketasks: waiting until %s (%d tasks pending): %w", what, n, ctx.Err())
		case <-s.closed:
			return errors.New("faketasks: server closed")
		case <-tick.C:
		}
	}
}

func (s *Server) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// NextDue returns when the earliest waiting task is due (false when none waits).
func (s *Server) NextDue() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, t := range s.tasks {
		if !t.running && (next.IsZero() || t.due.Before(next)) {
			next = t.due
		}
	}
	return next, !next.IsZero()
}

// Busy reports whether a task is being dispatched or is due by the clock now.
func (s *Server) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Clock.Now()
	for _, t := range s.tasks {
		if t.running || !t.due.After(now) {
			return true
		}
	}
	return false
}

// SetDuplicateDeliveries changes Options.DuplicateDeliveries of a running server (n < 1 restores it).
func (s *Server) SetDuplicateDeliveries(n int) { s.dupOverride.Store(int32(max(n, 0))) }

// Purge deletes every waiting task of every queue (tests call it between cases).
func (s *Server) Purge() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, t := range s.tasks {
		if t.running {
			t.deleted = true
			continue
		}
		delete(s.tasks, name)
		s.n.deleted.Add(1)
	}
	return nil
}
