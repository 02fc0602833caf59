package copyengine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/copyengine/copyenginetest"
)

// newFakeGCS starts fake-gcs-server in process with one bucket and returns a
// client for it. Keep objects small: it holds several copies of each.
func newFakeGCS(t *testing.T) (*storage.Client, string) {
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
	return client, bucket
}

func readObject(t *testing.T, client *storage.Client, bucket, name string) []byte {
	t.Helper()
	r, err := client.Bucket(bucket).Object(name).NewReader(context.Background())
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func listObjects(t *testing.T, client *storage.Client, bucket string) []string {
	t.Helper()
	var names []string
	it := client.Bucket(bucket).Objects(context.Background(), nil)
	for {
		a, err := it.Next()
		if err != nil {
			break
		}
		names = append(names, a.Name)
	}
	return names
}

func TestGCSSink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		size     int64
		partSize int64
		faults   copyenginetest.Faults
		wantErr  error
	}{
		{name: "multi-chunk parts", size: 2<<20 + 300*kib + 7, partSize: 1 << 20},
		{name: "tree of 40 parts", size: 40*16*kib - 1, partSize: 16 * kib},
		{name: "zero bytes", size: 0, partSize: 1 << 20},
		{name: "resume after cut", size: 1 << 20, partSize: 1 << 20, faults: copyenginetest.Faults{CutAfter: 300 * kib, CutTimes: 1}},
		{name: "corrupt byte", size: 1 << 20, partSize: 512 * kib, faults: copyenginetest.Faults{Corrupt: true, CorruptAt: 700 * kib}, wantErr: copyengine.ErrChecksumMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, bucket := newFakeGCS(t)
			sink := copyengine.NewGCSSink(client, bucket)
			sink.ChunkSize = 256 * kib // several chunks per part
			src := copyenginetest.NewSource(tc.size, tc.faults)
			defer src.Close()
			res, _, err := run(t, src, sink, tc.partSize, 2, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				if names := listObjects(t, client, bucket); len(names) != 0 {
					t.Errorf("objects left: %v", names)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readObject(t, client, bucket, res.Name); !bytes.Equal(got, copyenginetest.Bytes(0, tc.size)) {
				t.Fatalf("final object differs (%d bytes, want %d)", len(got), tc.size)
			}
			a, err := client.Bucket(bucket).Object(res.Name).Attrs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if a.CRC32C != src.CRC32C || a.ContentType != "application/zip" || a.Metadata["resource"] != "myactivity.search" {
				t.Errorf("attrs crc %08x (want %08x) type %q metadata %v", a.CRC32C, src.CRC32C, a.ContentType, a.Metadata)
			}
			if names := listObjects(t, client, bucket); len(names) != 1 {
				t.Errorf("temporaries left: %v", names)
			}
		})
	}
}

func TestGCSSinkIdempotentCompose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, bucket := newFakeGCS(t)
	sink := copyengine.NewGCSSink(client, bucket)
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
	if names := listObjects(t, client, bucket); len(names) != 1 {
		t.Errorf("objects %v", names)
	}
}

func TestGCSPartWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, bucket := newFakeGCS(t)
	sink := copyengine.NewGCSSink(client, bucket)
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
