package copyenginetest

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"sync"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type object struct {
	data []byte // nil in a DiscardSink
	info copyengine.ObjectInfo
}

// MemSink is an in-memory copyengine.Sink. With discard set (NewDiscardSink) it
// keeps only each object's size and CRC32C, so arbitrarily large copies can
// run through it; composes combine the CRC32Cs.
type MemSink struct {
	discard bool
	mu      sync.Mutex
	objects map[string]*object
	gen     int64
	// ComposeHook, when set, may change the info a compose reports (e.g. to
	// simulate storage corrupting the result).
	ComposeHook func(dst string, info *copyengine.ObjectInfo)
	aborts      int
	composes    int
}

// NewMemSink returns an empty MemSink that keeps the data.
func NewMemSink() *MemSink { return &MemSink{objects: map[string]*object{}} }

// NewDiscardSink returns a MemSink that drops the data.
func NewDiscardSink() *MemSink { return &MemSink{discard: true, objects: map[string]*object{}} }

// Names lists the stored objects, sorted.
func (m *MemSink) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.objects))
}

// Data returns an object's content (nil in a DiscardSink).
func (m *MemSink) Data(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if !ok {
		return nil, false
	}
	return o.data, true
}

// Aborts counts aborted part writers.
func (m *MemSink) Aborts() int { m.mu.Lock(); defer m.mu.Unlock(); return m.aborts }

// Composes counts compose calls.
func (m *MemSink) Composes() int { m.mu.Lock(); defer m.mu.Unlock(); return m.composes }

// NewPartWriter implements copyengine.Sink.
func (m *MemSink) NewPartWriter(ctx context.Context, name string) (copyengine.PartWriter, error) {
	return &memWriter{m: m, name: name}, nil
}

type memWriter struct {
	m    *MemSink
	name string
	buf  bytes.Buffer
	crc  uint32
	n    int64
	done bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write after commit or abort")
	}
	if !w.m.discard {
		w.buf.Write(p)
	}
	w.crc = crc32.Update(w.crc, castagnoli, p)
	w.n += int64(len(p))
	return len(p), nil
}

func (w *memWriter) Commit() (uint32, int64, error) {
	if w.done {
		return 0, 0, fmt.Errorf("commit after commit or abort")
	}
	w.done = true
	w.m.put(w.name, &object{data: w.bytes(), info: copyengine.ObjectInfo{Name: w.name, Size: w.n, CRC32C: w.crc, ContentType: "application/octet-stream"}})
	return w.crc, w.n, nil
}

func (w *memWriter) bytes() []byte {
	if w.m.discard {
		return nil
	}
	return bytes.Clone(w.buf.Bytes())
}

func (w *memWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.m.mu.Lock()
	w.m.aborts++
	w.m.mu.Unlock()
}

func (m *MemSink) put(name string, o *object) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	o.info.Generation = m.gen
	m.objects[name] = o
}

// Compose implements copyengine.Sink.
func (m *MemSink) Compose(ctx context.Context, dst string, srcs []string, attrs copyengine.ObjectAttrs) (copyengine.ObjectInfo, error) {
	if len(srcs) == 0 || len(srcs) > copyengine.MaxComposeSources {
		return copyengine.ObjectInfo{}, fmt.Errorf("compose %s: %d sources", dst, len(srcs))
	}
	m.mu.Lock()
	m.composes++
	var (
		data []byte
		crc  uint32
		size int64
	)
	for _, s := range srcs {
		o, ok := m.objects[s]
		if !ok {
			m.mu.Unlock()
			return copyengine.ObjectInfo{}, fmt.Errorf("compose %s: source %s: %w", dst, s, copyengine.ErrNotExist)
		}
		if !m.discard {
			data = append(data, o.data...)
		}
		crc = copyengine.CombineCRC32C(crc, o.info.CRC32C, o.info.Size)
		size += o.info.Size
	}
	m.mu.Unlock()
	if !m.discard {
		crc = crc32.Checksum(data, castagnoli) // recomputed, as storage does
	}
	info := copyengine.ObjectInfo{Name: dst, Size: size, CRC32C: crc, ContentType: attrs.ContentType, Metadata: maps.Clone(attrs.Metadata)}
	if m.ComposeHook != nil {
		m.ComposeHook(dst, &info)
	}
	m.put(dst, &object{data: data, info: info})
	return m.Attrs(ctx, dst)
}

// Attrs implements copyengine.Sink.
func (m *MemSink) Attrs(ctx context.Context, name string) (copyengine.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if !ok {
		return copyengine.ObjectInfo{}, fmt.Errorf("attrs %s: %w", name, copyengine.ErrNotExist)
	}
	return o.info, nil
}

// Delete implements copyengine.Sink.
func (m *MemSink) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, name)
	return nil
}
