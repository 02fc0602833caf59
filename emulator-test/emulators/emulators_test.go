package emulators_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/portability-pipeline/pipeline/emulator-test/emulators"
)

const project = "emulators-test"

// The emulators are shared by the tests of this binary (about 2 s to start each).
var (
	fs, ps, gcs *emulators.Emulator
	startErr    error // why they are missing: each test fails with it
)

func TestMain(m *testing.M) {
	ctx := context.Background()
	startErr = startAll(ctx)
	code := m.Run()
	for _, e := range []*emulators.Emulator{fs, ps, gcs} {
		if e == nil {
			continue
		}
		pgid := e.PGID()
		if err := e.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stop emulator:", err)
			code = 1
		}
		if e.Running() || pgid == 0 {
			fmt.Fprintf(os.Stderr, "%s: process group %d left behind\n", e.EnvName(), pgid)
			code = 1
		}
	}
	os.Exit(code)
}

func startAll(ctx context.Context) error {
	var err error
	if fs, err = emulators.StartFirestore(ctx, emulators.Options{}); err != nil {
		return err
	}
	if ps, err = emulators.StartPubSub(ctx, emulators.Options{}); err != nil {
		return err
	}
	t0 := time.Now()
	if gcs, err = emulators.StartFakeGCS(ctx, emulators.Options{}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fakegcs built (go build, up to date: ~0.3 s) and started in %v\n", time.Since(t0).Round(time.Millisecond))
	for _, e := range []*emulators.Emulator{fs, ps, gcs} {
		os.Setenv(e.EnvName(), e.Host())
		rss, _ := e.RSS()
		fmt.Fprintf(os.Stderr, "%s=%s ready in %v, RSS %d MB\n", e.EnvName(), e.Host(), e.StartupTime().Round(time.Millisecond), rss>>20)
	}
	return nil
}

// need fails the test if the emulators did not start (gcloud missing...).
func need(t *testing.T) {
	t.Helper()
	if startErr != nil {
		t.Fatalf("emulators not started: %v", startErr)
	}
}

// client opens a Firestore or Pub/Sub client of project with newClient; the environment names the
// emulator.
func client[C any](t *testing.T, newClient func(context.Context, string, ...option.ClientOption) (C, error)) C {
	t.Helper()
	c, err := newClient(t.Context(), project)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Clear deletes every document. While a transaction holds a document (as one of a function process killed
// mid-transaction does, until the emulator expires it) it answers ErrLocked, which the stack waits out;
// once the transaction ends, Clear goes through.
func TestFirestoreClear(t *testing.T) {
	need(t)
	ctx := t.Context()
	c := client(t, firestore.NewClient)
	defer c.Close()
	doc := c.Collection("users").Doc("u1")
	if _, err := doc.Create(ctx, map[string]any{"state": "active"}); err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Create(ctx, map[string]any{"state": "active"}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second Create: %v, want AlreadyExists", err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			if _, err := tx.Get(doc); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		}, firestore.MaxAttempts(1))
	}()
	<-held
	err := fs.Clear(ctx, project)
	close(release)
	if !errors.Is(err, emulators.ErrLocked) {
		t.Fatalf("Clear while a transaction holds a document: %v, want ErrLocked", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the holding transaction: %v", err)
	}
	if err := fs.Clear(ctx, project); err != nil {
		t.Fatalf("Clear once the transaction ended: %v", err)
	}
	if _, err := doc.Get(ctx); status.Code(err) != codes.NotFound {
		t.Fatalf("Get after Clear: %v, want NotFound", err)
	}
}

func TestPubSubStopLeavesNothingAndRestarts(t *testing.T) {
	need(t)
	ctx := t.Context()
	c := client(t, pubsub.NewClient)
	defer c.Close()
	topic := "projects/" + project + "/topics/restart-check"
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}

	pgid, host := ps.PGID(), ps.Host()
	if err := ps.Stop(); err != nil {
		t.Fatal(err)
	}
	if ps.Running() {
		t.Error("Running after Stop")
	}
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Stop", host)
	}
	if err := groupGone(pgid); err != nil {
		t.Error(err)
	}

	if err := ps.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart: ready in %v on the same port", ps.StartupTime())
	if ps.Host() != host {
		t.Fatalf("restarted on %s, want %s", ps.Host(), host)
	}
	// The same client reconnects; the topic is gone with the old process.
	if _, err := c.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: topic}); status.Code(err) != codes.NotFound {
		t.Errorf("GetTopic after restart: %v, want NotFound", err)
	}
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Errorf("CreateTopic after restart: %v", err)
	}
}

// groupGone checks, independently of the package, that no live process of the group is left. Zombies do
// not count: the JVM is reparented to init when gcloud dies, and init here reaps only every ~2 s.
func groupGone(pgid int) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, ent := range entries {
		data, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(data), ')')
		f := strings.Fields(string(data[i+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return fmt.Errorf("process %s (%s) of group %d is still alive after Stop", ent.Name(), f[0], pgid)
		}
	}
	return nil
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && !strings.HasPrefix(string(data[i+1:]), " Z")
}

func TestFakeGCSUploadReadCompose(t *testing.T) {
	need(t)
	ctx := t.Context()
	for _, jsonReads := range []bool{true, false} {
		t.Run(fmt.Sprintf("jsonReads=%v", jsonReads), func(t *testing.T) {
			opts := []option.ClientOption{option.WithoutAuthentication()}
			if jsonReads {
				opts = append(opts, storage.WithJSONReads())
			}
			c, err := storage.NewClient(ctx, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			bkt := c.Bucket(fmt.Sprintf("bucket-%v", jsonReads))
			if err := bkt.Create(ctx, project, nil); err != nil {
				t.Fatal(err)
			}
			parts := []string{"hello, ", "world"}
			var srcs []*storage.ObjectHandle
			for i, p := range parts {
				o := bkt.Object(fmt.Sprintf("part-%d", i))
				w := o.NewWriter(ctx)
				if _, err := io.WriteString(w, p); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if got, want := w.Attrs().CRC32C, crc32c(p); got != want {
					t.Errorf("part %d CRC32C = %08x, want %08x", i, got, want)
				}
				srcs = append(srcs, o)
			}
			r, err := srcs[0].NewReader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || string(got) != parts[0] {
				t.Fatalf("read %q, %v", got, err)
			}

			attrs, err := bkt.Object("whole").ComposerFrom(srcs...).Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			whole := strings.Join(parts, "")
			if attrs.CRC32C != crc32c(whole) || attrs.Size != int64(len(whole)) {
				t.Errorf("composed CRC32C %08x size %d, want %08x %d", attrs.CRC32C, attrs.Size, crc32c(whole), len(whole))
			}
			r, err = bkt.Object("whole").NewRangeReader(ctx, 3, 6)
			if err != nil {
				t.Fatal(err)
			}
			got, _ = io.ReadAll(r)
			r.Close()
			if string(got) != whole[3:9] {
				t.Errorf("range read %q, want %q", got, whole[3:9])
			}
		})
	}
}

func crc32c(s string) uint32 { return crc32.Checksum([]byte(s), crc32.MakeTable(crc32.Castagnoli)) }

func TestMissingGcloud(t *testing.T) {
	t.Parallel()
	_, err := emulators.StartFirestore(t.Context(), emulators.Options{Gcloud: filepath.Join(t.TempDir(), "no-gcloud")})
	if !errors.Is(err, emulators.ErrGcloudMissing) || strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %v, want the one-line ErrGcloudMissing", err)
	}
}

// fakeGcloud writes a shell script standing in for gcloud.
func fakeGcloud(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gcloud")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStartFailureShowsOutput(t *testing.T) {
	t.Parallel()
	gc := fakeGcloud(t, "echo starting the emulator\necho 'SEVERE: something broke' >&2\nexit 3\n")
	_, err := emulators.StartPubSub(t.Context(), emulators.Options{Gcloud: gc})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "SEVERE: something broke") {
		t.Errorf("err = %v", err)
	}
}

func TestStartTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	// A "gcloud" that never answers and leaves a child behind, like the JVM.
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	gc := fakeGcloud(t, "sleep 60 &\necho $! > "+pidFile+"\necho waiting\nwait\n")
	_, err := emulators.StartFirestore(t.Context(), emulators.Options{Gcloud: gc, StartTimeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "waiting") {
		t.Fatalf("err = %v", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(data), &pid)
	if alive(pid) {
		t.Errorf("child %d of the emulator survived", pid)
	}
}

// A Firestore emulator started with KeepData keeps its documents across RestartKeepingData (exported as
// it stops, imported as it starts), on the same port.
func TestFirestoreRestartKeepingData(t *testing.T) {
	need(t)
	ctx := t.Context()
	e, err := emulators.StartFirestore(ctx, emulators.Options{KeepData: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := firestore.NewClient(ctx, "keep-data", option.WithEndpoint(e.Host()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	doc := c.Collection("rounds").Doc("r1")
	if _, err := doc.Create(ctx, map[string]any{"state": "transferring"}); err != nil {
		t.Fatal(err)
	}
	host := e.Host()
	if err := e.RestartKeepingData(ctx, "keep-data"); err != nil {
		t.Fatal(err)
	}
	if e.Host() != host {
		t.Errorf("restarted on %s, was %s", e.Host(), host)
	}
	snap, err := doc.Get(ctx)
	if err != nil {
		t.Fatalf("document after the restart: %v", err)
	}
	if snap.Data()["state"] != "transferring" {
		t.Errorf("document after the restart: %v", snap.Data())
	}
	// Twice: the second export must not be the first one's import.
	if _, err := c.Collection("rounds").Doc("r2").Create(ctx, map[string]any{"state": "done"}); err != nil {
		t.Fatal(err)
	}
	if err := e.RestartKeepingData(ctx, "keep-data"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"r1", "r2"} {
		if _, err := c.Collection("rounds").Doc(id).Get(ctx); err != nil {
			t.Errorf("%s after the second restart: %v", id, err)
		}
	}
}
