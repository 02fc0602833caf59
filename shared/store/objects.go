package store

import (
	"context"
	"fmt"
	"slices"

	"cloud.google.com/go/firestore"
)

// GetObject reads one archive object of a resource.
func (s *Store) GetObject(ctx context.Context, rid, name string, i int) (*Object, error) {
	return get[Object](ctx, nil, s.object(rid, name, i))
}

// ListObjects reads every archive object of a resource, by index.
func (s *Store) ListObjects(ctx context.Context, rid, name string) ([]Object, error) {
	out, err := queryAll[Object](ctx, s.resource(rid, name).Collection(colObjects).Query, nil)
	slices.SortFunc(out, byIndex)
	return out, err
}

// UpdateURLs stores freshly signed (sealed) URLs of a job's objects, by object index.
func (s *Store) UpdateURLs(ctx context.Context, rid, name string, sealed map[int][]byte) error {
	now := s.now()
	bw := s.fs.BulkWriter(ctx)
	for i, u := range sealed {
		if _, err := bw.Update(s.object(rid, name, i), []firestore.Update{{Path: "url", Value: u}, {Path: "urlFetched", Value: now}}); err != nil {
			return err
		}
	}
	bw.End()
	return nil
}

// PartDone records a verified part copy (idempotent). It never recreates a purged object: when the
// object's record is gone it returns ErrNotFound and writes nothing.
func (s *Store) PartDone(ctx context.Context, rid, name string, obj int, p Part) error {
	p.DoneAt = s.now()
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if _, err := get[Object](ctx, tx, s.object(rid, name, obj)); err != nil {
			return err
		}
		return tx.Set(s.part(rid, name, obj, p.Index), p)
	})
	if err != nil {
		return fmt.Errorf("record part %d of object %d: %w", p.Index, obj, err)
	}
	return nil
}

// DoneParts returns the parts of an object recorded done in the given attempt, by index.
func (s *Store) DoneParts(ctx context.Context, rid, name string, obj, attempt int) ([]Part, error) {
	out, err := queryAll[Part](ctx, s.object(rid, name, obj).Collection(colParts).Where("attempt", "==", attempt), nil)
	slices.SortFunc(out, byIndex)
	return out, err
}

// GetPart reads one part record.
func (s *Store) GetPart(ctx context.Context, rid, name string, obj, part int) (*Part, error) {
	return get[Part](ctx, nil, s.part(rid, name, obj, part))
}

// VerifyObject marks an object verified under its final name, once per attempt.
func (s *Store) VerifyObject(ctx context.Context, rid, name string, obj, attempt int, finalName string) (bool, error) {
	_, changed, err := s.inAttempt(ctx, rid, name, obj, attempt, func(o *Object) {
		o.State, o.Name, o.VerifiedAt = ObjVerified, finalName, s.now()
	})
	return changed, err
}

// RecopyObject starts a new copy attempt of an object whose checksum did not match, or gives it up after
// maxAttempts. It acts once per attempt and returns the object afterwards.
func (s *Store) RecopyObject(ctx context.Context, rid, name string, obj, attempt, maxAttempts int, reason string) (*Object, error) {
	o, _, err := s.inAttempt(ctx, rid, name, obj, attempt, func(o *Object) {
		if attempt+1 >= maxAttempts {
			o.State, o.Reason = ObjFailed, reason
		} else {
			o.Attempt++
		}
	})
	return o, err
}

// inAttempt applies change to object obj in a transaction when the object is still copying in attempt,
// so each attempt's outcome is recorded once, and logs the change. A change ObjectLifecycle does not
// declare is refused with ErrNotAllowed. It returns the object afterwards and
// whether change was applied.
func (s *Store) inAttempt(ctx context.Context, rid, name string, obj, attempt int, change func(o *Object)) (*Object, bool, error) {
	ref := s.object(rid, name, obj)
	out, acted, err := update(ctx, s.fs, ref, func(tx *firestore.Transaction, o *Object) (bool, error) {
		if o.State != ObjCopying || o.Attempt != attempt {
			return false, nil
		}
		change(o)
		if err := ObjectLifecycle.check(ObjCopying, o.State); err != nil {
			return true, err
		}
		return true, tx.Set(ref, o)
	})
	if err == nil && acted {
		logObject(ctx, rid, name, obj, ObjCopying, out.State, out.Attempt)
	}
	return out, acted, err
}

// ListParts returns every part record of an object (any attempt), by index.
func (s *Store) ListParts(ctx context.Context, rid, name string, obj int) ([]Part, error) {
	return queryAll[Part](ctx, s.object(rid, name, obj).Collection(colParts).Query, nil)
}

// Progress is how far the copy of a resource's archive files into the bucket is.
type Progress struct {
	Files, FilesDone int
	Bytes, BytesDone int64
}

// TransferProgress adds up a resource's archive files: a verified file counts whole, a file being copied
// counts the parts recorded done in its current attempt.
func (s *Store) TransferProgress(ctx context.Context, rid, name string) (Progress, error) {
	objs, err := s.ListObjects(ctx, rid, name)
	if err != nil {
		return Progress{}, fmt.Errorf("list objects of %s/%s: %w", rid, name, err)
	}
	var p Progress
	for _, o := range objs {
		p.Files++
		p.Bytes += o.Size
		switch o.State {
		case ObjVerified:
			p.FilesDone++
			p.BytesDone += o.Size
		case ObjCopying:
			parts, err := s.DoneParts(ctx, rid, name, o.Index, o.Attempt)
			if err != nil {
				return Progress{}, fmt.Errorf("parts of object %d of %s/%s: %w", o.Index, rid, name, err)
			}
			for _, pt := range parts {
				p.BytesDone += pt.Length
			}
		}
	}
	p.BytesDone = min(p.BytesDone, p.Bytes)
	return p, nil
}
