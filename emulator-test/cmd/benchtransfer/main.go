// Command benchtransfer measures the transfer engine (shared/copyengine) on one archive served by the Data
// Portability fake's signed URL, against a read into io.Discard (the ceiling) and a naive copy (one GET
// streamed through one storage.Writer), into a Cloud Storage stand-in: fastsink (checksums and discards,
// any size) and fake-gcs-server (256 MiB only: it is slow and holds several copies of every object).
//
// Each measured variant runs in a child process (this binary re-executed with a hidden argument), so its
// peak RSS and CPU seconds belong to the transfer alone; the fake and the sinks run in the parent (or, for
// fake-gcs-server, in their own process). Archives are generated on the fly, never stored.
//
//	go run ./emulator-test/cmd/benchtransfer                 # 256 MiB and 1 GiB, a few minutes
//	go run ./emulator-test/cmd/benchtransfer -full           # 20 GiB too
//	go run ./emulator-test/cmd/benchtransfer -sizes 64MiB -parts 1,4 -gcs=false
//
// It also lists two archives of -manifest-size (256 MiB) made of 64 KiB and of 1 MiB entries, as the
// transfer step's manifest does (shared/manifest over ranged GETs of the signed URL), and compares the bytes
// read with the size of the archive's central directory and end records (rows of variant "manifest").
// -cpuprofile DIR writes each child's CPU profile (go tool pprof) there, and beside it the profile of
// this process (the fake and the sink serving that child) with "-parent" in its name.
//
// Output: a table on stdout, -json FILE, and -png FILE (throughput against parts in flight).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/portability-pipeline/pipeline/emulator-test/cmd/internal/machine"
	"github.com/portability-pipeline/pipeline/emulator-test/emulators"
	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/fastsink"
	"github.com/portability-pipeline/pipeline/shared/copyengine"
)

const (
	mib    = 1 << 20
	gib    = 1 << 30
	bucket = "bench"
	// childArg re-executes this binary as a measured child: childArg JSON-spec.
	childArg = "-benchtransfer-child"
)

// Row is one measured variant.
type Row struct {
	Size       int64   `json:"size"`
	SizeLabel  string  `json:"sizeLabel"`
	CapBps     int64   `json:"capBytesPerSecond"` // the fake's per-connection cap, 0: none
	Sink       string  `json:"sink"`              // "", "fastsink", "fake-gcs-server"
	Variant    string  `json:"variant"`           // ceiling, naive, transfer
	InFlight   int     `json:"inFlight,omitempty"`
	PartSize   int64   `json:"partSize,omitempty"`
	ChunkSize  int     `json:"chunkSize,omitempty"` // the transfer's upload chunk, 0: copyengine.DefaultChunkSize
	Parts      int     `json:"parts,omitempty"`
	Seconds    float64 `json:"seconds"`
	MBps       float64 `json:"mbPerSecond"` // 10^6 bytes per second
	CPUSeconds float64 `json:"cpuSeconds"`  // user+sys of the child
	CPUPerGiB  float64 `json:"cpuSecondsPerGiB"`
	PeakRSSMiB float64 `json:"peakRSSMiB"` // maxrss of the child
	// ParentCPUPerGiB is this process's CPU (user+sys) per GiB while the child ran: the fake serving the
	// archive and fastsink receiving it (fake-gcs-server's own process is not counted).
	ParentCPUPerGiB float64 `json:"parentCpuSecondsPerGiB"`
	Verified        bool    `json:"verified"` // stored CRC32C equals the source's
	Load1           float64 `json:"load1"`    // 1-minute load average when the variant started
	Error           string  `json:"error,omitempty"`
	// Manifest measurements (Variant "manifest", written in their own shape, see manifestRow).
	EntrySize      int64 `json:"-"`
	BytesRead      int64 `json:"-"`
	DirectoryBytes int64 `json:"-"`
	Requests       int   `json:"-"`
	Files          int   `json:"-"`
}

// Report is the -json output.
type Report struct {
	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds"`
	CPUs       int       `json:"cpus"`
	GoVersion  string    `json:"goVersion"`
	LoadStart  string    `json:"loadAverageStart"`
	LoadEnd    string    `json:"loadAverageEnd"`
	Command    string    `json:"command"`
	Rows       []Row     `json:"rows"`
	Targets    []string  `json:"targets"`
	Note       string    `json:"note"`
	CapBps     int64     `json:"capBytesPerSecond"`
	ChunkSize  int       `json:"gcsSinkChunkSize"`
	BufferSize int       `json:"copyPartBufferSize"`
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == childArg {
		runChild(os.Args[2])
		return
	}
	sizes := flag.String("sizes", "256MiB,1GiB", "archive sizes (comma list)")
	full := flag.Bool("full", false, "add 20GiB to -sizes")
	partsFlag := flag.String("parts", "1,2,4,8", "parts in flight for the transfer path (comma list)")
	capBps := flag.Int64("cap", 50_000_000, "the fake's per-connection bandwidth cap in bytes/s for the capped runs (0: no capped runs)")
	gcs := flag.Bool("gcs", true, "also measure fake-gcs-server as the sink (256 MiB archives only)")
	partSize := flag.Int64("part-size", 0, "bytes per part (default: size/16 rounded to MiB, at most copyengine.DefaultPartSize)")
	chunkSize := flag.Int("chunk-size", 0, "the transfer's upload chunk in bytes (default: copyengine.DefaultChunkSize, what production uses)")
	allCapped := flag.Bool("all-capped", false, "above 4 GiB, run every capped variant (default: only the transfer at >= 4 in flight, the rest take size/cap)")
	jsonOut := flag.String("json", "", "write the report as JSON to this file")
	manifestSize := flag.String("manifest-size", "256MiB", "archive size of the manifest measurements, one of 64 KiB and one of 1 MiB entries (0: none)")
	profDir := flag.String("cpuprofile", "", "write each child's CPU profile (pprof) into this directory")
	pngOut := flag.String("png", "docs/performance-throughput.png", "write the throughput plot to this PNG file (empty: none)")
	flag.Parse()

	var sizeList []int64
	for _, s := range strings.Split(*sizes, ",") {
		n, err := parseSize(strings.TrimSpace(s))
		if err != nil {
			fail("-sizes: %v", err)
		}
		sizeList = append(sizeList, n)
	}
	if *full && !slices.Contains(sizeList, 20*gib) {
		sizeList = append(sizeList, 20*gib)
	}
	var inFlight []int
	for _, s := range strings.Split(*partsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail("-parts: bad %q", s)
		}
		inFlight = append(inFlight, n)
	}
	caps := []int64{0}
	if *capBps > 0 {
		caps = append(caps, *capBps)
	}

	ctx := context.Background()
	exe, err := os.Executable()
	if err != nil {
		fail("%v", err)
	}
	rep := Report{Started: time.Now(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: machine.LoadAverage(),
		Command: strings.Join(os.Args, " "), CapBps: *capBps, ChunkSize: copyengine.DefaultChunkSize, BufferSize: copyengine.DefaultBufferSize,
		Note: "MB/s are 10^6 bytes per second of wall time in the child, from the first request to the verified object; " +
			"CPU seconds (user+sys) and peak RSS (maxrss) are the child's: the fake (source) and fastsink run in the parent, fake-gcs-server in its own process. " +
			"One measurement per row; load1 is the 1-minute load average of the machine when the row started."}
	fmt.Printf("benchtransfer: %d CPUs, %s, load average %s\n", rep.CPUs, rep.GoVersion, rep.LoadStart)

	// Sinks: fastsink in this process, fake-gcs-server in its own.
	fs := fastsink.New()
	fastSrv := httptest.NewServer(fs.Handler())
	defer fastSrv.Close()
	sinks := []struct{ name, endpoint string }{{"fastsink", fastSrv.URL}}
	var gcsEmu *emulators.Emulator
	if *gcs && slices.Contains(sizeList, 256*mib) {
		gcsEmu, err = emulators.StartFakeGCS(ctx, emulators.Options{})
		if err != nil {
			fail("fake-gcs-server: %v", err)
		}
		defer gcsEmu.Close()
		gc, err := storage.NewClient(ctx, option.WithEndpoint("http://"+gcsEmu.Host()+"/storage/v1/"), option.WithoutAuthentication())
		if err != nil {
			fail("%v", err)
		}
		if err := gc.Bucket(bucket).Create(ctx, "bench", nil); err != nil {
			fail("create bucket on fake-gcs-server: %v", err)
		}
		gc.Close()
		sinks = append(sinks, struct{ name, endpoint string }{"fake-gcs-server", "http://" + gcsEmu.Host()})
	}

	fmt.Printf("\n%-8s %-9s %-16s %-9s %8s %9s %8s %8s %9s %9s %9s %5s %5s\n",
		"size", "cap", "sink", "variant", "inflight", "parts", "seconds", "MB/s", "CPU s/GiB", "RSS MiB", "srv s/GiB", "ok", "load")
	for _, size := range sizeList {
		ps := *partSize
		if ps <= 0 {
			ps = min(max(size/16/mib*mib, mib), copyengine.DefaultPartSize)
		}
		for _, cp := range caps {
			src, err := newSource(size, cp)
			if err != nil {
				fail("%v", err)
			}
			base := Row{Size: size, SizeLabel: sizeLabel(size), CapBps: cp}
			capped := cp > 0 && size > 4*gib && !*allCapped
			var specs []childSpec
			if !capped {
				specs = append(specs, childSpec{Variant: "ceiling"})
			}
			for _, sk := range sinks {
				if sk.name == "fake-gcs-server" && size != 256*mib {
					continue
				}
				if !capped {
					specs = append(specs, childSpec{Variant: "naive", Sink: sk.name, Endpoint: sk.endpoint})
				}
				for _, n := range inFlight {
					if capped && n < 4 {
						continue
					}
					specs = append(specs, childSpec{Variant: "transfer", Sink: sk.name, Endpoint: sk.endpoint, InFlight: n, PartSize: ps})
				}
			}
			for _, sp := range specs {
				sp.URL, sp.Size, sp.CRC32C, sp.Bucket = src.url, size, src.crc, bucket
				if sp.Variant == "transfer" {
					sp.ChunkSize = *chunkSize
				}
				sp.Object = fmt.Sprintf("bench/%s-%d-%s-%d", sp.Variant, size, sp.Sink, sp.InFlight)
				if *profDir != "" {
					sp.Profile = filepath.Join(*profDir, fmt.Sprintf("%s-%s-cap%d-%s-%d.pprof", sp.Variant, sizeLabel(size), cp/1e6, sp.Sink, sp.InFlight))
				}
				stopParentProfile := startParentProfile(sp.Profile)
				row := runMeasured(exe, sp, base)
				stopParentProfile()
				rep.Rows = append(rep.Rows, row)
				printRow(row)
			}
			src.close()
		}
	}
	if *manifestSize != "0" {
		size, err := parseSize(*manifestSize)
		if err != nil {
			fail("-manifest-size: %v", err)
		}
		fmt.Printf("\n%-8s %-10s %12s %12s %9s %8s %6s %5s\n", "size", "entries of", "directory B", "read B", "requests", "files", "ok", "load")
		for _, es := range []int64{64 << 10, 1 << 20} {
			row := measureManifest(size, es)
			rep.Rows = append(rep.Rows, row)
			ok := "yes"
			if !row.Verified {
				ok = "NO"
			}
			fmt.Printf("%-8s %-10s %12d %12d %9d %8d %6s %5.2f\n", sizeLabel(row.Size), sizeLabel(es), row.DirectoryBytes, row.BytesRead, row.Requests, row.Files, ok, row.Load1)
			if row.Error != "" {
				fmt.Printf("    error: %s\n", row.Error)
			}
		}
	}
	rep.LoadEnd = machine.LoadAverage()
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.Targets = targets(rep.Rows, *capBps)
	fmt.Printf("\nload average at the end: %s; %.0f s in all\n\n", rep.LoadEnd, rep.Seconds)
	for _, t := range rep.Targets {
		fmt.Println(t)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fail("%v", err)
		}
	}
	if *pngOut != "" {
		if err := writePlot(*pngOut, rep); err != nil {
			fail("plot: %v", err)
		}
		fmt.Printf("plot: %s\n", *pngOut)
	}
	for _, r := range rep.Rows {
		if r.Error != "" || !r.Verified {
			os.Exit(1)
		}
	}
}

func printRow(r Row) {
	capS := "none"
	if r.CapBps > 0 {
		capS = fmt.Sprintf("%dMB/s", r.CapBps/1e6)
	}
	inflight, parts := "", ""
	if r.Variant == "transfer" {
		inflight, parts = strconv.Itoa(r.InFlight), fmt.Sprintf("%dx%dM", r.Parts, r.PartSize/mib)
		if r.ChunkSize > 0 { // not production's chunk: say so in the row
			parts += fmt.Sprintf("/c%dK", r.ChunkSize>>10)
		}
	}
	sink := r.Sink
	if sink == "" {
		sink = "io.Discard"
	}
	ok := "yes"
	if !r.Verified {
		ok = "NO"
	}
	fmt.Printf("%-8s %-9s %-16s %-9s %8s %9s %8.1f %8.0f %9.2f %9.0f %9.2f %5s %5.2f\n",
		r.SizeLabel, capS, sink, r.Variant, inflight, parts, r.Seconds, r.MBps, r.CPUPerGiB, r.PeakRSSMiB, r.ParentCPUPerGiB, ok, r.Load1)
	if r.Error != "" {
		fmt.Printf("    error: %s\n", r.Error)
	}
}

// source is one archive on its own fake: the cap is an option of the fake.
type source struct {
	url   string
	crc   uint32
	size  int64
	close func()
}

func newSource(size, capBps int64) (*source, error) {
	src, err := newArchive(size, capBps, 0)
	if err == nil && src.size != size {
		src.close()
		return nil, fmt.Errorf("fake's file has %d bytes, want %d", src.size, size)
	}
	return src, err
}

// newArchive is newSource with zip entries of at most entrySize (0: the fake's default, 512 MiB).
func newArchive(size, capBps, entrySize int64) (*source, error) {
	fake := fakeportability.New(fakeportability.Options{ArchiveSize: size, URLsPerJob: 1, BandwidthLimit: capBps,
		MD5MaxSize: 1, JobDuration: time.Second, URLTTL: 48 * time.Hour, EntrySize: entrySize})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: fake.Handler()}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()
	cleanup := func() { srv.Close() }
	tok, err := fake.Grant(fakeportability.GrantRequest{User: "bench", Resources: []string{"myactivity.search"}, Access: "one-time"})
	if err != nil {
		cleanup()
		return nil, err
	}
	var ini struct {
		ArchiveJobID string `json:"archiveJobId"`
	}
	if err := call(base+"/v1/portabilityArchive:initiate", tok.AccessToken, `{"resources":["myactivity.search"]}`, &ini); err != nil {
		cleanup()
		return nil, fmt.Errorf("initiate: %w", err)
	}
	fake.Clock().Advance(time.Minute)
	var st struct {
		State string   `json:"state"`
		URLs  []string `json:"urls"`
	}
	if err := call(base+"/v1/archiveJobs/"+ini.ArchiveJobID+"/portabilityArchiveState", tok.AccessToken, "", &st); err != nil {
		cleanup()
		return nil, fmt.Errorf("state: %w", err)
	}
	if st.State != "COMPLETE" || len(st.URLs) != 1 {
		cleanup()
		return nil, fmt.Errorf("job is %s with %d URLs", st.State, len(st.URLs))
	}
	// Jobs waits for the checksums: the archive is hashed once here, before any measurement.
	start := time.Now()
	jobs := fake.Jobs("bench")
	if len(jobs) != 1 || len(jobs[0].Files) != 1 {
		cleanup()
		return nil, fmt.Errorf("fake lists %d jobs", len(jobs))
	}
	f := jobs[0].Files[0]
	crc, err := decodeCRC(f.CRC32C)
	if err != nil || f.Size < size {
		cleanup()
		return nil, fmt.Errorf("fake's file: size %d crc %q", f.Size, f.CRC32C)
	}
	fmt.Fprintf(os.Stderr, "benchtransfer: %s archive ready (hashed in %.1f s), cap %d B/s\n", sizeLabel(size), time.Since(start).Seconds(), capBps)
	return &source{url: st.URLs[0], crc: crc, size: f.Size, close: cleanup}, nil
}

func call(u, token, body string, out any) error {
	method := http.MethodGet
	var rd io.Reader
	if body != "" {
		method, rd = http.MethodPost, strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// runMeasured runs one variant in a child process and reads its rusage.
func runMeasured(exe string, sp childSpec, base Row) Row {
	row := base
	row.Sink, row.Variant, row.InFlight, row.PartSize, row.ChunkSize, row.Load1 = sp.Sink, sp.Variant, sp.InFlight, sp.PartSize, sp.ChunkSize, machine.Load1()
	if sp.Variant != "transfer" {
		row.PartSize = 0
	}
	spec, _ := json.Marshal(sp)
	cmd := exec.Command(exe, childArg, string(spec))
	cmd.Stderr = os.Stderr
	before := selfCPU()
	out, err := cmd.Output()
	parentCPU := selfCPU() - before
	var res childResult
	if jerr := json.Unmarshal(out, &res); jerr != nil && err == nil {
		err = fmt.Errorf("child output %q: %w", out, jerr)
	}
	if err != nil {
		row.Error = err.Error()
	}
	if res.Error != "" {
		row.Error = res.Error
	}
	if ps := cmd.ProcessState; ps != nil {
		row.CPUSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			row.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
		}
	}
	row.Seconds, row.Verified, row.Parts = res.Seconds, res.Verified && row.Error == "", res.Parts
	if res.Seconds > 0 {
		row.MBps = float64(res.Bytes) / 1e6 / res.Seconds
	}
	if res.Bytes > 0 {
		row.CPUPerGiB = row.CPUSeconds / (float64(res.Bytes) / gib)
		row.ParentCPUPerGiB = parentCPU / (float64(res.Bytes) / gib)
	}
	return row
}

// targets checks the issue's targets against the rows.
func targets(rows []Row, capBps int64) []string {
	var out []string
	find := func(size, cp int64, sink, variant string, inFlight int) (Row, bool) {
		for _, r := range rows {
			if r.Size == size && r.CapBps == cp && r.Sink == sink && r.Variant == variant && r.InFlight == inFlight && r.Error == "" {
				return r, true
			}
		}
		return Row{}, false
	}
	var sizes []int64
	for _, r := range rows {
		if r.Variant != "manifest" && !slices.Contains(sizes, r.Size) {
			sizes = append(sizes, r.Size)
		}
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	// The copy's CPU against the naive copy's (uncapped, 1 in flight, fastsink), over all sizes but 20 GiB
	// together, and against the receive alone (the ceiling): a copy receives, checksums and sends every
	// byte, so about 2.3 times a receive is its floor.
	var tCPU, nCPU, cCPU, tBytes, nBytes, cBytes float64
	for _, r := range rows {
		if r.CapBps != 0 || r.Error != "" || r.Size > 4*gib || r.Variant == "manifest" {
			continue
		}
		b := float64(r.Size) / gib
		switch {
		case r.Variant == "transfer" && r.Sink == "fastsink" && r.InFlight == 1:
			tCPU, tBytes = tCPU+r.CPUPerGiB*b, tBytes+b
		case r.Variant == "naive" && r.Sink == "fastsink":
			nCPU, nBytes = nCPU+r.CPUPerGiB*b, nBytes+b
		case r.Variant == "ceiling":
			cCPU, cBytes = cCPU+r.CPUPerGiB*b, cBytes+b
		}
	}
	if tBytes > 0 && nBytes > 0 && cBytes > 0 {
		t, n, c := tCPU/tBytes, nCPU/nBytes, cCPU/cBytes
		out = append(out, fmt.Sprintf("CPU, no cap, 1 in flight, sizes up to 4 GiB together: transfer %.2f s/GiB = %.2f x naive %.2f s/GiB (target <= 1.0): %s; %.2f x the receive alone (ceiling %.2f s/GiB; a copy's floor is about 2.3 x)",
			t, t/n, n, verdict(t <= n), t/c, c))
	}
	for _, r := range rows {
		if r.Variant == "manifest" {
			out = append(out, fmt.Sprintf("manifest of %s in %s entries: read %d bytes in %d requests, directory %d bytes (target <= directory + 1 MiB): %s",
				sizeLabel(r.Size), sizeLabel(r.EntrySize), r.BytesRead, r.Requests, r.DirectoryBytes, verdict(r.Verified && r.BytesRead <= r.DirectoryBytes+mib)))
		}
	}
	for _, size := range sizes {
		if t16, ok := find(size, capBps, "fastsink", "transfer", 16); ok && capBps > 0 {
			want := 16 * float64(capBps) / 1e6
			out = append(out, fmt.Sprintf("%s, cap %d MB/s: transfer at 16 in flight %.0f MB/s = %.3f x 16 x the cap (target >= 0.95): %s",
				sizeLabel(size), capBps/1e6, t16.MBps, t16.MBps/want, verdict(t16.MBps >= 0.95*want)))
		}
		if ceil, ok := find(size, 0, "", "ceiling", 0); ok {
			var best Row
			for _, r := range rows {
				if r.Size == size && r.CapBps == 0 && r.Sink == "fastsink" && r.Variant == "transfer" && r.Error == "" && r.MBps > best.MBps {
					best = r
				}
			}
			if best.MBps > 0 {
				// CPU bound: every byte costs the child, the source and the sink CPU on the same cores.
				tc, cc := best.CPUPerGiB+best.ParentCPUPerGiB, ceil.CPUPerGiB+ceil.ParentCPUPerGiB
				out = append(out, fmt.Sprintf("%s, no cap: best transfer %.0f MB/s at %d in flight, ceiling %.0f MB/s; CPU per GiB on this machine: transfer %.2f s (child %.2f + fake and fastsink %.2f), ceiling %.2f s (%.2f + %.2f): on %d idle cores at most %.0f vs %.0f MB/s",
					sizeLabel(size), best.MBps, best.InFlight, ceil.MBps, tc, best.CPUPerGiB, best.ParentCPUPerGiB, cc, ceil.CPUPerGiB, ceil.ParentCPUPerGiB, runtime.NumCPU(),
					float64(runtime.NumCPU())/tc*gib/1e6, float64(runtime.NumCPU())/cc*gib/1e6))
			}
		}
		if capBps > 0 {
			t4, ok1 := find(size, capBps, "fastsink", "transfer", 4)
			naive, ok2 := find(size, capBps, "fastsink", "naive", 0)
			if ok1 && ok2 {
				ratio := t4.MBps / naive.MBps
				out = append(out, fmt.Sprintf("%s, cap %d MB/s: transfer at 4 in flight %.0f MB/s = %.2f x naive %.0f MB/s (target >= 3): %s",
					sizeLabel(size), capBps/1e6, t4.MBps, ratio, naive.MBps, verdict(ratio >= 3)))
			} else if ok1 {
				ratio := t4.MBps / (float64(capBps) / 1e6)
				out = append(out, fmt.Sprintf("%s, cap %d MB/s: transfer at 4 in flight %.0f MB/s = %.2f x the cap, the naive copy's bound (target >= 3): %s",
					sizeLabel(size), capBps/1e6, t4.MBps, ratio, verdict(ratio >= 3)))
			}
		}
		// A transfer instance copies one part at a time (terraform: max_instance_request_concurrency = 1);
		// the peak over more parts in flight in one process is reported too.
		if one, ok := find(size, 0, "fastsink", "transfer", 1); ok {
			var peak Row
			for _, r := range rows {
				if r.Size == size && r.Variant == "transfer" && r.Sink == "fastsink" && r.PeakRSSMiB > peak.PeakRSSMiB {
					peak = r
				}
			}
			out = append(out, fmt.Sprintf("%s: peak RSS of a transfer instance (1 part in flight) %.0f MiB (target <= 128 MiB): %s; one process with %d in flight: %.0f MiB",
				sizeLabel(size), one.PeakRSSMiB, verdict(one.PeakRSSMiB <= 128), peak.InFlight, peak.PeakRSSMiB))
		}
	}
	return out
}

// startParentProfile profiles this process (the fake and the sink that serve the child) into
// CHILDPROFILE's name with "-parent" before ".pprof", so that the "srv s/GiB" column can be broken
// down too; the returned function stops it. With no child profile it does nothing.
func startParentProfile(childProfile string) (stop func()) {
	if childProfile == "" {
		return func() {}
	}
	f, err := os.Create(strings.TrimSuffix(childProfile, ".pprof") + "-parent.pprof")
	if err != nil {
		fail("parent profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fail("parent profile: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// selfCPU is this process's user+sys CPU seconds so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", gib}, {"MiB", mib}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return v * u.mult, nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, errors.New("bad size " + strconv.Quote(s))
	}
	return v, nil
}

func sizeLabel(n int64) string {
	switch {
	case n%gib == 0:
		return fmt.Sprintf("%dGiB", n/gib)
	case n%mib == 0:
		return fmt.Sprintf("%dMiB", n/mib)
	}
	return strconv.FormatInt(n, 10)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchtransfer: "+format+"\n", args...)
	os.Exit(2)
}
