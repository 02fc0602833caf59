package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
)

// childSpec is what a measured child does.
type childSpec struct {
	Variant  string `json:"variant"` // ceiling, naive, transfer
	Sink     string `json:"sink,omitempty"`
	Endpoint string `json:"endpoint,omitempty"` // sink base URL (http://host:port)
	Bucket   string `json:"bucket,omitempty"`
	Object   string `json:"object,omitempty"`
	URL      string `json:"url"`
	Size     int64  `json:"size"`
	CRC32C   uint32 `json:"crc32c"`
	InFlight int    `json:"inFlight,omitempty"`
	PartSize int64  `json:"partSize,omitempty"`
	// ChunkSize is GCSSink.ChunkSize (0: copyengine.DefaultChunkSize).
	ChunkSize int `json:"chunkSize,omitempty"`
	// Profile, when set, is the file the child writes its CPU profile (pprof) to.
	Profile string `json:"profile,omitempty"`
}

// childResult is the child's answer on stdout.
type childResult struct {
	Bytes    int64   `json:"bytes"`
	Seconds  float64 `json:"seconds"`
	Verified bool    `json:"verified"`
	Parts    int     `json:"parts,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// downloadClient is the transfer function's download client (functions/transfer).
var downloadClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	ResponseHeaderTimeout: time.Minute,
	MaxIdleConnsPerHost:   16,
}}

func runChild(arg string) {
	var sp childSpec
	var res childResult
	if err := json.Unmarshal([]byte(arg), &sp); err != nil {
		res.Error = err.Error()
	} else {
		res = measure(sp)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func measure(sp childSpec) childResult {
	ctx := context.Background()
	var client *storage.Client
	if sp.Variant != "ceiling" {
		var err error
		client, err = storage.NewClient(ctx, option.WithEndpoint(sp.Endpoint+"/storage/v1/"), option.WithoutAuthentication())
		if err != nil {
			return childResult{Error: err.Error()}
		}
		defer client.Close()
	}
	if sp.Profile != "" {
		f, err := os.Create(sp.Profile)
		if err != nil {
			return childResult{Error: err.Error()}
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return childResult{Error: err.Error()}
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	var (
		res childResult
		err error
	)
	switch sp.Variant {
	case "ceiling":
		res, err = ceiling(ctx, sp)
	case "naive":
		res, err = naive(ctx, client, sp)
	case "transfer":
		res, err = engine(ctx, client, sp)
	default:
		err = fmt.Errorf("unknown variant %q", sp.Variant)
	}
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		res.Error = err.Error()
	}
	if client != nil {
		// Free the sink's memory (fake-gcs-server keeps objects); not timed.
		_ = client.Bucket(sp.Bucket).Object(sp.Object).Delete(ctx)
	}
	return res
}

// get is one plain GET of the whole archive with the transfer's download client.
func get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return downloadClient.Do(req)
}

// ceiling reads the archive into io.Discard with one GET.
func ceiling(ctx context.Context, sp childSpec) (childResult, error) {
	resp, err := get(ctx, sp.URL)
	if err != nil {
		return childResult{}, err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, copyengine.DefaultBufferSize))
	return childResult{Bytes: n, Verified: n == sp.Size}, err
}

// naive streams one GET through one storage.Writer (library defaults) and compares the CRC32C storage
// reports with the source's x-goog-hash.
func naive(ctx context.Context, client *storage.Client, sp childSpec) (childResult, error) {
	resp, err := get(ctx, sp.URL)
	if err != nil {
		return childResult{}, err
	}
	defer resp.Body.Close()
	want, ok := hashHeader(resp.Header.Values("X-Goog-Hash"))
	w := client.Bucket(sp.Bucket).Object(sp.Object).NewWriter(ctx)
	w.ContentType = resp.Header.Get("Content-Type")
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		w.Close()
		return childResult{Bytes: n}, err
	}
	if err := w.Close(); err != nil {
		return childResult{Bytes: n}, err
	}
	a := w.Attrs()
	return childResult{Bytes: n, Verified: ok && a.CRC32C == want && a.Size == sp.Size}, nil
}

// engine is the transfer path: probe, plan, parallel ranged parts (CopyAll: CopyPart each), compose,
// CRC32C verification (Compose checks the parts' combined CRC32C and storage's against the source's).
func engine(ctx context.Context, client *storage.Client, sp childSpec) (childResult, error) {
	src, err := copyengine.Probe(ctx, downloadClient, sp.URL)
	if err != nil {
		return childResult{}, err
	}
	parts := copyengine.Plan(src.Size, copyengine.PlanOptions{PartSize: sp.PartSize})
	sink := copyengine.NewGCSSink(client, sp.Bucket)
	sink.ChunkSize = sp.ChunkSize
	rs := copyengine.NewURLSource(downloadClient, sp.URL, src.Size, nil)
	results, err := copyengine.CopyAll(ctx, rs, sink, parts, sp.InFlight, copyengine.CopyOptions{TempPrefix: "tmp/" + sp.Object + "/"})
	if err != nil {
		return childResult{Parts: len(parts)}, err
	}
	obj, err := copyengine.Compose(ctx, sink, sp.Object, results, copyengine.ComposeOptions{SourceCRC32C: src.CRC32C,
		NoSourceCRC32C: !src.HasCRC32C, ContentType: src.ContentType})
	if err != nil {
		return childResult{Parts: len(parts)}, err
	}
	return childResult{Bytes: obj.Size, Parts: len(parts),
		Verified: src.HasCRC32C && obj.CRC32C == sp.CRC32C && obj.Size == sp.Size}, nil
}

func hashHeader(values []string) (uint32, bool) {
	for _, v := range values {
		for _, kv := range strings.Split(v, ",") {
			if c, ok := strings.CutPrefix(strings.TrimSpace(kv), "crc32c="); ok {
				if crc, err := decodeCRC(c); err == nil {
					return crc, true
				}
			}
		}
	}
	return 0, false
}

func decodeCRC(s string) (uint32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 4 {
		return 0, fmt.Errorf("bad crc32c %q", s)
	}
	return binary.BigEndian.Uint32(b), nil
}
