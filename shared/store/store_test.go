package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"cloud.google.com/go/firestore"

	"github.com/portability-pipeline/pipeline/emulator-test/emulators"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// The store's tests run on the Firestore emulator, started once for the test binary (or the one
// FIRESTORE_EMULATOR_HOST names). Each test has a Firestore project of its own, so tests are independent
// even for collection-group queries.
func TestMain(m *testing.M) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") != "" {
		os.Exit(m.Run())
	}
	e, err := emulators.StartFirestore(context.Background(), emulators.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "shared/store tests need the Firestore emulator:", err)
		os.Exit(1)
	}
	os.Setenv(e.EnvName(), e.Host())
	code := m.Run()
	e.Stop()
	os.Exit(code)
}

// newStore returns a store on a fresh Firestore project of the emulator, and a context whose logger
// keeps the state-change lines for the test's output only when it fails. The test runs in parallel with
// the others (nothing is shared but the emulator).
func newStore(t *testing.T) (context.Context, *store.Store) {
	t.Helper()
	t.Parallel()
	ctx := logging.WithLogger(context.Background(), logging.New(testWriter{t}, "info"))
	fs, err := firestore.NewClient(ctx, fmt.Sprintf("store-%x", rand.Uint64()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return ctx, store.New(fs)
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// userID is a user ID unique to the test (and a valid document ID).
func userID(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("%s-%x", name, rand.Uint32())
}

// start starts the grant g and returns its first round.
func start(t *testing.T, ctx context.Context, s *store.Store, g store.NewGrant) *store.Round {
	t.Helper()
	r, err := s.StartGrant(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// grant starts a one-time grant of user with the granted and not granted resources and returns its round.
func grant(t *testing.T, ctx context.Context, s *store.Store, user string, granted, notGranted []string) *store.Round {
	t.Helper()
	return start(t, ctx, s, store.NewGrant{User: user, Access: store.AccessOneTime, Granted: granted, NotGranted: notGranted})
}

// state fails the test unless resource name of round rid is in want.
func state(t *testing.T, ctx context.Context, s *store.Store, rid, name string, want store.ResourceState) *store.Resource {
	t.Helper()
	r, err := s.GetResource(ctx, rid, name)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != want {
		t.Fatalf("resource %s of %s is %s, want %s", name, rid, r.State, want)
	}
	return r
}

func TestValidUserID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{"pia": true, "a.b@c+d=e_f-g": true, "": false, ".dot": false,
		"has/slash": false, "has~tilde": false, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
		".": false, "..": false, "__x__": false, "____": false, "__": true, "__x": true, "x__": true} {
		if got := store.ValidUserID(id); got != want {
			t.Errorf("ValidUserID(%q) = %v, want %v", id, got, want)
		}
	}
}

// A missing document reads as ErrNotFound, whichever kind it is.
func TestMissingIsNotFound(t *testing.T) {
	ctx, s := newStore(t)
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser: %v", err)
	}
	if _, err := s.GetRound(ctx, "nobody~1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRound: %v", err)
	}
	if _, err := s.GetResource(ctx, "nobody~1", "g"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetResource: %v", err)
	}
	if _, err := s.GetObject(ctx, "nobody~1", "g", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetObject: %v", err)
	}
	if _, err := s.GetEvent(ctx, "none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetEvent: %v", err)
	}
}
