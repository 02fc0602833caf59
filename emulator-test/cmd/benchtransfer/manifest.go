package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/portability-pipeline/pipeline/emulator-test/cmd/internal/machine"
	"github.com/portability-pipeline/pipeline/shared/manifest"
)

// manifestRow is the JSON form of a manifest measurement (Row with Variant "manifest").
type manifestRow struct {
	Variant        string `json:"variant"`
	EntrySize      int64  `json:"entrySize"`
	Size           int64  `json:"size"`
	BytesRead      int64  `json:"bytesRead"`
	DirectoryBytes int64  `json:"directoryBytes"`
	Requests       int    `json:"requests"`
	Files          int    `json:"files"`
	Verified       bool   `json:"verified"`
	Error          string `json:"error,omitempty"`
}

// MarshalJSON writes a manifest measurement in its own shape, every other row as it is.
func (r Row) MarshalJSON() ([]byte, error) {
	if r.Variant == "manifest" {
		return json.Marshal(manifestRow{Variant: r.Variant, EntrySize: r.EntrySize, Size: r.Size, BytesRead: r.BytesRead,
			DirectoryBytes: r.DirectoryBytes, Requests: r.Requests, Files: r.Files, Verified: r.Verified, Error: r.Error})
	}
	type plain Row // without this method
	return json.Marshal(plain(r))
}

// httpRanger reads ranges of a signed URL with ranged GETs (as manifest.GCSRanger reads the stored object)
// and counts them.
type httpRanger struct {
	url      string
	requests atomic.Int64
	bytes    atomic.Int64
}

func (h *httpRanger) ReadRange(ctx context.Context, off, n int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := downloadClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return nil, fmt.Errorf("ranged GET at %d: HTTP %d", off, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	h.requests.Add(1)
	h.bytes.Add(int64(len(b)))
	return b, err
}

// measureManifest lists one archive of entrySize entries, as the transfer step's Finish delivery does,
// and compares what it read with the size of the archive's central directory and end records.
func measureManifest(size, entrySize int64) Row {
	row := Row{Variant: "manifest", EntrySize: entrySize, Size: size, SizeLabel: sizeLabel(size), Load1: machine.Load1()}
	src, err := newArchive(size, 0, entrySize)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	defer src.close()
	ctx := context.Background()
	row.Size = src.size
	dir, err := directoryBytes(ctx, &httpRanger{url: src.url}, src.size)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	r := &httpRanger{url: src.url}
	a, services, err := manifest.Describe(ctx, manifest.Input{Object: "bench/manifest", Size: src.size, Source: r})
	if err != nil {
		row.Error = err.Error()
		return row
	}
	row.BytesRead, row.Requests, row.DirectoryBytes, row.Files = r.bytes.Load(), int(r.requests.Load()), dir, len(a.Files)
	row.Verified = a.Kind == manifest.KindZip && a.Error == "" && len(services) > 0 && a.BytesRead == row.BytesRead &&
		int64(len(a.Files)) > size/entrySize/2
	if !row.Verified && row.Error == "" {
		row.Error = fmt.Sprintf("kind %s, error %q, %d services, %d files", a.Kind, a.Error, len(services), len(a.Files))
	}
	return row
}

// directoryBytes is the size of a zip's central directory and end records (zip64 included): everything
// from the directory's first byte to the end of the archive.
func directoryBytes(ctx context.Context, r manifest.Ranger, size int64) (int64, error) {
	n := min(size, 65*1024+22)
	tail, err := r.ReadRange(ctx, size-n, n)
	if err != nil {
		return 0, err
	}
	for i := len(tail) - 22; i >= 0; i-- {
		if string(tail[i:i+4]) != "PK\x05\x06" {
			continue
		}
		off := int64(binary.LittleEndian.Uint32(tail[i+16:]))
		if off == 0xFFFFFFFF && i >= 20 && string(tail[i-20:i-16]) == "PK\x06\x07" {
			rec := int64(binary.LittleEndian.Uint64(tail[i-20+8:]))
			b, err := r.ReadRange(ctx, rec, 56)
			if err != nil {
				return 0, err
			}
			off = int64(binary.LittleEndian.Uint64(b[48:]))
		}
		return size - off, nil
	}
	return 0, fmt.Errorf("no end of central directory")
}
