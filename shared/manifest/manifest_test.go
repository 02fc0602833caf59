package manifest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"
)

// memRanger serves ranged reads of a byte slice and counts them.
type memRanger struct {
	b     []byte
	fail  error
	reads int
}

func (m *memRanger) ReadRange(_ context.Context, off, n int64) ([]byte, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	m.reads++
	return m.b[off : off+n], nil
}

type entry struct {
	name    string
	content []byte
	method  uint16
}

func zipOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		f, err := w.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(e.content)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func input(i int, name string, data []byte, r *memRanger) Input {
	return Input{Index: i, Object: "exports/u/u~1/r/j/" + fmt.Sprint(i) + "-" + name, SourceName: name, Size: int64(len(data)),
		Open: func(ctx context.Context) (io.ReaderAt, error) { return NewReaderAt(ctx, r, int64(len(data))), nil }}
}

var job = Job{User: "u", Round: "u~1", Resource: "myactivity.search", Job: "j", ExportTime: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}

const browserJSON = `{"services":[{"name":"My Activity","is_incomplete":true,"folders":[{"name":"Search","resource":"myactivity.search","is_incomplete":true}]}]}`

func TestBuildListsZipFilesAndServices(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), (MaxCheck+1024)/16)
	data := zipOf(t,
		entry{"Portability/My Activity/Search/a.json", []byte(`{"a":1}`), zip.Deflate},
		entry{"Portability/My Activity/Search/", nil, zip.Store},
		entry{"Portability/My Activity/Search/big.json", big, zip.Store},
	)
	browser := zipOf(t, entry{"Portability/archive_browser.json", []byte(browserJSON), zip.Deflate})
	bare := []byte("\n  [{\"title\":\"x\"}]")
	m, err := Build(context.Background(), job, []Input{
		input(0, "data.zip", data, &memRanger{b: data}),
		input(1, "browser.zip", browser, &memRanger{b: browser}),
		input(2, "data.json", bare, &memRanger{b: bare}),
	})
	if err != nil {
		t.Fatal(err)
	}
	a := m.Archives[0]
	if a.Kind != KindZip || len(a.Files) != 2 {
		t.Fatalf("archive 0: %+v", a)
	}
	if f := a.Files[0]; f.Path != "Portability/My Activity/Search/a.json" || f.Size != 7 || f.CRC32 != crc32.ChecksumIEEE([]byte(`{"a":1}`)) || f.Check != CheckOK || f.CompressedSize == 0 {
		t.Errorf("file 0: %+v", f)
	}
	if f := a.Files[1]; f.Size != int64(len(big)) || f.Check != CheckNotRead || f.CRC32 != crc32.ChecksumIEEE(big) {
		t.Errorf("big file: %+v", f)
	}
	if len(m.Services) != 1 || m.Services[0].Name != "My Activity" || !m.Services[0].IsIncomplete || m.Services[0].Archive != 1 ||
		len(m.Services[0].Folders) != 1 || !m.Services[0].Folders[0].IsIncomplete || m.Services[0].Folders[0].Resource != "myactivity.search" {
		t.Errorf("services: %+v", m.Services)
	}
	if b := m.Archives[2]; b.Kind != KindJSON || len(b.Files) != 1 || b.Files[0].Path != "data.json" {
		t.Errorf("bare JSON: %+v", b)
	}
	if m.Totals.Archives != 3 || m.Totals.Files != 4 || m.TimeRange.End != job.ExportTime || m.TimeRange.Start != nil {
		t.Errorf("totals %+v, range %+v", m.Totals, m.TimeRange)
	}
	// Idempotent: the same input gives the same bytes.
	m2, _ := Build(context.Background(), job, []Input{
		input(0, "data.zip", data, &memRanger{b: data}),
		input(1, "browser.zip", browser, &memRanger{b: browser}),
		input(2, "data.json", bare, &memRanger{b: bare}),
	})
	e1, _ := m.Encode()
	e2, _ := m2.Encode()
	if !bytes.Equal(e1, e2) {
		t.Error("two builds differ")
	}
}

func TestBuildReadsOnlyTheDirectoryOfALargeArchive(t *testing.T) {
	t.Parallel()
	payload := make([]byte, 24<<20) // stored: the zip is about 24 MiB
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	data := zipOf(t, entry{"Portability/x/huge.bin", payload, zip.Store}, entry{"Portability/x/small.json", []byte("{}"), zip.Store})
	r := &memRanger{b: data}
	var ra *ReaderAt
	in := input(0, "a.zip", data, r)
	in.Open = func(ctx context.Context) (io.ReaderAt, error) {
		ra = NewReaderAt(ctx, r, int64(len(data)))
		return ra, nil
	}
	m, err := Build(context.Background(), job, []Input{in})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Archives[0].Files) != 2 || m.Archives[0].Files[1].Check != CheckOK {
		t.Fatalf("%+v", m.Archives[0])
	}
	if ra.Bytes > 4*BlockSize {
		t.Errorf("read %d bytes in %d requests of a %d-byte archive", ra.Bytes, ra.Reads, len(data))
	}
	t.Logf("%d ranged reads, %d bytes of %d", ra.Reads, ra.Bytes, len(data))
}

func TestBuildFlagsACorruptFile(t *testing.T) {
	t.Parallel()
	content := []byte(strings.Repeat("hello, world ", 100))
	data := zipOf(t, entry{"Portability/x/a.json", content, zip.Store})
	i := bytes.Index(data, content)
	data[i+5] ^= 0xFF
	m, err := Build(context.Background(), job, []Input{input(0, "a.zip", data, &memRanger{b: data})})
	if err != nil {
		t.Fatal(err)
	}
	if f := m.Archives[0].Files[0]; f.Check != CheckMismatch || m.Totals.Mismatches != 1 {
		t.Errorf("%+v, totals %+v", f, m.Totals)
	}
}

func TestBuildReturnsStorageErrors(t *testing.T) {
	t.Parallel()
	data := zipOf(t, entry{"a", []byte("x"), zip.Store})
	boom := errors.New("storage unavailable")
	_, err := Build(context.Background(), job, []Input{input(0, "a.zip", data, &memRanger{b: data, fail: boom})})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the storage error", err)
	}
}

func TestBuildDescribesATruncatedZip(t *testing.T) {
	t.Parallel()
	data := zipOf(t, entry{"a", []byte("x"), zip.Store})
	data = data[:len(data)-30] // no end of central directory
	m, err := Build(context.Background(), job, []Input{input(0, "a.zip", data, &memRanger{b: data})})
	if err != nil {
		t.Fatal(err)
	}
	if a := m.Archives[0]; a.Kind != KindOther || a.Error == "" {
		t.Errorf("%+v", a)
	}
}

func TestBuildReadsZip64(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 65,600 entries")
	}
	t.Parallel()
	// More than 65,535 entries makes archive/zip write a zip64 end of central directory.
	const n = 65600
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := range n {
		f, _ := w.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("e/%05d", i), Method: zip.Store})
		f.Write([]byte{byte(i)})
	}
	w.Close()
	data := buf.Bytes()
	if !bytes.Contains(data, []byte("PK\x06\x06")) {
		t.Fatal("no zip64 record written")
	}
	m, err := Build(context.Background(), job, []Input{input(0, "z.zip", data, &memRanger{b: data})})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Archives[0].Files); got != n || m.Totals.Mismatches != 0 {
		t.Errorf("%d files, %d mismatches", got, m.Totals.Mismatches)
	}
}

func TestObjectName(t *testing.T) {
	t.Parallel()
	if got, want := ObjectName("exports", "ana", "ana~1", "myactivity.search", "job/1"), "exports/ana/ana~1/myactivity.search/job%2F1/manifest.json"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
}

func TestReaderAt(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*BlockSize+17)
	for i := range data {
		data[i] = byte(i)
	}
	r := &memRanger{b: data}
	ra := NewReaderAt(context.Background(), r, int64(len(data)))
	for _, c := range []struct{ off, n int }{{0, 10}, {BlockSize - 5, 10}, {3 * BlockSize, 17}, {len(data) - 3, 3}, {5, 2 * BlockSize}} {
		p := make([]byte, c.n)
		if n, err := ra.ReadAt(p, int64(c.off)); n != c.n || (err != nil && err != io.EOF) || !bytes.Equal(p, data[c.off:c.off+c.n]) {
			t.Errorf("ReadAt(%d, %d) = %d, %v", c.off, c.n, n, err)
		}
	}
	if n, err := ra.ReadAt(make([]byte, 10), int64(len(data)-4)); n != 4 || err != io.EOF {
		t.Errorf("read past the end: %d, %v", n, err)
	}
	if r.reads != 4 {
		t.Errorf("%d ranged reads, want 4 (one per block)", r.reads)
	}
}
