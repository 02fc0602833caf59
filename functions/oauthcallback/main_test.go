package oauthcallback

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/portability-pipeline/pipeline/shared/crypto"
)

const testProject = "oauthcallback-test"

// Shared by every test: one Firestore emulator, its client, and one local Tink keyset. Tests use their own
// user IDs, so they run in parallel without clearing the database.
var (
	fsClient *firestore.Client
	keyset   crypto.Encrypter
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	ctx := context.Background()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		stop, err := startFirestore(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "oauthcallback tests need the Firestore emulator:", err)
			return 1
		}
		defer stop()
	}
	var err error
	if fsClient, err = firestore.NewClient(ctx, testProject); err != nil {
		fmt.Fprintln(os.Stderr, "firestore client:", err)
		return 1
	}
	defer fsClient.Close()
	ks, err := crypto.GenerateLocalKeyset()
	if err == nil {
		keyset, err = crypto.NewLocalKeyset(ks)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyset:", err)
		return 1
	}
	return m.Run()
}

// startFirestore runs `gcloud beta emulators firestore start` on a free port in its own process group and
// sets FIRESTORE_EMULATOR_HOST; stop kills the group (gcloud wraps a JVM that would be orphaned).
func startFirestore(ctx context.Context) (stop func(), err error) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return nil, fmt.Errorf("gcloud not found in PATH (install the Google Cloud SDK with the cloud-firestore-emulator component)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(gcloud, "beta", "emulators", "firestore", "start", "--host-port="+addr, "--quiet")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gcloud: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.TrimSpace(string(b)) == "Ok" {
				break
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("emulator exited: %s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("emulator not ready after 60s: %s", out.String())
		}
	}
	os.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	return stop, nil
}

// syncBuffer is a bytes buffer safe for concurrent writers (process output, logs).
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
