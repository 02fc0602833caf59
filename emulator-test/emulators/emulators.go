// Package emulators starts and stops the local stand-ins of Google Cloud services for tests and the local
// stack: the gcloud Firestore and Pub/Sub emulators and fake-gcs-server (emulator-test/cmd/fakegcs), each in
// its own process group on a free loopback port.
//
// Each emulator takes about 2 s to start (see README.md): start it once per test binary, in TestMain.
package emulators

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrGcloudMissing and ErrJavaMissing are returned (wrapped) when the tools are not installed.
var (
	ErrGcloudMissing = errors.New("gcloud not found: install the Google Cloud SDK with the firestore and pubsub emulator components")
	ErrJavaMissing   = errors.New("java not found: the gcloud emulators need a Java runtime (11 or later) on PATH")
)

// ErrLocked is returned (wrapped) by Clear when the Firestore emulator answers 409 "Transaction lock
// timeout": a transaction holds locks on documents to delete. One whose process was killed holds them
// until the emulator expires it, so the caller may wait and try again.
var ErrLocked = errors.New("documents locked by an open transaction")

// Options configure an emulator. The zero value is usable.
type Options struct {
	// Port to listen on at 127.0.0.1 (0: a free port).
	Port int
	// StartTimeout bounds the wait until the emulator answers (default 90 s: the machine may be busy).
	StartTimeout time.Duration
	// Output receives a copy of the emulator's output (default: only the last lines are kept, for errors).
	Output io.Writer
	// Gcloud is the gcloud command (default: "gcloud" on PATH).
	Gcloud string
	// DataDir is the Pub/Sub emulator's --data-dir (default: a new temporary directory, removed by Stop, so
	// that emulators of parallel runs do not share gcloud's config directory).
	DataDir string
	// FakeGCSBinary is a prebuilt emulator-test/cmd/fakegcs (default: built once per process with go build).
	FakeGCSBinary string
	// KeepData (Firestore): RestartKeepingData exports the emulator's data, restarts it and imports the
	// data (--import-data), as a restart of the real service keeps it.
	KeepData bool
}

func (o *Options) setDefaults() {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 90 * time.Second
	}
	if o.Gcloud == "" {
		o.Gcloud = "gcloud"
	}
}

// Emulator is one running emulator process group.
type Emulator struct {
	name    string // firestore, pubsub, fakegcs
	envName string
	opts    Options
	argv    func(port int) []string // the command for a port
	ready   func(ctx context.Context, host string) error
	port    int
	tmpDir  string // removed by Stop
	// importData is the export metadata file the next start imports (RestartKeepingData).
	importData string

	mu      sync.Mutex
	cmd     *exec.Cmd
	pgid    int
	out     *tail
	exited  chan struct{} // closed when the group leader has exited
	waitErr error
	started time.Time
	readyIn time.Duration
}

// Host is 127.0.0.1:PORT.
func (e *Emulator) Host() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port)) }

// URL is http://127.0.0.1:PORT.
func (e *Emulator) URL() string { return "http://" + e.Host() }

// EnvName is the variable the Go client libraries read: FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST or
// STORAGE_EMULATOR_HOST.
func (e *Emulator) EnvName() string { return e.envName }

// Env is "EnvName=Host", ready for exec.Cmd.Env.
func (e *Emulator) Env() string { return e.envName + "=" + e.Host() }

// StartupTime is how long the last start took until the emulator answered.
func (e *Emulator) StartupTime() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.readyIn
}

// PGID is the process group of the running emulator (0 once stopped).
func (e *Emulator) PGID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pgid
}

// Output returns the last lines the emulator printed.
func (e *Emulator) Output() string {
	e.mu.Lock()
	out := e.out
	e.mu.Unlock()
	return out.String()
}

// httpClient is for readiness probes and admin calls.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// FreePort asks the kernel for a free loopback port (the stack's function processes take theirs here
// too). Another process may take it before it is bound; start retries with a new port when the emulator
// exits early.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newEmulator is an emulator not started yet, on opts.Port (0: one chosen at start); the caller sets argv.
func newEmulator(name, envName string, opts Options, ready func(ctx context.Context, host string) error) *Emulator {
	return &Emulator{name: name, envName: envName, opts: opts, port: opts.Port, ready: ready}
}

// launch starts a new emulator; if it does not get ready, nothing of it is left (process group, temporary
// directory).
func (e *Emulator) launch(ctx context.Context) (*Emulator, error) {
	if err := e.start(ctx); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

// start runs the emulator and waits until it is ready. With a port chosen here, it retries twice with new
// ports if the emulator exits early (the port was taken meanwhile).
func (e *Emulator) start(ctx context.Context) error {
	choose := e.opts.Port == 0 && e.port == 0
	for try := 0; ; try++ {
		if e.port == 0 {
			p, err := FreePort()
			if err != nil {
				return fmt.Errorf("%s emulator: pick a port: %w", e.name, err)
			}
			e.port = p
		}
		err := e.startOnce(ctx)
		if err == nil || !choose || try == 2 || !errors.Is(err, errExitedEarly) || ctx.Err() != nil {
			return err
		}
		e.port = 0
	}
}

var errExitedEarly = errors.New("exited before it was ready")

func (e *Emulator) startOnce(ctx context.Context) error {
	argv := e.argv(e.port)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Stop kills the group: gcloud, its shell, the JVM
	cmd.Env = append(os.Environ(), "CLOUDSDK_CORE_DISABLE_PROMPTS=1")
	out := newTail(60)
	var w io.Writer = out
	if e.opts.Output != nil {
		w = io.MultiWriter(out, e.opts.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s emulator: start %s: %w", e.name, argv[0], err)
	}
	exited := make(chan struct{})
	e.mu.Lock()
	e.cmd, e.pgid, e.out, e.exited, e.waitErr, e.started = cmd, cmd.Process.Pid, out, exited, nil, begin
	e.mu.Unlock()
	go func() {
		err := cmd.Wait()
		e.mu.Lock()
		e.waitErr = err
		e.mu.Unlock()
		close(exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, e.opts.StartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = e.ready(ctx, e.Host()); last == nil {
			e.mu.Lock()
			e.readyIn = time.Since(begin)
			e.mu.Unlock()
			return nil
		}
		select {
		case <-exited:
			e.mu.Lock()
			werr := e.waitErr
			e.mu.Unlock()
			_ = e.Stop() // the JVM may outlive the gcloud wrapper
			return fmt.Errorf("%s emulator on %s %w (%v); last output:\n%s", e.name, e.Host(), errExitedEarly, werr, out.String())
		case <-ctx.Done():
			_ = e.Stop()
			return fmt.Errorf("%s emulator on %s not ready after %v (last probe: %v); last output:\n%s",
				e.name, e.Host(), time.Since(begin).Round(time.Millisecond), last, out.String())
		case <-tick.C:
		}
	}
}

// Stop kills the emulator's process group (SIGTERM, then SIGKILL after 5 s) and checks that no process of it
// is left. It is safe to call twice.
func (e *Emulator) Stop() error {
	e.mu.Lock()
	pgid, exited := e.pgid, e.exited
	e.pgid = 0
	e.mu.Unlock()
	if pgid == 0 {
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	if !waitGone(pgid, exited, 5*time.Second) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if !waitGone(pgid, exited, 5*time.Second) {
			return fmt.Errorf("%s emulator: process group %d still alive after SIGKILL: %v", e.name, pgid, groupMembers(pgid))
		}
	}
	return nil
}

// Close stops the emulator and removes its temporary directory.
func (e *Emulator) Close() error {
	err := e.Stop()
	if e.tmpDir != "" {
		_ = os.RemoveAll(e.tmpDir)
	}
	return err
}

// Restart stops the emulator and starts it again on the same port (all its data is lost).
func (e *Emulator) Restart(ctx context.Context) error {
	if err := e.Stop(); err != nil {
		return err
	}
	return e.start(ctx)
}

// Running reports whether any process of the emulator's group is alive.
func (e *Emulator) Running() bool {
	pgid := e.PGID()
	return pgid != 0 && len(groupMembers(pgid)) > 0
}

// RSS is the resident memory of the emulator's process group, in bytes (Linux only).
func (e *Emulator) RSS() (int64, error) {
	pgid := e.PGID()
	if pgid == 0 {
		return 0, errors.New("not running")
	}
	var total int64
	for _, pid := range groupMembers(pgid) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue // exited meanwhile
		}
		for line := range strings.Lines(string(data)) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total += kb * 1024
			}
		}
	}
	return total, nil
}

// waitGone waits until the group leader has been reaped and no process of the group is alive.
func waitGone(pgid int, exited <-chan struct{}, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			if len(groupMembers(pgid)) == 0 {
				return true
			}
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// groupMembers lists the live (not zombie) processes of a process group, from /proc. Without /proc it
// falls back to kill(-pgid, 0), which also counts zombies.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		if syscall.Kill(-pgid, 0) == nil {
			return []int{-pgid}
		}
		return nil
	}
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// probeOk is the readiness check of both gcloud emulators: GET / answers "Ok".
func probeOk(ctx context.Context, host string) error {
	status, body, err := get(ctx, host, "/")
	if err != nil {
		return err
	}
	if status != http.StatusOK || strings.TrimSpace(string(body)) != "Ok" {
		return fmt.Errorf("GET / = %d %q", status, body)
	}
	return nil
}

// adminCall is a readiness probe that proves the API is served: GET path (what it does) answers 200.
func adminCall(ctx context.Context, host, what, path string) error {
	status, _, err := get(ctx, host, path)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", what, status)
	}
	return nil
}

// get is one readiness probe: GET http://host+path, its status and the first KiB of its body (the rest is
// drained, so the connection can be reused).
func get(ctx context.Context, host, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, body, nil
}

// tail keeps the last n lines written to it.
type tail struct {
	mu    sync.Mutex
	n     int
	lines []string
	part  []byte
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.part[:i]))
		t.part = t.part[i+1:]
		if len(t.lines) > t.n {
			t.lines = t.lines[len(t.lines)-t.n:]
		}
	}
	if len(t.part) > 4096 {
		t.part = t.part[len(t.part)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.Join(t.lines, "\n")
	if len(t.part) > 0 {
		s += "\n" + string(t.part)
	}
	return s
}
