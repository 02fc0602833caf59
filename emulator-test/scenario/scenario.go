// Package scenario is the one scenario API of the pipeline's tests: what a test does to a pipeline (a
// person consents, the pipeline runs until their grants close, the export events are read) and what it
// checks afterwards (every export byte-identical to its source and stored once, nothing left of a purged
// person, the events in order, rendered as lines), the same whichever driver runs the pipeline: the
// in-process bus (internal/pipelinetest) or the process stack (emulator-test/stack). Each check is
// written here once; a driver only says where the pipeline keeps its state.
package scenario

import (
	"context"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/storage"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// View is where a pipeline keeps what the checks read.
type View struct {
	Store     *store.Store
	Firestore *firestore.Client
	// Bucket is the archive bucket, named BucketName; exports live under ObjectPrefix/<user>/.
	Bucket       *storage.BucketHandle
	BucketName   string
	ObjectPrefix string
	Fake         *fakeportability.Server
	// Account is the Google account user consents with (the fake knows people by account).
	Account func(user string) string
}

// Driver runs a pipeline for a scenario.
type Driver interface {
	View() View
	// SignIn makes user consent to resources with access (one-time, time-based-30d, time-based-180d),
	// as a person on the consent page would, and the pipeline start the export.
	SignIn(ctx context.Context, user string, resources []string, access string) error
	// RunUntilClosed runs the pipeline until the grants of users are closed.
	RunUntilClosed(ctx context.Context, users ...string) error
	// Events returns the export events published so far, deduplicated by id, in order of first
	// publication.
	Events(ctx context.Context) ([]Event, error)
}

// Resource groups the scenarios grant.
const (
	Search        = "myactivity.search"
	YouTube       = "myactivity.youtube"
	Subscriptions = "youtube.subscriptions"
)

// Three is the start link most scenarios grant: Search, YouTube and Subscriptions.
func Three() []string { return []string{Search, YouTube, Subscriptions} }
