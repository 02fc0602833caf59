package faketasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portability-pipeline/pipeline/emulator-test/faketasks"
)

const queue = "projects/p/locations/l/queues/q"

// fakeClock is a clock the test advances by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// delivery is one request a handler received.
type delivery struct {
	method string
	path   string
	header http.Header
	body   string
}

// recorder is a task handler that records deliveries and answers with the status codes of answers in turn
// (200 once they run out).
type recorder struct {
	mu      sync.Mutex
	got     []delivery
	answers []int
	srv     *httptest.Server
}

func newRecorder(t *testing.T, answers ...int) *recorder {
	r := &recorder{answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, delivery{req.Method, req.URL.Path, req.Header.Clone(), string(b)})
		code := http.StatusOK
		if len(r.answers) > 0 {
			code, r.answers = r.answers[0], r.answers[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func start(t testing.TB, opts faketasks.Options) (*faketasks.Server, *cloudtasks.Client) {
	t.Helper()
	ctx := t.Context()
	s, err := faketasks.Start(ctx, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := s.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

// startOnFakeClock starts a server whose time is a fakeClock the test advances, with a recorder to send
// tasks to.
func startOnFakeClock(t *testing.T, opts faketasks.Options) (*faketasks.Server, *cloudtasks.Client, *fakeClock, *recorder) {
	t.Helper()
	rec := newRecorder(t) // first, so that it is closed after the server that sends to it
	clock := newFakeClock()
	opts.Clock = clock
	s, c := start(t, opts)
	return s, c, clock, rec
}

func httpTask(name, url string, at time.Time) *cloudtaskspb.Task {
	t := &cloudtaskspb.Task{
		Name: name,
		MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{
			Url: url, HttpMethod: cloudtaskspb.HttpMethod_POST, Body: []byte(`{"k":"v"}`),
		}},
	}
	if !at.IsZero() {
		t.ScheduleTime = timestamppb.New(at)
	}
	return t
}

func create(t *testing.T, c *cloudtasks.Client, task *cloudtaskspb.Task) *cloudtaskspb.Task {
	t.Helper()
	got, err := c.CreateTask(t.Context(), &cloudtaskspb.CreateTaskRequest{Parent: queue, Task: task})
	if err != nil {
		t.Fatalf("CreateTask(%s): %v", task.GetName(), err)
	}
	return got
}

// wait runs a Server's WaitIdle or WaitEmpty, failing the test after 10 s.
func wait(t *testing.T, until func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := until(ctx); err != nil {
		t.Fatal(err)
	}
}

func taskNames(ds []delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.header.Get("X-CloudTasks-TaskName"))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestScheduleFollowsClock(t *testing.T) {
	t.Parallel()
	s, c, clock, rec := startOnFakeClock(t, faketasks.Options{MaxConcurrent: 1})
	t0 := clock.Now()
	create(t, c, httpTask(queue+"/tasks/a30", rec.srv.URL, t0.Add(30*time.Minute)))
	create(t, c, httpTask(queue+"/tasks/b10", rec.srv.URL, t0.Add(10*time.Minute)))
	create(t, c, httpTask(queue+"/tasks/c20", rec.srv.URL, t0.Add(20*time.Minute)))
	create(t, c, httpTask(queue+"/tasks/past", rec.srv.URL, t0.Add(-time.Hour)))
	create(t, c, httpTask(queue+"/tasks/now", rec.srv.URL, time.Time{}))

	steps := []struct {
		advance time.Duration
		want    []string
	}{
		{0, []string{"past", "now"}},
		{10*time.Minute - time.Second, []string{"past", "now"}},
		{time.Second, []string{"past", "now", "b10"}},
		{time.Hour, []string{"past", "now", "b10", "c20", "a30"}},
	}
	for _, st := range steps {
		clock.Advance(st.advance)
		wait(t, s.WaitIdle)
		if got := taskNames(rec.deliveries()); !equal(got, st.want) {
			t.Fatalf("after advancing to +%v: dispatched %v, want %v", clock.Now().Sub(t0), got, st.want)
		}
	}
	// The ETA header is the schedule time.
	d := rec.deliveries()[2]
	eta, err := strconv.ParseFloat(d.header.Get("X-CloudTasks-TaskETA"), 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(10 * time.Minute); time.Duration(eta*1e9-float64(want.UnixNano())).Abs() > time.Millisecond {
		t.Errorf("X-CloudTasks-TaskETA = %f, want %v", eta, want)
	}
	if st := s.Stats(); st.Created != 5 || st.Dispatched != 5 || st.Attempts != 5 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRealClockDispatchTiming(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	s, c := start(t, faketasks.Options{PollInterval: 20 * time.Millisecond})
	t0 := time.Now()
	create(t, c, httpTask("", rec.srv.URL, t0.Add(300*time.Millisecond)))
	wait(t, s.WaitEmpty)
	got := rec.deliveries()
	if len(got) != 1 {
		t.Fatalf("got %d deliveries", len(got))
	}
	if el := time.Since(t0); el < 300*time.Millisecond || el > 2*time.Second {
		t.Errorf("dispatched after %v, want about 300ms", el)
	}
}

func TestNamedTaskDedup(t *testing.T) {
	t.Parallel()
	s, c, clock, rec := startOnFakeClock(t, faketasks.Options{})
	ctx := t.Context()
	isAlreadyExists := func(name string) {
		t.Helper()
		_, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: queue, Task: httpTask(name, rec.srv.URL, time.Time{})})
		if status.Code(err) != codes.AlreadyExists {
			t.Errorf("second CreateTask(%s): %v, want AlreadyExists", name, err)
		}
	}

	// Pending, executed and deleted names all stay taken.
	create(t, c, httpTask(queue+"/tasks/later", rec.srv.URL, clock.Now().Add(time.Hour)))
	isAlreadyExists(queue + "/tasks/later")
	create(t, c, httpTask(queue+"/tasks/done", rec.srv.URL, time.Time{}))
	wait(t, s.WaitIdle)
	isAlreadyExists(queue + "/tasks/done")
	create(t, c, httpTask(queue+"/tasks/gone", rec.srv.URL, clock.Now().Add(time.Hour)))
	if err := c.DeleteTask(ctx, &cloudtaskspb.DeleteTaskRequest{Name: queue + "/tasks/gone"}); err != nil {
		t.Fatal(err)
	}
	isAlreadyExists(queue + "/tasks/gone")

	// Unnamed tasks get distinct generated names.
	a := create(t, c, httpTask("", rec.srv.URL, clock.Now().Add(time.Hour)))
	b := create(t, c, httpTask("", rec.srv.URL, clock.Now().Add(time.Hour)))
	if a.Name == b.Name || len(a.Name) <= len(queue+"/tasks/") {
		t.Errorf("generated names %q, %q", a.Name, b.Name)
	}
	if st := s.Stats(); st.Deduplicated != 3 || st.Created != 5 || st.Deleted != 1 {
		t.Errorf("stats = %+v", st)
	}

	// Names from another queue or with bad characters are refused.
	for _, name := range []string{"projects/p/locations/l/queues/other/tasks/x", queue + "/tasks/a.b"} {
		_, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: queue, Task: httpTask(name, rec.srv.URL, time.Time{})})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateTask(%s): %v, want InvalidArgument", name, err)
		}
	}
}

func TestHeadersAndOIDC(t *testing.T) {
	t.Parallel()
	var issued []map[string]string
	var mu sync.Mutex
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/fake/v1/idtoken" {
			http.NotFound(w, r)
			return
		}
		var in map[string]string
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		issued = append(issued, in)
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"id_token": "tok-for-" + in["audience"]})
	}))
	t.Cleanup(issuer.Close)

	rec := newRecorder(t)
	s, c := start(t, faketasks.Options{Tokens: faketasks.IssuerTokens(issuer.URL, nil)})
	url := rec.srv.URL + "/PollTask?x=1"
	task := httpTask(queue+"/tasks/t1", url, time.Time{})
	hr := task.GetHttpRequest()
	hr.Headers = map[string]string{"Content-Type": "application/json", "X-Custom": "yes", "X-CloudTasks-TaskName": "spoof"}
	hr.AuthorizationHeader = &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{ServiceAccountEmail: "invoker@p.iam.gserviceaccount.com"}}
	create(t, c, task)
	task2 := httpTask(queue+"/tasks/t2", url, time.Time{})
	task2.GetHttpRequest().AuthorizationHeader = &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{ServiceAccountEmail: "invoker@p.iam.gserviceaccount.com", Audience: "https://aud"}}
	task2.GetHttpRequest().HttpMethod = cloudtaskspb.HttpMethod_PUT
	create(t, c, task2)
	wait(t, s.WaitEmpty)

	got := map[string]delivery{}
	for _, d := range rec.deliveries() {
		got[d.header.Get("X-CloudTasks-TaskName")] = d
	}
	d := got["t1"]
	want := map[string]string{
		"X-CloudTasks-QueueName":          "q",
		"X-CloudTasks-TaskName":           "t1",
		"X-CloudTasks-TaskRetryCount":     "0",
		"X-CloudTasks-TaskExecutionCount": "0",
		"X-Custom":                        "yes",
		"Content-Type":                    "application/json",
		"User-Agent":                      "Google-Cloud-Tasks",
		"Authorization":                   "Bearer tok-for-" + url,
	}
	for k, v := range want {
		if got := d.header.Get(k); got != v {
			t.Errorf("t1 header %s = %q, want %q", k, got, v)
		}
	}
	if d.header.Get("X-CloudTasks-TaskETA") == "" || d.header.Get("X-CloudTasks-TaskPreviousResponse") != "" {
		t.Errorf("t1 ETA %q, previous response %q", d.header.Get("X-CloudTasks-TaskETA"), d.header.Get("X-CloudTasks-TaskPreviousResponse"))
	}
	if d.method != http.MethodPost || d.path != "/PollTask" || d.body != `{"k":"v"}` {
		t.Errorf("t1 request %s %s %q", d.method, d.path, d.body)
	}
	d2 := got["t2"]
	if d2.method != http.MethodPut || d2.header.Get("Authorization") != "Bearer tok-for-https://aud" ||
		d2.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("t2: %s, Authorization %q, Content-Type %q", d2.method, d2.header.Get("Authorization"), d2.header.Get("Content-Type"))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(issued) != 2 || issued[0]["email"] != "invoker@p.iam.gserviceaccount.com" {
		t.Errorf("issuer requests %v", issued)
	}
}

func TestRetriesCarryPreviousResponse(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, 503, 429, 200)
	s, c := start(t, faketasks.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	create(t, c, httpTask(queue+"/tasks/r", rec.srv.URL, time.Time{}))
	wait(t, s.WaitEmpty)
	ds := rec.deliveries()
	if len(ds) != 3 {
		t.Fatalf("got %d deliveries, want 3", len(ds))
	}
	for i, want := range []struct{ retry, exec, prev string }{{"0", "0", ""}, {"1", "1", "503"}, {"2", "2", "429"}} {
		h := ds[i].header
		if h.Get("X-CloudTasks-TaskRetryCount") != want.retry || h.Get("X-CloudTasks-TaskExecutionCount") != want.exec ||
			h.Get("X-CloudTasks-TaskPreviousResponse") != want.prev {
			t.Errorf("attempt %d: retry %q exec %q prev %q, want %+v", i+1, h.Get("X-CloudTasks-TaskRetryCount"),
				h.Get("X-CloudTasks-TaskExecutionCount"), h.Get("X-CloudTasks-TaskPreviousResponse"), want)
		}
	}
	// The ETA of a retry is its new schedule time.
	if ds[0].header.Get("X-CloudTasks-TaskETA") == ds[1].header.Get("X-CloudTasks-TaskETA") {
		t.Error("retry kept the first ETA")
	}
	if st := s.Stats(); st.Attempts != 3 || st.Retried != 2 || st.Dispatched != 1 || st.Failed != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestGiveUpAfterMaxAttemptsWithBackoff(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var times []time.Time
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(h.Close)
	s, c := start(t, faketasks.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, MaxAttempts: 5, PollInterval: 5 * time.Millisecond})
	create(t, c, httpTask(queue+"/tasks/bad", h.URL, time.Time{}))
	wait(t, s.WaitEmpty)
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 5 {
		t.Fatalf("%d attempts, want 5", len(times))
	}
	for i, want := range []time.Duration{20, 40, 80, 80} {
		if gap := times[i+1].Sub(times[i]); gap < want*time.Millisecond {
			t.Errorf("gap before attempt %d = %v, want >= %dms", i+2, gap, want)
		}
	}
	if st := s.Stats(); st.Failed != 1 || st.Retried != 4 || st.Dispatched != 0 {
		t.Errorf("stats = %+v", st)
	}
	if _, err := c.GetTask(t.Context(), &cloudtaskspb.GetTaskRequest{Name: queue + "/tasks/bad"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetTask after giving up: %v, want NotFound", err)
	}
}

func TestDeleteBeforeDispatch(t *testing.T) {
	t.Parallel()
	s, c, clock, rec := startOnFakeClock(t, faketasks.Options{})
	ctx := t.Context()
	name := queue + "/tasks/del"
	create(t, c, httpTask(name, rec.srv.URL, clock.Now().Add(time.Hour)))
	got, err := c.GetTask(ctx, &cloudtaskspb.GetTaskRequest{Name: name, ResponseView: cloudtaskspb.Task_FULL})
	if err != nil || string(got.GetHttpRequest().GetBody()) != `{"k":"v"}` || got.DispatchCount != 0 {
		t.Fatalf("GetTask = %v, %v", got, err)
	}
	if err := c.DeleteTask(ctx, &cloudtaskspb.DeleteTaskRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTask(ctx, &cloudtaskspb.GetTaskRequest{Name: name}); status.Code(err) != codes.NotFound {
		t.Errorf("GetTask after delete: %v", err)
	}
	if err := c.DeleteTask(ctx, &cloudtaskspb.DeleteTaskRequest{Name: name}); status.Code(err) != codes.NotFound {
		t.Errorf("second DeleteTask: %v", err)
	}
	clock.Advance(2 * time.Hour)
	wait(t, s.WaitIdle)
	time.Sleep(100 * time.Millisecond) // two poll intervals
	if n := len(rec.deliveries()); n != 0 {
		t.Errorf("deleted task dispatched %d times", n)
	}
}

func TestListTasksPaging(t *testing.T) {
	t.Parallel()
	_, c, clock, rec := startOnFakeClock(t, faketasks.Options{})
	for i := 5; i > 0; i-- {
		create(t, c, httpTask(queue+"/tasks/t"+strconv.Itoa(i), rec.srv.URL, clock.Now().Add(time.Duration(i)*time.Minute)))
	}
	it := c.ListTasks(t.Context(), &cloudtaskspb.ListTasksRequest{Parent: queue, PageSize: 2})
	var names []string
	for {
		task, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if task.GetHttpRequest().GetBody() != nil {
			t.Error("BASIC view has the body")
		}
		names = append(names, task.Name[len(queue+"/tasks/"):])
	}
	if want := []string{"t1", "t2", "t3", "t4", "t5"}; !equal(names, want) {
		t.Errorf("ListTasks = %v, want %v", names, want)
	}
	q, err := c.GetQueue(t.Context(), &cloudtaskspb.GetQueueRequest{Name: queue})
	if err != nil || q.State != cloudtaskspb.Queue_RUNNING {
		t.Errorf("GetQueue = %v, %v", q, err)
	}
}

func TestStrictQueuesAndRetryConfig(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, 500, 500, 500)
	s, c := start(t, faketasks.Options{StrictQueues: true})
	ctx := t.Context()
	if _, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: queue, Task: httpTask("", rec.srv.URL, time.Time{})}); status.Code(err) != codes.NotFound {
		t.Fatalf("CreateTask into a missing queue: %v, want NotFound", err)
	}
	_, err := c.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: "projects/p/locations/l", Queue: &cloudtaskspb.Queue{
		Name:        queue,
		RetryConfig: &cloudtaskspb.RetryConfig{MaxAttempts: 2, MinBackoff: durationpb.New(time.Millisecond), MaxBackoff: durationpb.New(time.Millisecond)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: "projects/p/locations/l", Queue: &cloudtaskspb.Queue{Name: queue}}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second CreateQueue: %v", err)
	}
	create(t, c, httpTask("", rec.srv.URL, time.Time{}))
	wait(t, s.WaitEmpty)
	if st := s.Stats(); st.Attempts != 2 || st.Failed != 1 {
		t.Errorf("queue max_attempts 2: stats = %+v", st)
	}
}

func TestDuplicateDeliveries(t *testing.T) {
	t.Parallel()
	for _, concurrent := range []bool{false, true} {
		t.Run("concurrent="+strconv.FormatBool(concurrent), func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t)
			s, c := start(t, faketasks.Options{DuplicateDeliveries: 3, DuplicateConcurrent: concurrent})
			create(t, c, httpTask(queue+"/tasks/dup", rec.srv.URL, time.Time{}))
			wait(t, s.WaitEmpty)
			ds := rec.deliveries()
			if len(ds) != 3 {
				t.Fatalf("%d deliveries, want 3", len(ds))
			}
			for _, d := range ds {
				if d.header.Get("X-CloudTasks-TaskName") != "dup" || d.header.Get("X-CloudTasks-TaskRetryCount") != "0" {
					t.Errorf("duplicate headers %v", d.header)
				}
			}
			if st := s.Stats(); st.Attempts != 1 || st.Duplicates != 2 || st.Dispatched != 1 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestMaxConcurrentAndDeadline(t *testing.T) {
	t.Parallel()
	var cur, peak atomic.Int32
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection only after the body
		if r.URL.Path == "/hang" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}))
	t.Cleanup(h.Close)
	s, c := start(t, faketasks.Options{MaxConcurrent: 2, MaxAttempts: 1})
	for range 6 {
		create(t, c, httpTask("", h.URL, time.Time{}))
	}
	hang := httpTask("", h.URL+"/hang", time.Time{})
	hang.DispatchDeadline = durationpb.New(100 * time.Millisecond)
	create(t, c, hang)
	start := time.Now()
	wait(t, s.WaitEmpty)
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v: dispatch deadline not applied?", el)
	}
	if st := s.Stats(); st.Dispatched != 6 || st.Failed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFaultDrop(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	s, c := start(t, faketasks.Options{
		MinBackoff: time.Millisecond,
		Fault: func(name string, attempt int) faketasks.Fault {
			return faketasks.Fault{Drop: attempt == 1, Delay: 10 * time.Millisecond}
		},
	})
	create(t, c, httpTask(queue+"/tasks/f", rec.srv.URL, time.Time{}))
	wait(t, s.WaitEmpty)
	ds := rec.deliveries()
	if len(ds) != 1 || ds[0].header.Get("X-CloudTasks-TaskRetryCount") != "1" || ds[0].header.Get("X-CloudTasks-TaskPreviousResponse") != "" {
		t.Fatalf("deliveries %v", ds)
	}
	if st := s.Stats(); st.Attempts != 2 || st.Retried != 1 || st.Dispatched != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTokenErrorIsRetried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	rec := newRecorder(t)
	s, c := start(t, faketasks.Options{
		MinBackoff: time.Millisecond,
		Tokens: faketasks.TokenFunc(func(ctx context.Context, email, aud string) (string, error) {
			if calls.Add(1) == 1 {
				return "", errors.New("issuer down")
			}
			return "ok", nil
		}),
	})
	task := httpTask("", rec.srv.URL, time.Time{})
	task.GetHttpRequest().AuthorizationHeader = &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{ServiceAccountEmail: "a@b"}}
	create(t, c, task)
	wait(t, s.WaitEmpty)
	if ds := rec.deliveries(); len(ds) != 1 || ds[0].header.Get("Authorization") != "Bearer ok" {
		t.Errorf("deliveries %v", ds)
	}
}

func TestNextDueAndBusy(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	release := make(chan struct{})
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(h.Close)
	rec := struct{ srv *httptest.Server }{h}
	s, c := start(t, faketasks.Options{Clock: clock})
	if _, ok := s.NextDue(); ok || s.Busy() {
		t.Fatal("empty server has a due task or is busy")
	}
	at := clock.Now().Add(time.Hour)
	create(t, c, httpTask("", rec.srv.URL, at))
	create(t, c, httpTask("", rec.srv.URL, at.Add(time.Hour)))
	if next, ok := s.NextDue(); !ok || !next.Equal(at) {
		t.Errorf("NextDue = %v, %v; want %v", next, ok, at)
	}
	if s.Busy() || s.Pending() != 2 {
		t.Errorf("Busy %v, Pending %d before the tasks are due", s.Busy(), s.Pending())
	}
	clock.Advance(time.Hour)
	if !s.Busy() {
		t.Error("not Busy with a task due")
	}
	for s.Stats().Attempts == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if !s.Busy() {
		t.Error("not Busy with a task being dispatched")
	}
	close(release)
	wait(t, s.WaitIdle)
	if s.Busy() || s.Pending() != 1 {
		t.Errorf("Busy %v, Pending %d after the first task ran", s.Busy(), s.Pending())
	}
}

// BenchmarkCreateAndDispatch measures CreateTask through the real client plus dispatch to a no-op handler.
func BenchmarkCreateAndDispatch(b *testing.B) {
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer h.Close()
	ctx := b.Context()
	s, c := start(b, faketasks.Options{})
	for b.Loop() {
		if _, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: queue, Task: httpTask("", h.URL, time.Time{})}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.WaitEmpty(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.Stats().Dispatched)/b.Elapsed().Seconds(), "tasks/s")
}

func TestPurgeAndSetDuplicateDeliveries(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	release := make(chan struct{})
	var calls atomic.Int32
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-release
			w.WriteHeader(http.StatusInternalServerError) // would be retried, but the task was purged
		}
	}))
	t.Cleanup(h.Close)
	s, c := start(t, faketasks.Options{Clock: clock, MinBackoff: time.Millisecond})
	create(t, c, httpTask("", h.URL, time.Time{}))
	create(t, c, httpTask("", h.URL, clock.Now().Add(time.Hour)))
	for s.Stats().Attempts == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Purge(); err != nil {
		t.Fatal(err)
	}
	close(release)
	wait(t, s.WaitEmpty)
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls after Purge, want 1 (no retry)", n)
	}

	s.SetDuplicateDeliveries(3)
	create(t, c, httpTask("", h.URL, time.Time{}))
	wait(t, s.WaitEmpty)
	s.SetDuplicateDeliveries(0)
	create(t, c, httpTask("", h.URL, time.Time{}))
	wait(t, s.WaitEmpty)
	if n := calls.Load(); n != 1+3+1 {
		t.Errorf("%d calls, want 5 (3 duplicated, then 1)", n)
	}
}

// TestFaultGiveUp: a task made to use up its attempts is deleted and counted failed, its handler never
// called; FaultBody sees the task's body to pick it.
func TestFaultGiveUp(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	var seen []string
	var mu sync.Mutex
	s, c := start(t, faketasks.Options{
		MaxAttempts: 50,
		FaultBody: func(name string, attempt int, body []byte) faketasks.Fault {
			mu.Lock()
			seen = append(seen, string(body))
			mu.Unlock()
			return faketasks.Fault{GiveUp: strings.HasSuffix(name, "/g")}
		},
	})
	g := httpTask(queue+"/tasks/g", rec.srv.URL, time.Time{})
	g.GetHttpRequest().Body = []byte(`{"user":"u"}`)
	create(t, c, g)
	create(t, c, httpTask(queue+"/tasks/ok", rec.srv.URL, time.Time{}))
	wait(t, s.WaitEmpty)
	if ds := rec.deliveries(); len(ds) != 1 || !strings.HasSuffix(ds[0].header.Get("X-CloudTasks-TaskName"), "ok") {
		t.Fatalf("deliveries %v, want only the task that was not given up", ds)
	}
	if st := s.Stats(); st.Failed != 1 || st.Dispatched != 1 || st.Attempts != 2 {
		t.Errorf("stats = %+v, want one given up after one attempt", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, `{"user":"u"}`) {
		t.Errorf("FaultBody saw bodies %q", seen)
	}
}
