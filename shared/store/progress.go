package store

import (
	"context"
	"fmt"
	"slices"
)

// UserRounds returns every round of a user, newest first (one equality filter: no composite index).
func (s *Store) UserRounds(ctx context.Context, user string) ([]Round, error) {
	snaps, err := s.fs.Collection(colRounds).Where("user", "==", user).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("list rounds of %s: %w", user, err)
	}
	out, err := decodeAll[Round](snaps, func(v *Round, id string) { v.ID = id })
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Round) int { return b.Number - a.Number })
	return out, nil
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
