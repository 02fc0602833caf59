package fastsink_test

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"net/http/httptest"
	"testing"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/portability-pipeline/pipeline/emulator-test/fastsink"
	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/copyengine/copyenginetest"
)

func start(t *testing.T) (*fastsink.Server, *storage.Client) {
	t.Helper()
	fs := fastsink.New()
	srv := httptest.NewServer(fs.Handler())
	t.Cleanup(srv.Close)
	client, err := storage.NewClient(context.Background(), option.WithEndpoint(srv.URL+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return fs, client
}

func crc(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// TestStorageClientWrites: the unmodified storage client uploads (multipart for one chunk, resumable
// for several, an exact multiple of the chunk size too) and reads attributes back.
func TestStorageClientWrites(t *testing.T) {
	t.Parallel()
	fs, client := start(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		size  int
		chunk int
	}{
		{"small multipart", 1000, 256 << 10},
		{"empty", 0, 256 << 10},
		{"resumable 3.5 chunks", 7 << 17, 256 << 10},
		{"resumable exact chunks", 1 << 20, 256 << 10},
		{"one chunk and one byte", 256<<10 + 1, 256 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := copyenginetest.Bytes(0, int64(tc.size))
			name := "dir/" + tc.name + "/obj"
			w := client.Bucket("b").Object(name).NewWriter(ctx)
			w.ChunkSize = tc.chunk
			w.ContentType = "application/zip"
			w.Metadata = map[string]string{"k": "v"}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if a := w.Attrs(); a.CRC32C != crc(data) || a.Size != int64(tc.size) {
				t.Errorf("writer attrs: crc %08x size %d, want %08x %d", a.CRC32C, a.Size, crc(data), tc.size)
			}
			a, err := client.Bucket("b").Object(name).Attrs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if a.CRC32C != crc(data) || a.Size != int64(tc.size) || a.ContentType != "application/zip" || a.Metadata["k"] != "v" {
				t.Errorf("attrs %+v", a)
			}
			o, ok := fs.Object("b", name)
			if !ok || o.Size != int64(tc.size) {
				t.Errorf("server has %+v %v", o, ok)
			}
		})
	}
	if st := fs.Stats(); st.Uploads < 5 || st.Chunks < 3 {
		t.Errorf("stats %+v: want multipart and resumable uploads", st)
	}
}

func TestWrongCRCRefused(t *testing.T) {
	t.Parallel()
	_, client := start(t)
	ctx := context.Background()
	for _, size := range []int{100, 600 << 10} {
		data := bytes.Repeat([]byte{7}, size)
		w := client.Bucket("b").Object("bad").NewWriter(ctx)
		w.ChunkSize = 256 << 10
		w.CRC32C, w.SendCRC32C = crc(data)^1, true
		w.Write(data)
		if err := w.Close(); err == nil {
			t.Errorf("%d bytes: a wrong declared CRC32C was accepted", size)
		}
	}
	if _, err := client.Bucket("b").Object("bad").Attrs(ctx); !errors.Is(err, storage.ErrObjectNotExist) {
		t.Errorf("attrs of a refused object: %v", err)
	}
}

// TestTransferEngine runs the engine's copy, compose tree and verification through GCSSink.
func TestTransferEngine(t *testing.T) {
	t.Parallel()
	fs, client := start(t)
	ctx := context.Background()
	const size = 40<<10 + 17
	src := copyenginetest.NewSource(size, copyenginetest.Faults{})
	defer src.Close()
	sink := copyengine.NewGCSSink(client, "b")
	sink.ChunkSize = 256 << 10
	rs := copyengine.NewURLSource(nil, src.SignedURL(), size, nil)
	parts, err := copyengine.CopyAll(ctx, rs, sink, copyengine.Plan(size, copyengine.PlanOptions{PartSize: 1 << 10}), 4, copyengine.CopyOptions{TempPrefix: "tmp/t/"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := copyengine.Compose(ctx, sink, "final.zip", parts, copyengine.ComposeOptions{SourceCRC32C: src.CRC32C, ContentType: "application/zip", Metadata: map[string]string{"job": "j"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != size || res.CRC32C != copyenginetest.CRC32C(size) || res.CleanupErr != nil {
		t.Errorf("result %+v", res)
	}
	if names := fs.Names("b"); len(names) != 1 || names[0] != "final.zip" {
		t.Errorf("objects left: %v", names)
	}
	if _, err := sink.Attrs(ctx, "missing"); !errors.Is(err, copyengine.ErrNotExist) {
		t.Errorf("attrs of a missing object: %v", err)
	}
	if err := sink.Delete(ctx, "missing"); err != nil {
		t.Errorf("delete of a missing object: %v", err)
	}
	if _, err := sink.Compose(ctx, "x", []string{"missing"}, copyengine.ObjectAttrs{}); !errors.Is(err, copyengine.ErrNotExist) {
		t.Errorf("compose of a missing source: %v", err)
	}
}
