package copyengine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/copyengine/copyenginetest"
)

const kib = 1 << 10

// quickStall is how long fastOpts waits on a stalled body before resuming.
const quickStall = 200 * time.Millisecond

// fastOpts retries quickly.
func fastOpts(prefix string) copyengine.CopyOptions {
	return copyengine.CopyOptions{TempPrefix: prefix, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, BufferSize: 16 * kib, StallTimeout: quickStall}
}

// noSecret fails the test if err's text holds the signature.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if s := err.Error(); strings.Contains(s, copyenginetest.Secret) || strings.Contains(s, "X-Goog-Signature") || strings.Contains(s, "X-Goog-Credential") {
		t.Errorf("error leaks the signed URL: %s", s)
	}
}

// refresher issues fresh URLs of src and counts the calls.
type refresher struct {
	src   *copyenginetest.Source
	calls atomic.Int32
}

func (r *refresher) refresh(ctx context.Context) (string, error) {
	r.calls.Add(1)
	return r.src.SignedURL(), nil
}

// run probes, plans, copies and composes like the transfer function does.
func run(t *testing.T, src *copyenginetest.Source, sink copyengine.Sink, partSize int64, inFlight int, refresh copyengine.RefreshFunc, stall time.Duration) (copyengine.ObjectResult, []copyengine.PartResult, error) {
	t.Helper()
	ctx := context.Background()
	u := src.SignedURL()
	s, err := copyengine.Probe(ctx, nil, u)
	noSecret(t, err)
	if err != nil {
		return copyengine.ObjectResult{}, nil, err
	}
	parts := copyengine.Plan(s.Size, copyengine.PlanOptions{PartSize: partSize})
	prefix := copyengine.TempPrefix("u1", "u1~1", "myactivity.search", "job1", 0)
	rs := copyengine.NewURLSource(nil, u, s.Size, refresh)
	opts := fastOpts(prefix)
	opts.StallTimeout = stall
	results, err := copyengine.CopyAll(ctx, rs, sink, parts, inFlight, opts)
	noSecret(t, err)
	if err != nil {
		return copyengine.ObjectResult{}, nil, err
	}
	final := copyengine.ObjectName("exports", "u1", "u1~1", "myactivity.search", "job1", 0, s.Name)
	res, err := copyengine.Compose(ctx, sink, final, results, copyengine.ComposeOptions{
		SourceCRC32C: s.CRC32C, ContentType: s.ContentType,
		Metadata: map[string]string{"resource": "myactivity.search", "job": "job1"},
	})
	noSecret(t, err)
	return res, results, err
}

// copyCase is one copy through run: a source of size bytes with faults, copied in parts of partSize
// (refreshing its URL when refresh is set), and what should come of it.
type copyCase struct {
	name       string
	size       int64
	partSize   int64
	faults     copyenginetest.Faults
	refresh    bool
	wantErr    error
	wantClass  copyengine.Class
	wantResume bool
}

// stored is what a test reads back from a sink: the names of its objects and an object's content.
type stored interface {
	Names() []string
	Data(name string) ([]byte, bool)
}

// check copies tc's source into sink, inFlight parts at a time, and checks the outcome in what the sink
// stored: after a failure nothing; after a success only the final object, equal to the source, with its
// checksum and attributes.
func (tc copyCase) check(t *testing.T, sink copyengine.Sink, objects stored, inFlight int) {
	t.Helper()
	src := copyenginetest.NewSource(tc.size, tc.faults)
	defer src.Close()
	var refresh copyengine.RefreshFunc
	rf := &refresher{src: src}
	if tc.refresh {
		refresh = rf.refresh
	}
	// A stall is given up on after this long: briefly where the source stalls on purpose, otherwise long
	// enough that a loaded machine (CI runs -race on 2 cores) never takes a slow scheduler for a stall and
	// resumes a part nothing cut, which the resumes check below would report.
	stall := 10 * time.Second
	if tc.faults.StallTimes > 0 {
		stall = quickStall
	}
	res, parts, err := run(t, src, sink, tc.partSize, inFlight, refresh, stall)
	if tc.wantErr != nil || tc.wantClass != 0 {
		if err == nil {
			t.Fatalf("no error, want %v / %v", tc.wantErr, tc.wantClass)
		}
		if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("error %v, want %v", err, tc.wantErr)
		}
		if c := copyengine.Classify(err); tc.wantClass != 0 && c != tc.wantClass {
			t.Errorf("class %v, want %v (%v)", c, tc.wantClass, err)
		}
		// Nothing committed: no final object, no part objects.
		if names := objects.Names(); len(names) != 0 {
			t.Errorf("objects left after failure: %v", names)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	data, ok := objects.Data(res.Name)
	if !ok {
		t.Fatalf("no final object %s (have %v)", res.Name, objects.Names())
	}
	if !bytes.Equal(data, copyenginetest.Bytes(0, tc.size)) {
		t.Fatalf("final object differs from the source (%d vs %d bytes)", len(data), tc.size)
	}
	if res.CRC32C != src.CRC32C || res.Size != tc.size {
		t.Errorf("result %+v, want crc %08x size %d", res, src.CRC32C, tc.size)
	}
	if names := objects.Names(); len(names) != 1 {
		t.Errorf("temporaries left: %v", names)
	}
	info, err := sink.Attrs(context.Background(), res.Name)
	if err != nil {
		t.Fatal(err)
	}
	if info.CRC32C != src.CRC32C || info.ContentType != "application/zip" || info.Metadata["resource"] != "myactivity.search" || info.Metadata["job"] != "job1" {
		t.Errorf("attrs %+v, want crc %08x, type application/zip, metadata of resource and job", info, src.CRC32C)
	}
	resumes := 0
	for _, p := range parts {
		resumes += p.Resumes
	}
	if tc.wantResume != (resumes > 0) {
		t.Errorf("resumes = %d, want resumes: %v", resumes, tc.wantResume)
	}
	if tc.refresh && rf.calls.Load() == 0 {
		t.Errorf("URL never refreshed")
	}
}

func TestCopyAndCompose(t *testing.T) {
	t.Parallel()
	tests := []copyCase{
		{name: "multi-part", size: 3*256*kib + 123, partSize: 256 * kib},
		{name: "one part", size: 1000, partSize: 256 * kib},
		{name: "exact multiple", size: 4 * 64 * kib, partSize: 64 * kib},
		{name: "zero bytes", size: 0, partSize: 64 * kib},
		{name: "tree of 70 parts", size: 70*4*kib - 5, partSize: 4 * kib},
		{name: "cut twice", size: 512 * kib, partSize: 256 * kib, faults: copyenginetest.Faults{CutAfter: 100 * kib, CutTimes: 2}, wantResume: true},
		{name: "cut often", size: 512 * kib, partSize: 512 * kib, faults: copyenginetest.Faults{CutAfter: 10 * kib, CutTimes: 30}, wantResume: true},
		{name: "stall", size: 300 * kib, partSize: 256 * kib, faults: copyenginetest.Faults{StallAfter: 10 * kib, StallTimes: 2}, wantResume: true},
		{name: "stall before the body", size: 300 * kib, partSize: 256 * kib, faults: copyenginetest.Faults{StallAfter: 0, StallTimes: 1}, wantResume: true},
		{name: "503 once", size: 300 * kib, partSize: 256 * kib, faults: copyenginetest.Faults{Fail503: 1}, wantResume: true},
		{name: "URL expires, refreshed", size: 600 * kib, partSize: 256 * kib, faults: copyenginetest.Faults{URLRequests: 2, CutAfter: 50 * kib, CutTimes: 1}, refresh: true, wantResume: true},
		{name: "URL expires, no refresh", size: 600 * kib, partSize: 256 * kib, faults: copyenginetest.Faults{URLRequests: 2}, wantClass: copyengine.URLExpired},
		{name: "cut without progress", size: 100 * kib, partSize: 256 * kib, faults: copyenginetest.Faults{CutAfter: 0, CutTimes: 100}, wantClass: copyengine.Retryable},
		{name: "503 forever", size: 100 * kib, partSize: 256 * kib, faults: copyenginetest.Faults{Fail503: 100}, wantClass: copyengine.Retryable},
		{name: "corrupt byte", size: 700 * kib, partSize: 256 * kib, faults: copyenginetest.Faults{Corrupt: true, CorruptAt: 300*kib + 17}, wantErr: copyengine.ErrChecksumMismatch, wantClass: copyengine.Retryable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := copyenginetest.NewMemSink()
			tc.check(t, sink, sink, 3)
		})
	}
}

// TestResumeRange checks a cut part resumes from the byte it reached.
func TestResumeRange(t *testing.T) {
	t.Parallel()
	src := copyenginetest.NewSource(256*kib, copyenginetest.Faults{CutAfter: 100 * kib, CutTimes: 1})
	defer src.Close()
	sink := copyenginetest.NewMemSink()
	u := src.SignedURL()
	rs := copyengine.NewURLSource(nil, u, src.Size, nil)
	part := copyengine.Part{Index: 0, Offset: 0, Length: 200 * kib}
	res, err := copyengine.CopyPart(context.Background(), rs, sink, part, fastOpts("tmp/x/"))
	if err != nil {
		t.Fatal(err)
	}
	var ranges []string
	for _, r := range src.Requests() {
		ranges = append(ranges, r.Range)
	}
	want := []string{"bytes=0-204799", fmt.Sprintf("bytes=%d-204799", 100*kib)}
	if fmt.Sprint(ranges) != fmt.Sprint(want) {
		t.Errorf("ranges %v, want %v", ranges, want)
	}
	data, _ := sink.Data(res.Name)
	if !bytes.Equal(data, copyenginetest.Bytes(0, 200*kib)) || res.Resumes != 1 {
		t.Errorf("part differs or resumes=%d", res.Resumes)
	}
}

// TestRefreshOnceForConcurrentCopies: copies that see the same expired URL
// refresh it once.
func TestRefreshOnceForConcurrentCopies(t *testing.T) {
	t.Parallel()
	size := int64(8 * 64 * kib)
	old := copyenginetest.NewSource(size, copyenginetest.Faults{URLRequests: 1})
	defer old.Close()
	expired := old.SignedURL()
	resp, err := http.Get(expired) // spends its only request
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fresh := copyenginetest.NewSource(size, copyenginetest.Faults{})
	defer fresh.Close()
	var calls atomic.Int32
	rs := copyengine.NewURLSource(nil, expired, size, func(ctx context.Context) (string, error) {
		calls.Add(1)
		time.Sleep(20 * time.Millisecond) // a slow state call
		return fresh.SignedURL(), nil
	})
	parts := copyengine.Plan(size, copyengine.PlanOptions{PartSize: 64 * kib})
	if _, err := copyengine.CopyAll(context.Background(), rs, copyenginetest.NewDiscardSink(), parts, 8, fastOpts("tmp/y/")); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("refreshed %d times, want 1", n)
	}
}

func TestComposeIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, n := range []int{3, 40} {
		t.Run(fmt.Sprint(n, " parts"), func(t *testing.T) {
			t.Parallel()
			size := int64(n) * 4 * kib
			src := copyenginetest.NewSource(size, copyenginetest.Faults{})
			defer src.Close()
			sink := copyenginetest.NewMemSink()
			rs := copyengine.NewURLSource(nil, src.SignedURL(), size, nil)
			parts, err := copyengine.CopyAll(ctx, rs, sink, copyengine.Plan(size, copyengine.PlanOptions{PartSize: 4 * kib}), 4, fastOpts("tmp/z/"))
			if err != nil {
				t.Fatal(err)
			}
			opts := copyengine.ComposeOptions{SourceCRC32C: src.CRC32C, ContentType: "application/zip"}
			first, err := copyengine.Compose(ctx, sink, "exports/final", parts, opts)
			if err != nil {
				t.Fatal(err)
			}
			composes := sink.Composes()
			// Redelivery after success: temporaries are gone, final is good.
			second, err := copyengine.Compose(ctx, sink, "exports/final", parts, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !second.AlreadyDone || first.AlreadyDone || second.CRC32C != first.CRC32C || second.Size != first.Size {
				t.Errorf("first %+v, second %+v", first, second)
			}
			if sink.Composes() != composes {
				t.Errorf("second call composed again")
			}
			if names := sink.Names(); len(names) != 1 || names[0] != "exports/final" {
				t.Errorf("objects %v", names)
			}
		})
	}
}

// TestComposeTemporariesLeft: the first call composed but died before the
// cleanup: a second call verifies and deletes the temporaries.
func TestComposeTemporariesLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	size := int64(40 * kib)
	src := copyenginetest.NewSource(size, copyenginetest.Faults{})
	defer src.Close()
	sink := copyenginetest.NewMemSink()
	rs := copyengine.NewURLSource(nil, src.SignedURL(), size, nil)
	parts, err := copyengine.CopyAll(ctx, rs, sink, copyengine.Plan(size, copyengine.PlanOptions{PartSize: kib}), 4, fastOpts("tmp/w/"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	// Compose by hand (two levels) as an interrupted first call would.
	if _, err := sink.Compose(ctx, "tmp/w/compose-1-00000", names[:32], copyengine.ObjectAttrs{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Compose(ctx, "tmp/w/compose-1-00001", names[32:], copyengine.ObjectAttrs{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Compose(ctx, "final", []string{"tmp/w/compose-1-00000", "tmp/w/compose-1-00001"}, copyengine.ObjectAttrs{}); err != nil {
		t.Fatal(err)
	}
	res, err := copyengine.Compose(ctx, sink, "final", parts, copyengine.ComposeOptions{SourceCRC32C: src.CRC32C})
	if err != nil || !res.AlreadyDone {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if got := sink.Names(); len(got) != 1 {
		t.Errorf("left: %v", got)
	}
}

// lateSink hides the final object from the first Attrs call, as when a
// concurrent delivery composes and cleans up between our check and compose.
type lateSink struct {
	*copyenginetest.MemSink
	hidden atomic.Bool
}

func (s *lateSink) Attrs(ctx context.Context, name string) (copyengine.ObjectInfo, error) {
	if name == "final" && s.hidden.CompareAndSwap(false, true) {
		return copyengine.ObjectInfo{}, copyengine.ErrNotExist
	}
	return s.MemSink.Attrs(ctx, name)
}

func TestComposeConcurrentDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	size := int64(3 * kib)
	src := copyenginetest.NewSource(size, copyenginetest.Faults{})
	defer src.Close()
	sink := &lateSink{MemSink: copyenginetest.NewMemSink()}
	rs := copyengine.NewURLSource(nil, src.SignedURL(), size, nil)
	parts, err := copyengine.CopyAll(ctx, rs, sink, copyengine.Plan(size, copyengine.PlanOptions{PartSize: kib}), 2, fastOpts("tmp/c/"))
	if err != nil {
		t.Fatal(err)
	}
	opts := copyengine.ComposeOptions{SourceCRC32C: src.CRC32C}
	if _, err := copyengine.Compose(ctx, sink.MemSink, "final", parts, opts); err != nil {
		t.Fatal(err)
	}
	res, err := copyengine.Compose(ctx, sink, "final", parts, opts)
	if err != nil || !res.AlreadyDone {
		t.Fatalf("res %+v err %v", res, err)
	}
}

func TestComposeFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(sink *copyenginetest.MemSink, parts []copyengine.PartResult)
		opts    func(o *copyengine.ComposeOptions)
		wantErr error
	}{
		{
			name: "storage reports another CRC",
			prepare: func(sink *copyenginetest.MemSink, _ []copyengine.PartResult) {
				sink.ComposeHook = func(dst string, info *copyengine.ObjectInfo) { info.CRC32C ^= 1 }
			},
			wantErr: copyengine.ErrChecksumMismatch,
		},
		{
			name:    "source CRC differs",
			opts:    func(o *copyengine.ComposeOptions) { o.SourceCRC32C ^= 0x100 },
			wantErr: copyengine.ErrChecksumMismatch,
		},
		{
			name: "a part is missing",
			prepare: func(sink *copyenginetest.MemSink, parts []copyengine.PartResult) {
				sink.Delete(ctx, parts[1].Name)
			},
			wantErr: copyengine.ErrPartsMissing,
		},
		{
			name: "a bad final object exists",
			prepare: func(sink *copyenginetest.MemSink, parts []copyengine.PartResult) {
				w, _ := sink.NewPartWriter(ctx, "final")
				w.Write([]byte("bad"))
				w.Commit()
				sink.ComposeHook = func(dst string, info *copyengine.ObjectInfo) { info.CRC32C ^= 1 }
			},
			wantErr: copyengine.ErrChecksumMismatch,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			size := int64(5 * kib)
			src := copyenginetest.NewSource(size, copyenginetest.Faults{})
			defer src.Close()
			sink := copyenginetest.NewMemSink()
			rs := copyengine.NewURLSource(nil, src.SignedURL(), size, nil)
			parts, err := copyengine.CopyAll(ctx, rs, sink, copyengine.Plan(size, copyengine.PlanOptions{PartSize: kib}), 2, fastOpts("tmp/v/"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.prepare != nil {
				tc.prepare(sink, parts)
			}
			opts := copyengine.ComposeOptions{SourceCRC32C: src.CRC32C}
			if tc.opts != nil {
				tc.opts(&opts)
			}
			_, err = copyengine.Compose(ctx, sink, "final", parts, opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if _, err := sink.Attrs(ctx, "final"); !errors.Is(err, copyengine.ErrNotExist) {
				t.Errorf("final object left after %v", tc.wantErr)
			}
		})
	}
}

func TestCopyAllCancelsOnFailure(t *testing.T) {
	t.Parallel()
	src := copyenginetest.NewSource(64*kib, copyenginetest.Faults{})
	defer src.Close()
	sink := copyenginetest.NewMemSink()
	// Planned size larger than the object: the Content-Range check fails.
	rs := copyengine.NewURLSource(nil, src.SignedURL(), 128*kib, nil)
	_, err := copyengine.CopyAll(context.Background(), rs, sink, copyengine.Plan(128*kib, copyengine.PlanOptions{PartSize: 16 * kib}), 2, fastOpts("tmp/u/"))
	if !errors.Is(err, copyengine.ErrSizeMismatch) || copyengine.Classify(err) != copyengine.Permanent {
		t.Fatalf("err %v", err)
	}
	noSecret(t, err)
	if names := sink.Names(); len(names) != 0 {
		t.Errorf("objects left: %v", names)
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	md5 := "1B2M2Y8AsgTpgAmY7PhCfg=="
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		want      copyengine.Source
		wantClass copyengine.Class
	}{
		{
			name: "ranged answer with crc32c and md5 in two headers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("X-Goog-Hash", "crc32c=AAAAAQ==")
				w.Header().Add("X-Goog-Hash", "md5="+md5)
				w.Header().Set("Content-Range", "bytes 0-0/12345678901")
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Disposition", `attachment; filename="takeout-2026.json"`)
				w.WriteHeader(http.StatusPartialContent)
				w.Write([]byte{'{'})
			},
			want: copyengine.Source{Size: 12345678901, CRC32C: 1, HasCRC32C: true, ContentType: "application/json", Name: "takeout-2026.json"},
		},
		{
			name: "range ignored",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Goog-Hash", "crc32c=AAAAAg==,md5="+md5)
				w.Header().Set("Content-Length", "5")
				w.Write([]byte("hello"))
			},
			want: copyengine.Source{Size: 5, CRC32C: 2, HasCRC32C: true, ContentType: "text/plain; charset=utf-8", Name: "a.zip"},
		},
		{
			name: "empty object",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", "bytes */0")
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			},
			want: copyengine.Source{Size: 0, CRC32C: 0, HasCRC32C: true, Name: "a.zip"},
		},
		{name: "expired", handler: xmlErr(403, "ExpiredToken"), wantClass: copyengine.URLExpired},
		{name: "gone", handler: xmlErr(404, "NoSuchKey"), wantClass: copyengine.Gone},
		{name: "gone 410", handler: xmlErr(410, ""), wantClass: copyengine.Gone},
		{name: "throttled", handler: xmlErr(429, "SlowDown"), wantClass: copyengine.Retryable},
		{name: "server error", handler: xmlErr(502, ""), wantClass: copyengine.Retryable},
		{name: "bad request", handler: xmlErr(400, "InvalidArgument"), wantClass: copyengine.Permanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			u := srv.URL + "/bucket/dir/a.zip?X-Goog-Signature=" + copyenginetest.Secret
			got, err := copyengine.Probe(context.Background(), srv.Client(), u)
			noSecret(t, err)
			if tc.wantClass != 0 {
				if c := copyengine.Classify(err); c != tc.wantClass {
					t.Fatalf("class %v, want %v (err %v)", c, tc.wantClass, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Size > 0 || tc.want.CRC32C > 0 {
				tc.want.MD5 = got.MD5 // checked below
				if len(got.MD5) != 16 {
					t.Errorf("md5 %x", got.MD5)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func xmlErr(code int, xmlCode string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		fmt.Fprintf(w, "<Error><Code>%s</Code><Details>%s</Details></Error>", xmlCode, r.URL.RawQuery)
	}
}

func TestTransportErrorsRedacted(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/b/o.zip?X-Goog-Signature=" + copyenginetest.Secret
	srv.Close() // connection refused
	_, err := copyengine.Probe(context.Background(), nil, u)
	if err == nil || copyengine.Classify(err) != copyengine.Retryable {
		t.Fatalf("err %v class %v", err, copyengine.Classify(err))
	}
	noSecret(t, err)
	rs := copyengine.NewURLSource(nil, u, 10, nil)
	_, err = copyengine.CopyPart(context.Background(), rs, copyenginetest.NewMemSink(), copyengine.Part{Length: 10}, copyengine.CopyOptions{TempPrefix: "tmp/", MaxAttempts: 2, BackoffBase: time.Millisecond})
	if err == nil {
		t.Fatal("no error")
	}
	noSecret(t, err)
	if !strings.Contains(err.Error(), "?REDACTED") {
		t.Errorf("error does not show the redacted URL: %v", err)
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		size int64
		opts copyengine.PlanOptions
		want string
	}{
		{0, copyengine.PlanOptions{}, "[{0 0 0}]"},
		{1, copyengine.PlanOptions{}, "[{0 0 1}]"},
		{10, copyengine.PlanOptions{PartSize: 4}, "[{0 0 4} {1 4 4} {2 8 2}]"},
		{8, copyengine.PlanOptions{PartSize: 4}, "[{0 0 4} {1 4 4}]"},
		{600 << 20, copyengine.PlanOptions{}, fmt.Sprintf("[{0 0 %d} {1 %d %d} {2 %d %d}]", 256<<20, 256<<20, 256<<20, 512<<20, 88<<20)},
		{100 << 20, copyengine.PlanOptions{PartSize: 1 << 20, MaxParts: 10}, fmt.Sprintf("[{0 0 %d} {1 %d %d} {2 %d %d} {3 %d %d} {4 %d %d} {5 %d %d} {6 %d %d} {7 %d %d} {8 %d %d} {9 %d %d}]",
			10<<20, 10<<20, 10<<20, 20<<20, 10<<20, 30<<20, 10<<20, 40<<20, 10<<20, 50<<20, 10<<20, 60<<20, 10<<20, 70<<20, 10<<20, 80<<20, 10<<20, 90<<20, 10<<20)},
	}
	for _, tc := range tests {
		if got := fmt.Sprint(copyengine.Plan(tc.size, tc.opts)); got != tc.want {
			t.Errorf("Plan(%d, %+v) = %s, want %s", tc.size, tc.opts, got, tc.want)
		}
	}
	// Big objects: contiguous, lengths sum to the size.
	parts := copyengine.Plan(40<<30+3, copyengine.PlanOptions{})
	var sum int64
	for i, p := range parts {
		if p.Index != i || p.Offset != sum {
			t.Fatalf("part %d: %+v", i, p)
		}
		sum += p.Length
	}
	if sum != 40<<30+3 || len(parts) != 161 {
		t.Errorf("sum %d, %d parts", sum, len(parts))
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix, user, round, resource, job string
		index                              int
		source, want                       string
	}{
		{"exports", "u1", "u1~1", "myactivity.search", "j-9", 0, "archive.zip", "exports/u1/u1~1/myactivity.search/j-9/0-archive.zip"},
		{"/a/b/", "../..", "r", "res", "job", 2, "x.json", "a/b/..%2F../r/res/job/2-x.json"},
		{"exports", "..", ".", "", "a/b", 1, "", "exports/%2E%2E/%2E/%00/a%2Fb/1-archive"},
		{"exports", "user name%", "r", "res", "job", 0, "../../etc/passwd", "exports/user%20name%25/r/res/job/0-..%2F..%2Fetc%2Fpasswd"},
	}
	for _, tc := range tests {
		if got := copyengine.ObjectName(tc.prefix, tc.user, tc.round, tc.resource, tc.job, tc.index, tc.source); got != tc.want {
			t.Errorf("ObjectName(%q...) = %q, want %q", tc.user, got, tc.want)
		}
	}
	tp := copyengine.TempPrefix("a/b", "r", "res", "j", 3)
	if tp != "tmp/a%2Fb/r/res/j/3/" || copyengine.PartName(tp, 7) != "tmp/a%2Fb/r/res/j/3/part-00007" {
		t.Errorf("temp names %q %q", tp, copyengine.PartName(tp, 7))
	}
	long := strings.Repeat("x", 500) + ".zip"
	if n := copyengine.ObjectName("e", "u", "r", "s", "j", 0, long); len(n) > 220 || !strings.HasSuffix(n, ".zip") {
		t.Errorf("long name %q", n)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want copyengine.Class
	}{
		{nil, copyengine.Unclassified},
		{&copyengine.HTTPError{StatusCode: 403, Code: "ExpiredToken"}, copyengine.URLExpired},
		// Cloud Storage's answer to an expired V4 URL is 400, not 403.
		{&copyengine.HTTPError{StatusCode: 400, Code: "ExpiredToken"}, copyengine.URLExpired},
		{&copyengine.HTTPError{StatusCode: 400, Code: "MalformedSecurityHeader"}, copyengine.URLExpired},
		{&copyengine.HTTPError{StatusCode: 400, Code: "InvalidArgument"}, copyengine.Permanent},
		{&copyengine.HTTPError{StatusCode: 400}, copyengine.Permanent},
		{&copyengine.HTTPError{StatusCode: 403, Code: "AccessDenied"}, copyengine.URLExpired},
		{&copyengine.HTTPError{StatusCode: 403, Code: "SignatureDoesNotMatch"}, copyengine.URLExpired},
		{fmt.Errorf("x: %w", copyengine.ErrRangeIgnored), copyengine.Retryable},
		{fmt.Errorf("x: %w", copyengine.ErrURLRefused), copyengine.Permanent},
		{&copyengine.HTTPError{StatusCode: 404}, copyengine.Gone},
		{&copyengine.HTTPError{StatusCode: 410}, copyengine.Gone},
		{&copyengine.HTTPError{StatusCode: 429}, copyengine.Retryable},
		{&copyengine.HTTPError{StatusCode: 500}, copyengine.Retryable},
		{&copyengine.HTTPError{StatusCode: 408}, copyengine.Retryable},
		{&copyengine.HTTPError{StatusCode: 401}, copyengine.Permanent},
		{fmt.Errorf("x: %w", copyengine.ErrChecksumMismatch), copyengine.Retryable},
		{fmt.Errorf("x: %w", copyengine.ErrSizeMismatch), copyengine.Permanent},
		{context.DeadlineExceeded, copyengine.Retryable},
		{errors.New("connection reset by peer"), copyengine.Retryable},
	}
	for _, tc := range tests {
		if got := copyengine.Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
