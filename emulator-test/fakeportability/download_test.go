package fakeportability

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// completedJob runs one job of groups to COMPLETE and returns its URLs.
func (e *env) completedJob(user string, groups ...string) (string, []string) {
	e.t.Helper()
	svc, job := e.exported(user, "one-time", groups...)
	st := e.mustState(svc, job)
	if st.State != StateComplete {
		e.t.Fatalf("state = %s", st.State)
	}
	return job, st.Urls
}

func get(t *testing.T, u string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

func crc32cB64(b []byte) string {
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], crc32.Checksum(b, castagnoli))
	return base64.StdEncoding.EncodeToString(c[:])
}

func TestArchiveLayouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      Options
		groups    []string
		wantKinds []string
		browserIn int // file holding archive_browser.json
	}{
		{"default two files", Options{ArchiveSize: 300 << 10}, []string{"myactivity.search"}, []string{"zip", "zip"}, 1},
		{"single file", Options{URLsPerJob: 1, ArchiveSize: 100 << 10}, []string{"myactivity.search"}, []string{"zip"}, 0},
		{"bare JSON", Options{URLsPerJob: 3, ArchiveSize: 50 << 10, BareJSONResources: []string{"chrome.bookmarks"}}, []string{"chrome.bookmarks"}, []string{"json", "json", "zip"}, 2},
		{"two resources, many entries", Options{ArchiveSize: 1 << 20, EntrySize: 200 << 10}, []string{"myactivity.search", "youtube.channel"}, []string{"zip", "zip"}, 1},
		{"tiny", Options{ArchiveSize: 10}, []string{"maps.reviews"}, []string{"zip", "zip"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.opts)
			job, urls := e.completedJob("alice", tt.groups...)
			infos := e.srv.Jobs("alice")
			if len(infos) != 1 || infos[0].ID != job || len(infos[0].Files) != len(urls) || len(urls) != len(tt.wantKinds) {
				t.Fatalf("jobs = %+v, urls = %d", infos, len(urls))
			}
			for i, u := range urls {
				fi := infos[0].Files[i]
				resp, body := get(t, u)
				if resp.StatusCode != 200 || fi.Kind != tt.wantKinds[i] || int64(len(body)) != fi.Size || resp.ContentLength != fi.Size {
					t.Fatalf("file %d: status %d kind %s, %d bytes, info %+v", i, resp.StatusCode, fi.Kind, len(body), fi)
				}
				sum := md5.Sum(body)
				wantHash := "crc32c=" + crc32cB64(body) + ",md5=" + base64.StdEncoding.EncodeToString(sum[:])
				if h := resp.Header.Get("x-goog-hash"); h != wantHash || fi.CRC32C != crc32cB64(body) {
					t.Fatalf("file %d: x-goog-hash %q, want %q (info %s)", i, h, wantHash, fi.CRC32C)
				}
				if fi.Kind == "json" {
					if !json.Valid(body) || fi.Size != tt.opts.ArchiveSize {
						t.Fatalf("file %d: bare JSON invalid or size %d", i, fi.Size)
					}
					continue
				}
				zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
				if err != nil {
					t.Fatalf("file %d: %v", i, err)
				}
				var got []EntryInfo
				for _, f := range zr.File {
					rc, _ := f.Open()
					content, err := io.ReadAll(rc) // checks the CRC
					if err != nil {
						t.Fatalf("entry %s: %v", f.Name, err)
					}
					if f.Name == "Portability/archive_browser.json" {
						if i != tt.browserIn || !strings.Contains(string(content), `"is_incomplete": false`) {
							t.Fatalf("archive_browser.json in file %d: %s", i, content)
						}
					} else if !strings.HasPrefix(f.Name, "Portability/") || (len(content) > 12 && !json.Valid(content)) {
						t.Fatalf("entry %s: bad name or content", f.Name)
					}
					got = append(got, EntryInfo{Path: f.Name, Size: int64(f.UncompressedSize64), CRC32: f.CRC32})
				}
				if !slices.Equal(got, fi.Entries) {
					t.Fatalf("file %d entries:\n got %+v\nwant %+v", i, got, fi.Entries)
				}
				if i != tt.browserIn && tt.opts.ArchiveSize > 1000 && fi.Size != tt.opts.ArchiveSize {
					t.Fatalf("data zip size = %d, want %d", fi.Size, tt.opts.ArchiveSize)
				}
			}
		})
	}
}

func TestArchiveContentDoesNotDependOnJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.completedJob("alice", "myactivity.search")
	e.completedJob("bob", "myactivity.search")
	jobs := e.srv.Jobs("")
	if len(jobs) != 2 || jobs[0].Files[0].CRC32C != jobs[1].Files[0].CRC32C || jobs[0].Files[0].MD5 != jobs[1].Files[0].MD5 {
		t.Fatalf("jobs = %+v", jobs)
	}
}

func TestRanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ArchiveSize: 200 << 10})
	_, urls := e.completedJob("alice", "myactivity.search")
	_, full := get(t, urls[0])
	n := int64(len(full))
	tests := []struct {
		rng       string
		code      int
		from, to  int64 // inclusive
		wantRange string
	}{
		{"bytes=0-99", 206, 0, 99, fmt.Sprintf("bytes 0-99/%d", n)},
		{"bytes=70000-140000", 206, 70000, 140000, fmt.Sprintf("bytes 70000-140000/%d", n)},
		{fmt.Sprintf("bytes=%d-", n-10), 206, n - 10, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-10, n-1, n)},
		{"bytes=-5", 206, n - 5, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-5, n-1, n)},
		{fmt.Sprintf("bytes=%d-", n), 416, 0, -1, fmt.Sprintf("bytes */%d", n)},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, urls[0], "Range", tt.rng)
			if resp.StatusCode != tt.code || resp.Header.Get("Content-Range") != tt.wantRange {
				t.Fatalf("status %d Content-Range %q, want %d %q", resp.StatusCode, resp.Header.Get("Content-Range"), tt.code, tt.wantRange)
			}
			if tt.code == 206 && !bytes.Equal(body, full[tt.from:tt.to+1]) {
				t.Fatalf("range body differs")
			}
			if tt.code == 206 && resp.Header.Get("x-goog-hash") == "" {
				t.Fatal("no whole-object hash on a range answer")
			}
		})
	}
}

// setQuery returns u with query parameter k set to v (the rest of the signed URL unchanged).
func setQuery(t *testing.T, u, k, v string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	q.Set(k, v)
	p.RawQuery = q.Encode()
	return p.String()
}

func wantStorageError(t *testing.T, what, u string, status int, code string) {
	t.Helper()
	resp, body := get(t, u)
	if resp.StatusCode != status || !strings.Contains(string(body), "<Code>"+code+"</Code>") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
		t.Fatalf("%s: %d %s %s, want %d %s", what, resp.StatusCode, resp.Header.Get("Content-Type"), body, status, code)
	}
}

func TestSignedURLLifetime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	svc, job := e.exported("alice", "one-time", "myactivity.search")
	first := e.mustState(svc, job).Urls[0]
	p, err := url.Parse(first)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	for k, want := range map[string]string{"X-Goog-Algorithm": "GOOG4-HMAC-SHA256", "X-Goog-Expires": "21600", "X-Goog-SignedHeaders": "host"} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if !strings.HasSuffix(q.Get("X-Goog-Credential"), "/auto/storage/goog4_request") || len(q.Get("X-Goog-Date")) != len("20060102T150405Z") ||
		!strings.Contains(p.RawQuery, "&X-Goog-Signature=") || !strings.HasPrefix(p.RawQuery, "X-Goog-Algorithm=") {
		t.Errorf("not a V4 signed URL query: %s", p.RawQuery)
	}
	if resp, _ := get(t, first); resp.StatusCode != 200 {
		t.Fatalf("fresh URL: %d", resp.StatusCode)
	}
	// A tampered signature, a signature moved to another file, an extended lifetime: 403.
	wantStorageError(t, "tampered", first[:len(first)-3]+"aaa", 403, "SignatureDoesNotMatch")
	wantStorageError(t, "other file", strings.Replace(first, "-000.zip", "-001.zip", 1), 403, "SignatureDoesNotMatch")
	wantStorageError(t, "longer lifetime", setQuery(t, first, "X-Goog-Expires", "604800"), 403, "SignatureDoesNotMatch")
	// Malformed date or expiry: 400 MalformedSecurityHeader, naming the parameter.
	for name, u := range map[string]string{
		"bad date":       setQuery(t, first, "X-Goog-Date", "2026-12-01T00:00:00Z"),
		"no date":        setQuery(t, first, "X-Goog-Date", ""),
		"bad expires":    setQuery(t, first, "X-Goog-Expires", "6h"),
		"expires > 7d":   setQuery(t, first, "X-Goog-Expires", "604801"),
		"expires zero":   setQuery(t, first, "X-Goog-Expires", "0"),
		"no expires key": strings.Replace(first, "X-Goog-Expires=", "X-Goog-Exp=", 1),
	} {
		wantStorageError(t, name, u, 400, "MalformedSecurityHeader")
	}
	if _, body := get(t, setQuery(t, first, "X-Goog-Expires", "x")); !strings.Contains(string(body), "<ParameterName>x-goog-expires</ParameterName>") {
		t.Errorf("malformed expiry does not name the parameter: %s", body)
	}
	// Expired after 6 h: 400 ExpiredToken, as Cloud Storage answers.
	e.srv.Clock().Advance(6*time.Hour + time.Second)
	resp, body := get(t, first)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "<Code>ExpiredToken</Code><Message>Invalid argument.</Message><Details>The provided token has expired.") {
		t.Fatalf("expired: %d %s", resp.StatusCode, body)
	}
	// The grant's access token expired with the clock: use a fresh consent of the same user to read the state.
	svc2, _ := e.grant("alice", "one-time", "myactivity.search")
	fresh := e.mustState(svc2, job).Urls[0]
	if fresh == first {
		t.Fatal("state call returned the same signed URL")
	}
	if resp, _ := get(t, fresh); resp.StatusCode != 200 {
		t.Fatalf("refreshed URL: %d", resp.StatusCode)
	}
	// After 14 days the data is gone, even through a fresh URL.
	e.srv.Clock().Advance(14 * 24 * time.Hour)
	svc3, _ := e.grant("alice", "one-time", "myactivity.search")
	gone := e.mustState(svc3, job).Urls[0]
	wantStorageError(t, "after retention", gone, 404, "NoSuchKey")
}

// The switch keeps the older answer to an expired URL (403 ExpiredToken) testable.
func TestExpiredURL403(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ExpiredURL403: true})
	_, urls := e.completedJob("alice", "myactivity.search")
	e.srv.Clock().Advance(6*time.Hour + time.Second)
	wantStorageError(t, "expired", urls[0], 403, "ExpiredToken")
}

// Odd answers Cloud Storage or a proxy in front of it can give, each a download fault.
func TestOddDownloadAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ArchiveSize: 64 << 10})
	_, urls := e.completedJob("alice", "myactivity.search")
	_, whole := get(t, urls[0])
	inject := func(d DownloadFault) {
		t.Helper()
		if err := e.srv.InjectFault(Fault{Download: &d}); err != nil {
			t.Fatal(err)
		}
	}

	inject(DownloadFault{Status: 403, Code: "AccessDenied"})
	wantStorageError(t, "access denied", urls[0], 403, "AccessDenied")
	inject(DownloadFault{Status: 404, Code: "NoSuchKey"})
	wantStorageError(t, "404 inside retention", urls[0], 404, "NoSuchKey")

	inject(DownloadFault{NoHash: true})
	if resp, _ := get(t, urls[0]); resp.StatusCode != 200 || resp.Header.Get("x-goog-hash") != "" {
		t.Errorf("no hash: %d %q", resp.StatusCode, resp.Header.Get("x-goog-hash"))
	}
	inject(DownloadFault{NoCRC32C: true})
	if resp, _ := get(t, urls[0]); !strings.HasPrefix(resp.Header.Get("x-goog-hash"), "md5=") || strings.Contains(resp.Header.Get("x-goog-hash"), "crc32c") {
		t.Errorf("no crc32c: %q", resp.Header.Get("x-goog-hash"))
	}
	inject(DownloadFault{NoContentLength: true})
	if resp, b := get(t, urls[0]); resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "" || !bytes.Equal(b, whole) {
		t.Errorf("no Content-Length: length %d, %d bytes", resp.ContentLength, len(b))
	}
	inject(DownloadFault{IgnoreRange: true})
	if resp, b := get(t, urls[0], "Range", "bytes=100-199"); resp.StatusCode != 200 || !bytes.Equal(b, whole) {
		t.Errorf("range ignored: %d, %d bytes", resp.StatusCode, len(b))
	}
	inject(DownloadFault{ShortBy: 10})
	if resp, b := get(t, urls[0], "Range", "bytes=100-199"); resp.StatusCode != 206 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(whole)) ||
		len(b) != 90 || !bytes.Equal(b, whole[100:190]) {
		t.Errorf("short 206: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
	}
	inject(DownloadFault{RedirectTo: "https://elsewhere.invalid/object"})
	req, _ := http.NewRequest("GET", urls[0], nil)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://elsewhere.invalid/object" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Faults used up: the plain answer again.
	if resp, b := get(t, urls[0], "Range", "bytes=0-9"); resp.StatusCode != 206 || !bytes.Equal(b, whole[:10]) || !strings.Contains(resp.Header.Get("x-goog-hash"), "crc32c=") {
		t.Errorf("after the faults: %d", resp.StatusCode)
	}
	if err := e.srv.InjectFault(Fault{Download: &DownloadFault{Status: 200}}); err == nil {
		t.Error("a 200 download fault was accepted")
	}
}

func TestDownloadFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ArchiveSize: 256 << 10})
	_, urls := e.completedJob("alice", "myactivity.search")
	_, good := get(t, urls[0])
	cut, corrupt := int64(1000), int64(12345)

	// Cut: the connection closes after 1000 body bytes.
	e.srv.InjectFault(Fault{Download: &DownloadFault{CutAfterBytes: &cut}})
	resp, err := http.Get(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || int64(len(b)) != cut || !bytes.Equal(b, good[:cut]) {
		t.Fatalf("cut: %d bytes, err %v", len(b), err)
	}
	// Corrupt: one byte flipped; the CRC32C no longer matches x-goog-hash.
	e.srv.InjectFault(Fault{Download: &DownloadFault{CorruptAt: &corrupt}})
	resp, b = get(t, urls[0])
	if resp.StatusCode != 200 || bytes.Equal(b, good) || b[corrupt] == good[corrupt] || !bytes.Equal(b[:corrupt], good[:corrupt]) ||
		strings.Contains(resp.Header.Get("x-goog-hash"), crc32cB64(b)) {
		t.Fatal("corrupt fault not applied as asked")
	}
	// Slow start, twice.
	e.srv.InjectFault(Fault{Download: &DownloadFault{SlowStartMs: 200, Count: 2}})
	for range 2 {
		start := time.Now()
		get(t, urls[0], "Range", "bytes=0-9")
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Fatalf("slow start took %v", d)
		}
	}
	// Faults used up: a clean download.
	if _, b := get(t, urls[0]); !bytes.Equal(b, good) {
		t.Fatal("download after the faults differs")
	}
}

func TestBandwidthLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ArchiveSize: 300 << 10, BandwidthLimit: 1 << 20})
	_, urls := e.completedJob("alice", "myactivity.search")
	e.srv.Jobs("") // hashing done before timing
	start := time.Now()
	_, b := get(t, urls[0])
	if d := time.Since(start); d < 200*time.Millisecond || len(b) != 300<<10 {
		t.Fatalf("%d bytes at 1 MiB/s took %v", len(b), d)
	}
}

// httpReaderAt reads an object by Range requests (for archive/zip on a huge file).
type httpReaderAt struct {
	t   *testing.T
	url string
}

func (h httpReaderAt) ReadAt(p []byte, off int64) (int, error) {
	resp, body := get(h.t, h.url, "Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	if resp.StatusCode != 206 {
		return 0, fmt.Errorf("range: %d", resp.StatusCode)
	}
	n := copy(p, body)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestLargeArchive streams a 5 GiB zip (zip64 offsets), checks its CRC32C against x-goog-hash in bounded memory,
// and reads its central directory through ranges.
func TestLargeArchive(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("5 GiB stream: skipped with -short and -race")
	}
	const size = 5 << 30
	// md5 is skipped above 1 GiB (as for composite objects): MD5 runs at about 0.5 GB/s and would dominate.
	e := newEnv(t, Options{ArchiveSize: size, URLsPerJob: 1, MD5MaxSize: 1 << 30})
	start := time.Now()
	_, urls := e.completedJob("alice", "myactivity.youtube")
	info := e.srv.Jobs("alice")[0].Files[0]
	hashTime := time.Since(start)

	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	start = time.Now()
	resp, err := http.Get(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	h := crc32.New(castagnoli)
	n, err := io.CopyBuffer(h, resp.Body, make([]byte, 1<<20))
	resp.Body.Close()
	streamTime := time.Since(start)
	close(done)
	if err != nil || n != info.Size || resp.ContentLength != info.Size {
		t.Fatalf("streamed %d of %d: %v", n, info.Size, err)
	}
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], h.Sum32())
	got := base64.StdEncoding.EncodeToString(c[:])
	if resp.Header.Get("x-goog-hash") != "crc32c="+got || got != info.CRC32C || info.MD5 != "" {
		t.Fatalf("crc32c %s, header %q, info %s", got, resp.Header.Get("x-goog-hash"), info.CRC32C)
	}
	if p := peak.Load(); p > 64<<20 {
		t.Fatalf("heap in use peaked at %d MiB", p>>20)
	}
	t.Logf("5 GiB: hashing (entry crc32 + object crc32c) %v; stream %v = %.0f MB/s; peak heap in use %d MiB",
		hashTime.Round(time.Millisecond), streamTime.Round(time.Millisecond), float64(n)/streamTime.Seconds()/1e6, peak.Load()>>20)

	zr, err := zip.NewReader(httpReaderAt{t, urls[0]}, info.Size)
	if err != nil {
		t.Fatalf("zip64 central directory: %v", err)
	}
	var entries []EntryInfo
	for _, f := range zr.File {
		entries = append(entries, EntryInfo{Path: f.Name, Size: int64(f.UncompressedSize64), CRC32: f.CRC32})
	}
	if !slices.Equal(entries, info.Entries) || len(entries) < 11 {
		t.Fatalf("entries = %+v, want %+v", entries, info.Entries)
	}
	// The last data entry, beyond 4 GiB, starts where its zip64 offset says.
	last := zr.File[len(zr.File)-2]
	if off, err := last.DataOffset(); err != nil || off < 1<<32 {
		t.Fatalf("last data entry at %d (%v), want beyond 4 GiB", off, err)
	}
	rc, err := last.Open()
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, len(jsonPrefix))
	if _, err := io.ReadFull(rc, head); err != nil || string(head) != jsonPrefix {
		t.Fatalf("read %s: %q %v", last.Name, head, err)
	}
}
