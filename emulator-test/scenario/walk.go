package scenario

import (
	"context"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/storage"

	"github.com/portability-pipeline/pipeline/shared/iterate"
)

// WalkDocuments calls fn for every document of every collection of fs, subcollections included, parents
// first; snap is nil for a document that exists only as the parent of a subcollection.
func WalkDocuments(ctx context.Context, fs *firestore.Client, fn func(ref *firestore.DocumentRef, snap *firestore.DocumentSnapshot) error) error {
	var walk func(cols *firestore.CollectionIterator) error
	walk = func(cols *firestore.CollectionIterator) error {
		return iterate.All(cols.Next, func(c *firestore.CollectionRef) error {
			refs, err := c.DocumentRefs(ctx).GetAll() // missing parents of subcollections included
			if err != nil {
				return err
			}
			for _, ref := range refs {
				snap, err := ref.Get(ctx)
				if err != nil || !snap.Exists() {
					snap = nil
				}
				if err := fn(ref, snap); err != nil {
					return err
				}
				if err := walk(ref.Collections(ctx)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return walk(fs.Collections(ctx))
}

// EachObject calls fn for every object under prefix of b ("": the whole bucket), in name order.
func EachObject(ctx context.Context, b *storage.BucketHandle, prefix string, fn func(*storage.ObjectAttrs) error) error {
	return iterate.All(b.Objects(ctx, &storage.Query{Prefix: prefix}).Next, fn)
}
