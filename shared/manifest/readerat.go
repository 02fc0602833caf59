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

// BlockSize is the read-ahead of ReaderAt: every read fetches whole aligned blocks.
const BlockSize = 256 << 10

// cacheBlocks is how many blocks a ReaderAt keeps (the central directory and the entry being read).
const cacheBlocks = 8

// ReaderAt is an io.ReaderAt over a Ranger of a size-byte object: reads fetch aligned blocks of
// BlockSize and keep the last few, so zip's many small reads of the central directory cost a few
// ranged requests.
type ReaderAt struct {
	ctx  context.Context
	src  Ranger
	size int64

	mu     sync.Mutex
	blocks map[int64][]byte
	order  []int64
	// Reads counts ranged requests; Bytes counts the bytes they fetched.
	Reads int
	Bytes int64
}

// NewReaderAt returns a ReaderAt of src.
func NewReaderAt(ctx context.Context, src Ranger, size int64) *ReaderAt {
	return &ReaderAt{ctx: ctx, src: src, size: size, blocks: map[int64][]byte{}}
}

// ReadAt implements io.ReaderAt.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.size {
			return n, io.EOF
		}
		b, err := r.block(pos / BlockSize)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], b[pos%BlockSize:])
	}
	return n, nil
}

func (r *ReaderAt) block(i int64) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.blocks[i]; ok {
		return b, nil
	}
	start := i * BlockSize
	length := min(BlockSize, r.size-start)
	b, err := r.src.ReadRange(r.ctx, start, length)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != length {
		return nil, fmt.Errorf("ranged read at %d gave %d bytes, want %d", start, len(b), length)
	}
	r.Reads++
	r.Bytes += length
	if len(r.order) >= cacheBlocks {
		delete(r.blocks, r.order[0])
		r.order = r.order[1:]
	}
	r.blocks[i] = b
	r.order = append(r.order, i)
	return b, nil
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
