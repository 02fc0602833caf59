package stack

import (
	"context"
	"errors"
	"time"

	"cloud.google.com/go/storage"

	"github.com/portability-pipeline/pipeline/emulator-test/emulators"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Store returns the pipeline's store on the emulator.
func (s *Stack) Store() *store.Store { return store.New(s.FirestoreClient) }

// ClearData clears what a test left: Firestore documents, the fake's users, jobs, faults and clock, waiting
// tasks and every object in the bucket. Call it between tests, once the previous one has settled. The
// emulator's clear can time out on a busy machine: it tries three times. A function process that a test
// killed mid-transaction leaves the emulator holding that transaction's locks until it expires it, and
// every clear meanwhile answers "Transaction lock timeout" (CI saw 45 s of them after TestMixed killed
// PollTask and Transfer): those it keeps trying for up to lockedWait.
func (s *Stack) ClearData(ctx context.Context) error {
	var err error
	start := time.Now()
	for tries := 0; tries < 3 || (errors.Is(err, emulators.ErrLocked) && time.Since(start) < lockedWait); tries++ {
		if err = s.clearData(ctx); err == nil {
			return nil
		}
		s.opts.Log.Warn("clear the stack's data: trying again", "error", err.Error())
		if errors.Is(err, emulators.ErrLocked) {
			time.Sleep(time.Second)
		}
	}
	return err
}

// lockedWait bounds the wait for an abandoned transaction's locks: Firestore gives up an idle
// transaction after 60 s and any transaction after 270 s.
const lockedWait = 5 * time.Minute

func (s *Stack) clearData(ctx context.Context) error {
	s.DeliverTwice(false)
	s.losses.mu.Lock()
	s.losses.armed = nil
	s.losses.mu.Unlock()
	if err := s.Tasks.Purge(); err != nil {
		return err
	}
	if err := s.Firestore.Clear(ctx, s.Project); err != nil {
		return err
	}
	s.Fake.ClearData()
	s.clearGCSFaults()
	if err := s.clearEvents(ctx); err != nil {
		return err
	}
	b := s.StorageClient.Bucket(s.Bucket)
	return scenario.EachObject(ctx, b, "", func(a *storage.ObjectAttrs) error { return b.Object(a.Name).Delete(ctx) })
}
