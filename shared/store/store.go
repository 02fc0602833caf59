package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNotFound is returned for a missing document.
var ErrNotFound = errors.New("not found")

// ErrConsumed means a single-use record was already used or has expired.
var ErrConsumed = errors.New("already used or expired")

// ErrRoundRunning means the user has a round that has not finished.
var ErrRoundRunning = errors.New("a round is still running for this user")

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_@+=-][A-Za-z0-9._@+=-]{0,127}$`)

// ValidUserID reports whether id can be a user ID (the operator app's own ID; also a document ID):
// letters, digits and ._@+=-, at most 128, not starting with a dot, and not an ID Firestore reserves.
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) && !ReservedID(id) }

// ReservedID reports whether Firestore reserves id as a document ID: "." and "..", and IDs matching
// __.*__ (https://firebase.google.com/docs/firestore/quotas#collections_documents_and_fields).
func ReservedID(id string) bool {
	return id == "." || id == ".." || len(id) >= 4 && strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__")
}

// Store is the pipeline's Firestore state.
type Store struct {
	fs  *firestore.Client
	now func() time.Time
}

// New returns a Store on the client.
func New(fs *firestore.Client) *Store {
	return &Store{fs: fs, now: func() time.Time { return time.Now().UTC() }}
}

// Client is the underlying Firestore client.
func (s *Store) Client() *firestore.Client { return s.fs }

func (s *Store) round(id string) *firestore.DocumentRef { return s.fs.Collection(colRounds).Doc(id) }
func (s *Store) resource(round, name string) *firestore.DocumentRef {
	return s.round(round).Collection(colResources).Doc(name)
}
func (s *Store) object(round, resource string, i int) *firestore.DocumentRef {
	return s.resource(round, resource).Collection(colObjects).Doc(fmt.Sprint(i))
}
func (s *Store) part(round, resource string, obj, part int) *firestore.DocumentRef {
	return s.object(round, resource, obj).Collection(colParts).Doc(fmt.Sprint(part))
}

func notFound(err error) bool { return status.Code(err) == codes.NotFound }

func isAlreadyExists(err error) bool { return status.Code(err) == codes.AlreadyExists }

func get[T any](ctx context.Context, tx *firestore.Transaction, ref *firestore.DocumentRef) (*T, error) {
	var snap *firestore.DocumentSnapshot
	var err error
	if tx != nil {
		snap, err = tx.Get(ref)
	} else {
		snap, err = ref.Get(ctx)
	}
	if notFound(err) {
		return nil, fmt.Errorf("%s: %w", ref.Path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref.ID, err)
	}
	var v T
	if err := snap.DataTo(&v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ref.ID, err)
	}
	return &v, nil
}

// update reads the document at ref in a transaction and hands it to change, which writes through tx when it
// acts and reports whether it did. It returns the document as change left it and whether change acted, as
// of the transaction's last attempt (Firestore runs the function again after a contention).
func update[T any](ctx context.Context, fs *firestore.Client, ref *firestore.DocumentRef, change func(tx *firestore.Transaction, v *T) (bool, error)) (*T, bool, error) {
	var out *T
	acted := false
	err := fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		acted = false
		v, err := get[T](ctx, tx, ref)
		if err != nil {
			return err
		}
		out = v
		acted, err = change(tx, v)
		return err
	})
	return out, acted, err
}

// getNamed reads ref outside a transaction and gives the value its document's ID (name).
func getNamed[T any](ctx context.Context, ref *firestore.DocumentRef, name func(v *T, docID string)) (*T, error) {
	v, err := get[T](ctx, nil, ref)
	if err != nil {
		return nil, err
	}
	name(v, ref.ID)
	return v, nil
}

// queryAll reads every document q returns; id, when not nil, receives each document's ID.
func queryAll[T any](ctx context.Context, q firestore.Query, id func(v *T, docID string)) ([]T, error) {
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, err
	}
	return decodeAll(snaps, id)
}

// Where a record's ID is kept (records hold it in a field the store does not write).
func userID(v *User, id string)           { v.ID = id }
func roundID(v *Round, id string)         { v.ID = id }
func resourceName(v *Resource, id string) { v.Name = id }
func eventID(v *outbox.Record, id string) { v.ID = id }

// byIndex orders archive objects or parts by their index.
func byIndex[T interface{ index() int }](a, b T) int { return a.index() - b.index() }

func (o Object) index() int { return o.Index }
func (p Part) index() int   { return p.Index }

// decodeAll decodes snapshots into values; id, when not nil, receives each document's ID.
func decodeAll[T any](snaps []*firestore.DocumentSnapshot, id func(v *T, docID string)) ([]T, error) {
	out := make([]T, 0, len(snaps))
	for _, snap := range snaps {
		var v T
		if err := snap.DataTo(&v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", snap.Ref.Path, err)
		}
		if id != nil {
			id(&v, snap.Ref.ID)
		}
		out = append(out, v)
	}
	return out, nil
}

// ErrNotAllowed means an operator action does not apply to the record's current state.
var ErrNotAllowed = errors.New("not allowed in this state")
