package scenario

import (
	"context"
	"strings"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/storage"
)

// Left is what a pipeline still holds of a person.
type Left struct {
	// Paths lists every Firestore document (by path) and bucket object (gs://bucket/name) of the person.
	Paths []string
	// Documents counts the documents walked, the person's or not (none at all: the walk saw nothing).
	Documents int
}

// Leftovers walks every document of every collection (subcollections included) and every object of the
// bucket and lists those of user: a document whose user field is user or whose path names them, an object
// whose name has them as a folder or whose metadata names them. After a purge it must list nothing.
func Leftovers(ctx context.Context, v View, user string) (Left, error) {
	var left Left
	err := WalkDocuments(ctx, v.Firestore, func(ref *firestore.DocumentRef, snap *firestore.DocumentSnapshot) error {
		left.Documents++
		if snap != nil && snap.Data()["user"] == user || strings.Contains(ref.Path, "/"+user) {
			left.Paths = append(left.Paths, ref.Path)
		}
		return nil
	})
	if err != nil {
		return left, err
	}
	err = EachObject(ctx, v.Bucket, "", func(a *storage.ObjectAttrs) error {
		if strings.Contains(a.Name, "/"+user+"/") || a.Metadata["user"] == user {
			left.Paths = append(left.Paths, "gs://"+v.BucketName+"/"+a.Name)
		}
		return nil
	})
	return left, err
}
