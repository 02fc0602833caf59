package copyengine_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/copyengine/copyenginetest"
)

// fakeGCS is fake-gcs-server in process with one bucket, and a GCSSink over it. Names and Data read the
// bucket back with the storage client, not through the sink.
type fakeGCS struct {
	t      *testing.T
	client *storage.Client
	bucket string
	sink   *copyengine.GCSSink
}

// newFakeGCS starts fake-gcs-server for the test. Keep objects small: it holds several copies of each.
func newFakeGCS(t *testing.T) *fakeGCS {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", NoListener: true})
	if err != nil {
		t.Fatalf("fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	const bucket = "exports-bucket"
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	client, err := storage.NewClient(context.Background(), option.WithHTTPClient(srv.HTTPClient()), option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return &fakeGCS{t: t, client: client, bucket: bucket, sink: copyengine.NewGCSSink(client, bucket)}
}

// Data reads an object; false when there is none of that name.
func (g *fakeGCS) Data(name string) ([]byte, bool) {
	g.t.Helper()
	r, err := g.client.Bucket(g.bucket).Object(name).NewReader(context.Background())
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, false
	}
	if err != nil {
		g.t.Fatalf("read %s: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		g.t.Fatal(err)
	}
	return b, true
}

// Names lists the bucket's objects.
func (g *fakeGCS) Names() []string {
	g.t.Helper()
	var names []string
	it := g.client.Bucket(g.bucket).Objects(context.Background(), nil)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return names
		}
		if err != nil {
			g.t.Fatal(err)
		}
		names = append(names, a.Name)
	}
}

func TestGCSSink(t *testing.T) {
	t.Parallel()
	tests := []copyCase{
		{name: "multi-chunk parts", size: 2<<20 + 300*kib + 7, partSize: 1 << 20},
		{name: "tree of 40 parts", size: 40*16*kib - 1, partSize: 16 * kib},
		{name: "zero bytes", size: 0, partSize: 1 << 20},
		{name: "resume after cut", size: 1 << 20, partSize: 1 << 20, faults: copyenginetest.Faults{CutAfter: 300 * kib, CutTimes: 1}, wantResume: true},
		{name: "corrupt byte", size: 1 << 20, partSize: 512 * kib, faults: copyenginetest.Faults{Corrupt: true, CorruptAt: 700 * kib}, wantErr: copyengine.ErrChecksumMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newFakeGCS(t)
			g.sink.ChunkSize = 256 * kib // several chunks per part
			tc.check(t, g.sink, g, 2)
		})
	}
}

func TestGCSSinkIdempotentCompose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newFakeGCS(t)
	sink := g.sink
	size := int64(300 * kib)
	src := copyenginetest.NewSource(size, copyenginetest.Faults{})
	defer src.Close()
	rs := copyengine.NewURLSource(nil, src.SignedURL(), size, nil)
	parts, err := copyengine.CopyAll(ctx, rs, sink, copyengine.Plan(size, copyengine.PlanOptions{PartSize: 100 * kib}), 3, fastOpts("tmp/i/"))
	if err != nil {
		t.Fatal(err)
	}
	opts := copyengine.ComposeOptions{SourceCRC32C: src.CRC32C, Metadata: map[string]string{"job": "j"}}
	first, err := copyengine.Compose(ctx, sink, "exports/f.zip", parts, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := copyengine.Compose(ctx, sink, "exports/f.zip", parts, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !second.AlreadyDone || second.CRC32C != first.CRC32C || second.Size != first.Size || second.CleanupErr != nil {
		t.Errorf("first %+v second %+v", first, second)
	}
	if names := g.Names(); len(names) != 1 {
		t.Errorf("objects %v", names)
	}
}

func TestGCSPartWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sink := newFakeGCS(t).sink
	sink.ChunkSize = 256 * kib

	// Abort after more than one chunk was sent: nothing is committed.
	w, err := sink.NewPartWriter(ctx, "tmp/a/part-00000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(copyenginetest.Bytes(0, 600*kib)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	w.Abort() // twice is fine
	if _, err := sink.Attrs(ctx, "tmp/a/part-00000"); !errors.Is(err, copyengine.ErrNotExist) {
		t.Errorf("aborted upload: attrs err %v, want ErrNotExist", err)
	}

	// Commit reports storage's CRC32C and size.
	w, _ = sink.NewPartWriter(ctx, "tmp/a/part-00001")
	data := copyenginetest.Bytes(5, 600*kib)
	w.Write(data)
	crc, n, err := w.Commit()
	if err != nil || n != int64(len(data)) || crc != crc32c(data) {
		t.Errorf("commit: crc %08x n %d err %v", crc, n, err)
	}
	w.Abort() // no-op after Commit
	if _, err := sink.Attrs(ctx, "tmp/a/part-00001"); err != nil {
		t.Errorf("committed part: %v", err)
	}

	// Delete is idempotent.
	for range 2 {
		if err := sink.Delete(ctx, "tmp/a/part-00001"); err != nil {
			t.Errorf("delete: %v", err)
		}
	}
}
