package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/portability-pipeline/pipeline"
)

// Entries are the entry points of the routing table (pipeline.Routes) the stack runs, each in a process
// of its own, as deployed: all but the webhook's (the stack keeps the events in a pull subscription for
// Events instead).
var Entries = func() []string {
	var out []string
	for _, r := range pipeline.Routes {
		if r.Trigger != pipeline.Events {
			out = append(out, r.Entry)
		}
	}
	return out
}()

// routeURLs are the variables that tell the functions where the stack's entry points listen: the URL of
// each Cloud Tasks, Scheduler and browser route, as Terraform sets them.
func routeURLs(url func(entry string) string) []string {
	var out []string
	for _, r := range pipeline.Routes {
		switch r.Trigger {
		case pipeline.Task, pipeline.Scheduler:
			out = append(out, r.Var+"="+url(r.Entry)+"/")
		case pipeline.Browser:
			out = append(out, r.Var+"="+url(r.Entry))
		}
	}
	return out
}

// Function is one entry point served by its own process.
type Function struct {
	Entry string
	Port  int
	// Log is the file its JSON log lines go to.
	Log string

	bin    string
	env    []string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// URL is where the function is reached.
func (f *Function) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", f.Port) }

// buildFunctions compiles emulator-test/cmd/functions once into dir.
func buildFunctions(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "functions")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./emulator-test/cmd/functions")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the functions: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run inside the portability-pipeline module")
	}
	return filepath.Dir(gomod), nil
}

// Start runs the function's process and waits until it accepts connections.
func (f *Function) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	logf, err := os.OpenFile(f.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(f.bin)
	cmd.Env = append(f.env, "FUNCTION_TARGET="+f.Entry, fmt.Sprintf("PORT=%d", f.Port))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", f.Entry, err)
	}
	f.cmd, f.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); logf.Close(); close(exited) }(f.exited)
	return waitPort(ctx, f.Port, 30*time.Second)
}

// Kill stops the process at once (SIGKILL), as a crashed instance would stop.
func (f *Function) Kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cmd != nil && f.cmd.Process != nil {
		syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
		f.cmd = nil
	}
}

// Stop ends the process gracefully, then kills it after a grace period.
func (f *Function) Stop() {
	f.mu.Lock()
	cmd, exited := f.cmd, f.exited
	f.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
	}
	f.Kill()
}

func waitPort(ctx context.Context, port int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s", addr, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
