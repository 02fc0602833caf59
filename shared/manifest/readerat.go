package manifest

import (
	"context"
	"fmt"
	"io"
	"sync"

	"cloud.google.com/go/storage"
)

// Ranger reads length bytes at offset of a stored object.
type Ranger interface {
	ReadRange(ctx context.Context, offset, length int64) ([]byte, error)
}

// GCSRanger reads an object with ranged GETs (ObjectHandle.NewRangeReader).
type GCSRanger struct{ Object *storage.ObjectHandle }

// ReadRange implements Ranger.
func (g GCSRanger) ReadRange(ctx context.Context, offset, length int64) ([]byte, error) {
	r, err := g.Object.NewRangeReader(ctx, offset, length)
	if err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", g.Object.ObjectName(), offset, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", g.Object.ObjectName(), offset, err)
	}
	return b, nil
}

// Read-ahead of ReaderAt: a read that does not continue the last fetch fetches minAhead bytes; each
// fetch that continues the last one doubles, up to maxAhead, so a long directory costs a few requests.
const (
	minAhead = 64 << 10
	maxAhead = 4 << 20
	// keepSegments is how many fetched ranges a ReaderAt keeps besides those of the object's tail (the
	// last tailBytes, where archive/zip looks for the end records), which it keeps all.
	keepSegments = 4
	tailBytes    = 65*1024 + 1024
)

// ReaderAt is an io.ReaderAt over a Ranger of a size-byte object for archive/zip. It fetches what it is
// asked for plus read-ahead, but never again what it holds and never past the start of a range it
// holds: zip reads the end of central directory first, so the directory read that follows stops exactly
// where the directory ends, and what is read is the directory plus a bounded overhead.
type ReaderAt struct {
	ctx  context.Context
	src  Ranger
	size int64

	mu    sync.Mutex
	segs  []segment // oldest first
	next  int64     // end of the last fetch
	ahead int64     // length of the last fetch's read-ahead
	reads int
	bytes int64
}

type segment struct {
	off int64
	b   []byte
}

func (s segment) end() int64 { return s.off + int64(len(s.b)) }

// NewReaderAt returns a ReaderAt of src.
func NewReaderAt(ctx context.Context, src Ranger, size int64) *ReaderAt {
	return &ReaderAt{ctx: ctx, src: src, size: size, next: -1}
}

// Fetched is what was read from the source so far: the number of ranged reads made and the bytes they
// fetched.
func (r *ReaderAt) Fetched() (requests int, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads, r.bytes
}

// ReadAt implements io.ReaderAt.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.size {
			return n, io.EOF
		}
		s, err := r.segment(pos, int64(len(p)-n))
		if err != nil {
			return n, err
		}
		n += copy(p[n:], s.b[pos-s.off:])
	}
	return n, nil
}

// segment returns a held range containing pos, or fetches one of at least want bytes from pos.
func (r *ReaderAt) segment(pos, want int64) (segment, error) {
	for _, s := range r.segs {
		if s.off <= pos && pos < s.end() {
			return s, nil
		}
	}
	if pos == r.next {
		r.ahead = min(2*r.ahead, maxAhead)
	} else {
		r.ahead = minAhead
	}
	end := min(pos+max(want, r.ahead), r.size)
	for _, s := range r.segs {
		if s.off > pos && s.off < end {
			end = s.off
		}
	}
	b, err := r.src.ReadRange(r.ctx, pos, end-pos)
	if err != nil {
		return segment{}, err
	}
	if int64(len(b)) != end-pos {
		return segment{}, fmt.Errorf("ranged read at %d gave %d bytes, want %d", pos, len(b), end-pos)
	}
	r.reads++
	r.bytes += end - pos
	r.next = end
	s := segment{off: pos, b: b}
	r.segs = append(r.segs, s)
	var kept int
	for _, old := range r.segs {
		if old.end() <= r.size-tailBytes {
			kept++
		}
	}
	if kept > keepSegments {
		// Drop the oldest range that is not in the object's tail (the end records, read first and last).
		for i, old := range r.segs {
			if old.end() <= r.size-tailBytes {
				r.segs = append(r.segs[:i], r.segs[i+1:]...)
				break
			}
		}
	}
	return s, nil
}

// Write stores the manifest as obj (application/json). The same manifest gives the same bytes, so a
// second write changes nothing a reader sees.
func Write(ctx context.Context, obj *storage.ObjectHandle, m *Manifest) error {
	data, err := m.Encode()
	if err != nil {
		return err
	}
	w := obj.NewWriter(ctx)
	w.ContentType = "application/json"
	w.Metadata = map[string]string{"user": m.User, "round": m.Round, "resource": m.Resource, "job": m.Job, "kind": "manifest"}
	if _, err := w.Write(data); err != nil {
		_ = w.Close() // the write's error is the one to report
		return fmt.Errorf("write %s: %w", obj.ObjectName(), err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", obj.ObjectName(), err)
	}
	return nil
}
