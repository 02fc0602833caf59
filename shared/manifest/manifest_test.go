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
	bytes int64
}

func (m *memRanger) ReadRange(_ context.Context, off, n int64) ([]byte, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	m.reads++
	m.bytes += n
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
	return Input{Index: i, Object: "exports/u/u~1/r/j/" + fmt.Sprint(i) + "-" + name, SourceName: name, Size: int64(len(data)), Source: r}
}

var job = Job{User: "u", Round: "u~1", Resource: "myactivity.search", Job: "j", ExportTime: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}

const browserJSON = `{"services":[{"name":"My Activity","is_incomplete":true,"folders":[{"name":"Search","resource":"myactivity.search","is_incomplete":true}]}]}`

func TestBuildListsZipFilesAndServices(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), (1<<20+1024)/16)
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
	if f := a.Files[0]; f.Path != "Portability/My Activity/Search/a.json" || f.Size != 7 || f.CRC32 != crc32.ChecksumIEEE([]byte(`{"a":1}`)) || f.CompressedSize == 0 {
		t.Errorf("file 0: %+v", f)
	}
	if f := a.Files[1]; f.Size != int64(len(big)) || f.CRC32 != crc32.ChecksumIEEE(big) {
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
	m, err := Build(context.Background(), job, []Input{input(0, "a.zip", data, r)})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Archives[0].Files) != 2 || m.Archives[0].Files[1].Path != "Portability/x/small.json" {
		t.Fatalf("%+v", m.Archives[0])
	}
	if r.bytes > 1<<20 {
		t.Errorf("read %d bytes in %d requests of a %d-byte archive", r.bytes, r.reads, len(data))
	}
	if a := m.Archives[0]; a.BytesRead != r.bytes || m.Totals.BytesRead != r.bytes {
		t.Errorf("manifest says %d (%d) bytes read, the source served %d", a.BytesRead, m.Totals.BytesRead, r.bytes)
	}
	t.Logf("%d ranged reads, %d bytes of %d", r.reads, r.bytes, len(data))
}

// manyFiles is a zip of n stored entries of size bytes (pseudo-random, so the sizes are real) and an
// archive_browser.json, and the size of its central directory with the end records.
func manyFiles(t testing.TB, n, size int) (data []byte, directory int64) {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	content := make([]byte, size)
	x := uint32(1)
	for i := range n {
		for j := range content {
			x = x*1664525 + 1013904223
			content[j] = byte(x >> 24)
		}
		f, err := w.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("Portability/Maps/Timeline/%05d.json", i), Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(content)
	}
	f, _ := w.CreateHeader(&zip.FileHeader{Name: "Portability/archive_browser.json", Method: zip.Deflate})
	f.Write([]byte(browserJSON))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	start := buf.Len()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), int64(buf.Len() - start)
}

// An archive of many small files is listed from its central directory: nothing but the directory, its end
// records and archive_browser.json is read, so the manifest never downloads the archive a second time.
func TestBuildOfManySmallFilesReadsOnlyTheDirectory(t *testing.T) {
	t.Parallel()
	const n = 10000
	data, dir := manyFiles(t, n, 2048)
	r := &memRanger{b: data}
	m, err := Build(context.Background(), job, []Input{input(0, "a.zip", data, r)})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Archives[0].Files); got != n+1 {
		t.Fatalf("%d files listed, want %d", got, n+1)
	}
	if f := m.Archives[0].Files[7]; f.Path != "Portability/Maps/Timeline/00007.json" || f.Size != 2048 || f.CRC32 != crc32.ChecksumIEEE(data[bytes.Index(data, []byte(f.Path))+len(f.Path):][:2048]) {
		t.Errorf("file 7: %+v", f)
	}
	if len(m.Services) != 1 || m.Services[0].Name != "My Activity" {
		t.Errorf("services: %+v", m.Services)
	}
	t.Logf("read %d bytes in %d requests of a %d-byte archive whose directory is %d bytes", r.bytes, r.reads, len(data), dir)
	if r.bytes > dir+1<<20 {
		t.Errorf("read %d bytes, more than the directory (%d) + 1 MiB", r.bytes, dir)
	}
}

// A damaged archive_browser.json (the one entry the manifest reads) is reported, not listed; the other
// files are listed as the directory has them.
func TestBuildReportsACorruptBrowserFile(t *testing.T) {
	t.Parallel()
	data := zipOf(t, entry{"Portability/x/a.json", []byte("{}"), zip.Store}, entry{BrowserPath, []byte(browserJSON), zip.Store})
	i := bytes.Index(data, []byte(browserJSON))
	data[i+5] ^= 0xFF
	m, err := Build(context.Background(), job, []Input{input(0, "a.zip", data, &memRanger{b: data})})
	if err != nil {
		t.Fatal(err)
	}
	if a := m.Archives[0]; len(a.Files) != 2 || !strings.Contains(a.Error, "checksum") || len(m.Services) != 0 {
		t.Errorf("%+v, services %+v", a, m.Services)
	}
}

// A huge archive_browser.json is not read (the read stays bounded); the archive says why its services
// are missing.
func TestBuildSkipsAHugeBrowserFile(t *testing.T) {
	t.Parallel()
	big := make([]byte, maxBrowserCompressed+1)
	for i := range big {
		big[i] = byte(i * 31)
	}
	data := zipOf(t, entry{BrowserPath, big, zip.Store})
	r := &memRanger{b: data}
	m, err := Build(context.Background(), job, []Input{input(0, "a.zip", data, r)})
	if err != nil {
		t.Fatal(err)
	}
	if a := m.Archives[0]; len(a.Files) != 1 || !strings.Contains(a.Error, "not listed") || r.bytes > 128<<10 {
		t.Errorf("%+v, read %d bytes", a, r.bytes)
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
	if got := len(m.Archives[0].Files); got != n {
		t.Errorf("%d files", got)
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
	data := make([]byte, 3*minAhead+17)
	for i := range data {
		data[i] = byte(i)
	}
	r := &memRanger{b: data}
	ra := NewReaderAt(context.Background(), r, int64(len(data)))
	size := len(data)
	for _, c := range []struct {
		off, n       int
		reads, bytes int // the source's totals after the read
	}{
		{size - 10, 10, 1, 10},                 // the tail: up to the end
		{0, 10, 2, 10 + minAhead},              // read-ahead
		{minAhead - 5, 10, 3, 10 + 3*minAhead}, // continues: a doubled fetch from its end
		{5, 20, 3, 10 + 3*minAhead},            // held
		{2 * minAhead, minAhead + 7, 4, size},  // stops where the tail starts: nothing twice
		{size - 3, 3, 4, size},                 // held
		{minAhead / 2, 2 * minAhead, 4, size},  // spans held ranges
	} {
		p := make([]byte, c.n)
		if n, err := ra.ReadAt(p, int64(c.off)); n != c.n || (err != nil && err != io.EOF) || !bytes.Equal(p, data[c.off:c.off+c.n]) {
			t.Errorf("ReadAt(%d, %d) = %d, %v", c.off, c.n, n, err)
		}
		if r.reads != c.reads || r.bytes != int64(c.bytes) {
			t.Errorf("after ReadAt(%d, %d): %d requests, %d bytes; want %d, %d", c.off, c.n, r.reads, r.bytes, c.reads, c.bytes)
		}
	}
	if n, err := ra.ReadAt(make([]byte, 10), int64(len(data)-4)); n != 4 || err != io.EOF {
		t.Errorf("read past the end: %d, %v", n, err)
	}
	if reads, n := ra.Fetched(); reads != r.reads || n != r.bytes {
		t.Errorf("ReaderAt counts %d, %d; source %d, %d", reads, n, r.reads, r.bytes)
	}
}
