// Package stack runs the whole pipeline locally on free loopback ports: the gcloud Firestore and Pub/Sub
// emulators, fake-gcs-server (own process), the Cloud Tasks stand-in and the Data Portability fake (in
// this process, so tests steer their clocks and faults), and the seven functions, each in its own process
// served by the functions framework as Cloud Functions serves it, wired by push subscriptions with
// dead-letter topics exactly as the Terraform module wires them. A Stack is the process driver of
// emulator-test/scenario: the suites (e2e, browser, faults) check it with the scenario package's checks.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/portability-pipeline/pipeline/emulator-test/emulators"
	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/faketasks"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/shared/crypto"
)

// Options shape a stack.
type Options struct {
	// Project is the Google Cloud project the emulators pretend to be (default demo-portability).
	Project string
	// Fake configures the Data Portability fake.
	Fake fakeportability.Options
	// Tasks configures the Cloud Tasks stand-in (Clock and Tokens are set by the stack).
	Tasks faketasks.Options
	// Env adds or overrides function environment variables (POLL_LADDER, PART_SIZE...).
	Env map[string]string
	// Dir holds logs and binaries (default: a new temporary directory, removed by Stop unless Keep).
	Dir  string
	Keep bool
	// ReconcileEvery is the period of the stand-in for Cloud Scheduler that calls Reconcile (default 10 s;
	// negative: no scheduled runs, Reconcile still runs one on demand).
	ReconcileEvery time.Duration
	// Log receives the stack's own progress lines (default: discard).
	Log *slog.Logger
}

// Stack is a running local pipeline.
type Stack struct {
	Project   string
	Firestore *emulators.Emulator
	PubSub    *emulators.Emulator
	GCS       *emulators.Emulator
	Tasks     *faketasks.Server
	Fake      *fakeportability.Server
	FakeURL   string
	Functions map[string]*Function
	Bucket    string
	// StartLinkKey is the secret of the one link key, ID LinkKeyID (START_LINK_KEY = LinkKeyID:secret).
	StartLinkKey []byte
	Dir          string

	// Clients on the emulators, for tests and the devstack's verification.
	FirestoreClient *firestore.Client
	PubSubClient    *pubsub.Client
	StorageClient   *storage.Client

	fakeServer   *http.Server
	functionVars []string
	opts         Options
	stops        []func()
	pushCopies   atomic.Int32
	proxies      []*pushProxy
	events       eventLog
	pushURL      map[string]string // entry point -> its push proxy
	scheduler    *scheduler
	losses       lossBook
	gcsProxy     *gcsProxy  // the functions' way to fake-gcs-server, with faults
	turn         sync.Mutex // held by the test that has the stack (Take)
}

// DeliverTwice makes every Pub/Sub push and every Cloud Task reach its function twice (on) or once.
func (s *Stack) DeliverTwice(on bool) {
	n := 1
	if on {
		n = 2
	}
	s.DeliverN(n)
}

// DeliverN makes every Pub/Sub push and every Cloud Task reach its function n times (n >= 1): the
// copies of a push arrive a little later, out of order with the pushes that follow.
func (s *Stack) DeliverN(n int) {
	n = max(n, 1)
	s.pushCopies.Store(int32(n))
	s.Tasks.SetDuplicateDeliveries(n)
}

// DuplicatePushes counts the extra Pub/Sub pushes sent so far.
func (s *Stack) DuplicatePushes() int64 {
	var n int64
	for _, p := range s.proxies {
		n += p.Extra.Load()
	}
	return n
}

// PushesInFlight counts the Pub/Sub pushes (copies included) a function is handling now.
func (s *Stack) PushesInFlight() int64 {
	var n int64
	for _, p := range s.proxies {
		n += p.InFlight.Load()
	}
	return n
}

// Defaults for a local run: short poll ladder, small parts so archives are split.
var defaultEnv = map[string]string{
	"POLL_LADDER":    "1s,2s,4s",
	"PART_SIZE":      "4194304",
	"INITIATE_LEASE": "30s",
	"LOG_LEVEL":      "INFO",
	// Past a Pub/Sub redelivery (backoff up to 10 s, 10 attempts) before a lost hand-off is re-driven.
	"RECONCILE_GRACE":  "45s",
	"RECONCILE_BUDGET": "30s",
}

// Start brings the whole stack up; Stop takes it down (also after a failed Start).
func Start(ctx context.Context, opts Options) (s *Stack, err error) {
	if opts.Project == "" {
		opts.Project = "demo-portability"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s = &Stack{Project: opts.Project, Bucket: "portability-archives", opts: opts, Functions: map[string]*Function{}}
	defer func() {
		if err != nil {
			s.Stop()
			s = nil
		}
	}()
	if s.Dir = opts.Dir; s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "portability-stack-"); err != nil {
			return s, err
		}
		if !opts.Keep {
			s.stops = append(s.stops, func() { os.RemoveAll(s.Dir) })
		}
	} else if err = os.MkdirAll(s.Dir, 0o755); err != nil {
		return s, err
	}

	// The functions' binary builds while the emulators start.
	type built struct {
		bin string
		err error
	}
	binc := make(chan built, 1)
	go func() { b, err := buildFunctions(ctx, s.Dir); binc <- built{b, err} }()

	errc := make(chan error, 3)
	go func() {
		var e error
		s.Firestore, e = emulators.StartFirestore(ctx, emulators.Options{KeepData: true}) // RestartFirestore
		errc <- wrap("firestore emulator", e)
	}()
	go func() {
		var e error
		s.PubSub, e = emulators.StartPubSub(ctx, emulators.Options{})
		errc <- wrap("pubsub emulator", e)
	}()
	go func() {
		var e error
		s.GCS, e = emulators.StartFakeGCS(ctx, emulators.Options{})
		errc <- wrap("storage emulator", e)
	}()
	var errs []error
	for range 3 {
		errs = append(errs, <-errc)
	}
	for _, e := range []*emulators.Emulator{s.Firestore, s.PubSub, s.GCS} {
		if e != nil {
			s.stops = append(s.stops, func() { e.Close() })
		}
	}
	if err = errors.Join(errs...); err != nil {
		<-binc
		return s, err
	}
	opts.Log.Info("emulators up", "firestore", s.Firestore.Host(), "pubsub", s.PubSub.Host(), "storage", s.GCS.Host())
	if s.gcsProxy, err = startGCSProxy(s.GCS.URL()); err != nil {
		return s, fmt.Errorf("storage fault proxy: %w", err)
	}
	s.stops = append(s.stops, s.gcsProxy.Close)

	// The Data Portability fake, in this process.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return s, err
	}
	s.FakeURL = "http://" + lis.Addr().String()
	fopts := opts.Fake
	fopts.BaseURL = s.FakeURL
	s.Fake = fakeportability.New(fopts)
	s.fakeServer = &http.Server{Handler: s.Fake.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.fakeServer.Serve(lis)
	s.stops = append(s.stops, func() { s.fakeServer.Close() })

	// Cloud Tasks, dispatching by the fake's clock with OIDC tokens from the fake's issuer.
	topts := opts.Tasks
	topts.Clock = s.Fake.Clock()
	topts.Tokens = faketasks.IssuerTokens(s.FakeURL, nil)
	topts.FaultBody, topts.Fault = s.taskFault(topts.Fault), nil
	if s.Tasks, err = faketasks.Start(ctx, "127.0.0.1:0", topts); err != nil {
		return s, fmt.Errorf("cloud tasks stand-in: %w", err)
	}
	s.stops = append(s.stops, func() { s.Tasks.Close() })

	b := <-binc
	if b.err != nil {
		return s, b.err
	}
	env, err := s.functionEnv()
	if err != nil {
		return s, err
	}
	// The push proxies take their ports before the functions' ports are chosen: freePort releases the port
	// it found, and a proxy listening afterwards could otherwise be given the same one.
	s.pushCopies.Store(1)
	proxyOf := map[string]*pushProxy{}
	for _, r := range Routes {
		p, err := startPushProxy("", &s.pushCopies)
		if err != nil {
			return s, err
		}
		entry, topic := r.Entry, r.Topic
		p.intercept = func(w http.ResponseWriter, body []byte) bool { return s.interceptPush(entry, topic, w, body) }
		s.proxies = append(s.proxies, p)
		s.stops = append(s.stops, p.Close)
		proxyOf[r.Entry] = p
	}
	for _, entry := range Entries {
		port, err := emulators.FreePort()
		if err != nil {
			return s, err
		}
		s.Functions[entry] = &Function{Entry: entry, Port: port, Log: filepath.Join(s.Dir, entry+".log"), bin: b.bin}
	}
	env = append(env, routeURLs(func(entry string) string { return s.Functions[entry].URL() })...)
	env = append(env, "RECONCILE_INVOKER_EMAIL="+s.reconcileInvoker())
	for _, f := range s.Functions {
		f.env = env
	}
	s.functionVars = env

	if err := s.clients(ctx); err != nil {
		return s, err
	}
	if err := s.StorageClient.Bucket(s.Bucket).Create(ctx, s.Project, nil); err != nil {
		return s, fmt.Errorf("create bucket: %w", err)
	}
	// Each push subscription reaches its function through its proxy, which can repeat pushes.
	pushURL := map[string]string{}
	s.pushURL = pushURL
	for entry, p := range proxyOf {
		p.target.Store(s.Functions[entry].URL()) // before any subscription exists, so before any push
		pushURL[entry] = p.url
	}
	if err := createTopology(ctx, s.PubSubClient, s.Project, func(entry string) string { return pushURL[entry] }, false); err != nil {
		return s, err
	}
	for _, f := range s.Functions {
		if err := f.Start(ctx); err != nil {
			return s, err
		}
		s.stops = append(s.stops, f.Stop)
	}
	every := opts.ReconcileEvery
	if every == 0 {
		every = 10 * time.Second
	}
	if every < 0 {
		every = 1000 * time.Hour // on demand only (Reconcile)
	}
	s.startScheduler(every)
	opts.Log.Info("functions up", "callback", s.Functions["OAuthCallback"].URL())
	return s, nil
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// functionEnv is the environment every function process gets: the emulators, the fakes, and the
// pipeline's configuration, overridden by Options.Env.
func (s *Stack) functionEnv() ([]string, error) {
	keyset, err := crypto.GenerateLocalKeyset()
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	s.StartLinkKey = []byte(hex.EncodeToString(key))
	vars := scenario.Env(s.Project, s.Bucket, s.FakeURL, keyset)
	for k, v := range map[string]string{
		"FIRESTORE_EMULATOR_HOST": s.Firestore.Host(),
		"PUBSUB_EMULATOR_HOST":    s.PubSub.Host(),
		"STORAGE_EMULATOR_HOST":   s.gcsProxy.Host(), // through the fault proxy (gcsfaults.go)
		"TASKS_ENDPOINT":          s.Tasks.Addr(),
		"OIDC_ISSUER":             s.FakeURL,
		"START_LINK_KEY":          LinkKeyID + ":" + string(s.StartLinkKey),
		"PATH":                    os.Getenv("PATH"),
		"HOME":                    os.Getenv("HOME"),
	} {
		vars[k] = v
	}
	for k, v := range defaultEnv {
		vars[k] = v
	}
	for k, v := range s.opts.Env {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out, nil
}

// clients opens Firestore, Pub/Sub and Storage clients on the emulators.
func (s *Stack) clients(ctx context.Context) error {
	os.Setenv("FIRESTORE_EMULATOR_HOST", s.Firestore.Host())
	os.Setenv("PUBSUB_EMULATOR_HOST", s.PubSub.Host())
	os.Setenv("STORAGE_EMULATOR_HOST", s.GCS.Host())
	var err error
	if s.FirestoreClient, err = firestore.NewClient(ctx, s.Project); err != nil {
		return err
	}
	s.stops = append(s.stops, func() { s.FirestoreClient.Close() })
	if s.PubSubClient, err = pubsub.NewClient(ctx, s.Project); err != nil {
		return err
	}
	s.stops = append(s.stops, func() { s.PubSubClient.Close() })
	if s.StorageClient, err = storage.NewClient(ctx, option.WithoutAuthentication(), storage.WithJSONReads()); err != nil {
		return err
	}
	s.stops = append(s.stops, func() { s.StorageClient.Close() })
	return nil
}

// Stop takes everything down, newest first.
func (s *Stack) Stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

// FunctionEnv returns the environment the functions run with (NAME=value each, PATH and HOME left out):
// with it, tools built on setup.New (cmd/portctl) act on this stack as the functions do.
func (s *Stack) FunctionEnv() []string {
	out := make([]string, 0, len(s.functionVars))
	for _, kv := range s.functionVars {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	sort.Strings(out)
	return out
}

// Logs returns the concatenated log lines of every function (the secrets scan reads them).
func (s *Stack) Logs() (string, error) {
	var b strings.Builder
	for _, entry := range Entries {
		data, err := os.ReadFile(s.Functions[entry].Log)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		b.Write(data)
	}
	return b.String(), nil
}

// LastLogLines returns the last n lines of Logs (what a failing test shows), or the error reading them.
func (s *Stack) LastLogLines(n int) string {
	logs, err := s.Logs()
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
