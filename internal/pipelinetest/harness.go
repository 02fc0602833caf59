// Package pipelinetest runs the pipeline's steps in-process for tests: real Firestore (the emulator),
// the Data Portability fake, fake-gcs-server without a listener, and a Bus standing in for Pub/Sub and
// Cloud Tasks that delivers every message (optionally several times, out of order) to its step. A Harness
// is the in-process driver of emulator-test/scenario, whose checks (exports, leftovers, events) it uses.
package pipelinetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/sethvargo/go-envconfig"
	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline"
	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/functions/reconcile"
	"github.com/portability-pipeline/pipeline/internal/logbuffer"
	"github.com/portability-pipeline/pipeline/shared/config"
	"github.com/portability-pipeline/pipeline/shared/crypto"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tokens"
)

// Bucket is the archive bucket of every harness.
const Bucket = "archives"

// Task URLs (never dialled: the harness delivers tasks itself).
const (
	PollURL     = "http://poll.invalid/"
	InitiateURL = "http://initiate.invalid/"
)

// Options shape a harness.
type Options struct {
	Fake fakeportability.Options
	// Deliveries is how many times each message and task is delivered (default 1).
	Deliveries int
	// Env overrides configuration variables (PART_SIZE, TIME_BASED_HORIZON...).
	Env map[string]string
}

// Harness is one isolated pipeline: its own Firestore project, fake, bucket and bus.
type Harness struct {
	T       testing.TB
	Ctx     context.Context
	Env     *setup.Env
	Fake    *fakeportability.Server
	FakeURL string
	Bus     *Bus
	GCS     *fakestorage.Server
	Logs    *logbuffer.Buffer
	// BeforeDeliver, when set, sees each delivery first (tests inject faults at a chosen moment).
	BeforeDeliver func(d *Delivery)
	// Lose, when set, is asked about each delivery before it is made: true loses it for good (a message
	// dead-lettered and never replayed, a task deleted or out of attempts); only the reconciler heals it.
	Lose func(d *Delivery) bool
	opts Options
	// steps are the routing table's message steps, by the topic or task URL that reaches them.
	steps map[string]func(ctx context.Context, body []byte) error
}

var projectSeq struct {
	sync.Mutex
	n int
}

var unsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// New builds a harness. FIRESTORE_EMULATOR_HOST must be set (see StartFirestore in TestMain).
func New(t testing.TB, opts Options) *Harness {
	t.Helper()
	if opts.Deliveries < 1 {
		opts.Deliveries = 1
	}
	ctx := context.Background()
	projectSeq.Lock()
	projectSeq.n++
	// Unique per run too: the emulator keeps data between test runs.
	project := fmt.Sprintf("t%x%d-%s", rand.Uint32(), projectSeq.n, unsafe.ReplaceAllString(strings.ToLower(t.Name()), "-"))
	projectSeq.Unlock()
	if len(project) > 30 {
		project = project[:30]
	}
	project = strings.TrimRight(project, "-")

	fake := fakeportability.New(opts.Fake)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)

	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: Bucket})

	enc, keyset, err := crypto.GenerateLocal()
	if err != nil {
		t.Fatal(err)
	}
	vars := scenario.Env(project, Bucket, srv.URL, keyset)
	for k, v := range map[string]string{
		"POLL_TASK_URL":     PollURL,
		"INITIATE_TASK_URL": InitiateURL,
		"PUBLIC_URL":        "http://pipeline.invalid",
		"PART_SIZE":         "1048576",
		"INITIATE_LEASE":    "1m",
	} {
		vars[k] = v
	}
	for k, v := range opts.Env {
		vars[k] = v
	}
	cfg, err := config.LoadFrom(ctx, envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	logs := &logbuffer.Buffer{}
	bus := newBus()
	ts := tokens.NewStore(fs, enc, setup.OAuthConfig(cfg))
	env := &setup.Env{
		Config: cfg, Log: logging.New(logs, "DEBUG"), Store: store.New(fs), Tokens: ts, Crypto: enc,
		Publisher: bus, Tasks: bus, Storage: gcs.Client(), API: setup.APIWithTokens(cfg.PortabilityEndpoint, ts),
	}
	steps := map[string]func(context.Context, []byte) error{}
	for _, r := range pipeline.Routes {
		if r.Trigger != pipeline.PubSub && r.Trigger != pipeline.Task {
			continue
		}
		fn, err := r.Deliver(env)
		if err != nil {
			t.Fatalf("%s: %v", r.Entry, err)
		}
		steps[r.Name(cfg)] = fn
	}
	return &Harness{T: t, Ctx: ctx, Env: env, Fake: fake, FakeURL: srv.URL, Bus: bus, GCS: gcs, Logs: logs, opts: opts, steps: steps}
}

// Consent grants resources to user at the fake (as the consent page would), stores the token, records the
// grant and its first round and publishes the initiate request: what the oauthcallback step does.
func (h *Harness) Consent(user string, resources []string, access string) string {
	h.T.Helper()
	return h.ConsentPartial(user, resources, resources, access)
}

// ConsentPartial is Consent where the person ticked only granted of the asked resources, and the
// pipeline records every asked one (the 403 of an initiate marks the others not granted).
func (h *Harness) ConsentPartial(user string, asked, granted []string, access string) string {
	h.T.Helper()
	return h.consent(user, asked, granted, access, time.Time{})
}

// ConsentSince is Consent from a start link with a signed since: round 1 starts there.
func (h *Harness) ConsentSince(user string, resources []string, access string, since time.Time) string {
	h.T.Helper()
	return h.consent(user, resources, resources, access, since)
}

func (h *Harness) consent(user string, asked, granted []string, access string, since time.Time) string {
	h.T.Helper()
	resources := asked
	tok, err := h.Fake.Grant(fakeportability.GrantRequest{User: user, Resources: granted, Access: access})
	if err != nil {
		h.T.Fatalf("grant: %v", err)
	}
	t := &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: "Bearer",
		Expiry: time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)}
	if err := h.Env.Tokens.Save(h.Ctx, user, t); err != nil {
		h.T.Fatal(err)
	}
	kind := store.AccessOneTime
	if strings.HasPrefix(access, "time-based") {
		kind = store.AccessTimeBased
	}
	r, err := h.Env.Store.StartGrant(h.Ctx, store.NewGrant{User: user, Access: kind, Granted: resources, Since: since})
	if err != nil {
		h.T.Fatal(err)
	}
	if err := h.Bus.Publish(h.Ctx, h.Env.Config.Topics.Initiate, &messages.InitiateRequest{V: messages.Version, User: user, Round: r.ID}); err != nil {
		h.T.Fatal(err)
	}
	return r.ID
}

// API returns the Data Portability client acting as user with the stored token (tests call it directly).
func (h *Harness) API(user string) portability.API {
	h.T.Helper()
	api, err := h.Env.API(h.Ctx, user)
	if err != nil {
		h.T.Fatal(err)
	}
	return api
}

// Stats counts deliveries of a Run.
type Stats struct {
	// Lost counts deliveries Lose discarded.
	Lost       int
	Deliveries int
	Copies     int
	Failures   int
	Tasks      int
}

// Run delivers messages and tasks until nothing is pending; a task due later advances the fake's clock
// first. Each delivery happens opts.Deliveries times (the extra copies go to the back of the queue, so
// they arrive out of order). It fails the test after maxSteps deliveries or when a message keeps failing.
func (h *Harness) Run(maxSteps int) Stats {
	h.T.Helper()
	st, busy := h.RunUpTo(maxSteps)
	if busy {
		h.T.Fatalf("pipeline still busy after %d deliveries (%d pending)", maxSteps, h.Bus.Pending())
	}
	return st
}

// RunUpTo is Run that returns, instead of failing the test, when maxSteps deliveries leave work pending
// (busy): a test of a job that never ends looks at what the polling did meanwhile.
func (h *Harness) RunUpTo(maxSteps int) (st Stats, busy bool) {
	h.T.Helper()
	for st.Deliveries < maxSteps {
		d := h.Bus.next()
		if d == nil {
			return st, false
		}
		if d.Task != nil {
			if wait := virtualDelay(d.Task.At, h.Fake.Clock().Now(), time.Now()); wait > 0 {
				h.Fake.Clock().Advance(wait)
			}
			st.Tasks++
		}
		if h.Lose != nil && !d.Copy && d.Tries == 0 && h.Lose(d) {
			st.Lost++
			continue
		}
		if h.BeforeDeliver != nil {
			h.BeforeDeliver(d)
		}
		st.Deliveries++
		if d.Copy {
			st.Copies++
		}
		if err := h.deliver(d); err != nil {
			st.Failures++
			d.Tries++
			if d.Tries > 20 {
				h.T.Fatalf("delivery keeps failing after %d tries: %v\nlogs:\n%s", d.Tries, err, h.Logs.String())
			}
			h.Bus.requeue(d)
			continue
		}
		// Duplicates of a delivered message arrive later, behind what is pending.
		for i := 1; i < h.opts.Deliveries && !d.Copy; i++ {
			dup := *d
			dup.Copy, dup.Tries = true, 0
			h.Bus.requeue(&dup)
		}
	}
	return st, true
}

// Reconcile runs the reconciler once with its clock at now (a test moves it past the deadlines) and
// returns its report; what it republishes waits on the bus for the next Run.
func (h *Harness) Reconcile(now time.Time) reconcile.Report {
	h.T.Helper()
	rec, err := reconcile.New(h.Env, reconcile.Options{Now: func() time.Time { return now }})
	if err != nil {
		h.T.Fatal(err)
	}
	rep, err := rec.Run(logging.WithLogger(h.Ctx, h.Env.Log.With("step", "reconcile")))
	if err != nil {
		h.T.Fatalf("reconcile: %v\nlogs:\n%s", err, h.Logs.String())
	}
	return rep
}

// Later is a time past every deadline of duration d: both clocks (the fake's, which the bus advances,
// and the real one) plus d.
func (h *Harness) Later(d time.Duration) time.Time {
	now := time.Now()
	if f := h.Fake.Clock().Now(); f.After(now) {
		now = f
	}
	return now.Add(d)
}

// deliver hands one message or task to its step, as the functions framework would; a dropped message is
// delivered (acknowledged).
func (h *Harness) deliver(d *Delivery) error {
	body, err := d.Body()
	if err != nil {
		h.T.Fatalf("task body: %v", err)
	}
	err = h.Step(d.At())(logging.WithLogger(h.Ctx, h.Env.Log), body)
	if errors.Is(err, handler.ErrDrop) {
		return nil
	}
	return err
}

// Step is the step the routing table names for a topic or task URL, built for this harness. It returns
// what the step returns, a dropped message's handler.ErrDrop too (a test hands it a message of its own).
func (h *Harness) Step(at string) func(ctx context.Context, body []byte) error {
	step, ok := h.steps[at]
	if !ok {
		h.T.Fatalf("no step for %q", at)
	}
	return step
}
