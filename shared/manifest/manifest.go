// Package manifest describes what an exported resource holds: manifest.json beside its archives
// (<prefix>/<user>/<round>/<resource>/<job>/manifest.json) lists each archive's files (path, size,
// compressed size, CRC32), the services and folders of Portability/archive_browser.json with their
// is_incomplete flags, the payload kind (zip, bare JSON, other), the export time and the time range.
//
// It is built from each zip's central directory with ranged reads of the stored object (never a whole
// download): zip.NewReader over a ReaderAt that fetches only what it is asked for (the end of central
// directory and zip64 records, the central directory) plus Portability/archive_browser.json, so the bytes
// read are the directory's size plus at most 1 MiB, whatever the archive holds. Each file's CRC32 is the
// one the directory lists, not recomputed: the whole archive's CRC32C was verified end to end against the
// source before the manifest is built, so reading the files again would prove nothing about our copy, and
// an archive of many small files would be downloaded a second time. The same inputs always give the same
// bytes, so writing it again is harmless.
package manifest

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
)

// Version is the manifest format version (field manifest_version). Version 2 lists CRC32s from the
// directory: the per-file "check" field and the "mismatches" total of version 1 are gone, "bytes_read" is new.
const Version = 2

// FileName is the manifest's object name in the job's folder.
const FileName = "manifest.json"

// BrowserPath is the entry whose services and folders the manifest lists.
const BrowserPath = "Portability/archive_browser.json"

// maxBrowser bounds the uncompressed archive_browser.json; maxBrowserCompressed bounds what is read of
// it, so the whole read stays within the directory plus 1 MiB (Google's is a few KiB).
const (
	maxBrowser           = 8 << 20
	maxBrowserCompressed = 256 << 10
)

// Payload kinds.
const (
	KindZip   = "zip"
	KindJSON  = "json"
	KindOther = "other"
)

// Manifest is manifest.json.
type Manifest struct {
	ManifestVersion int       `json:"manifest_version"`
	User            string    `json:"user"`
	Round           string    `json:"round"`
	Resource        string    `json:"resource"`
	Job             string    `json:"job"`
	ExportTime      time.Time `json:"export_time"`
	// TimeRange is the span of the exported data: no start means from the beginning of the account's history.
	TimeRange TimeRange `json:"time_range"`
	// TimeFilter says how the range was chosen: "applied" (only time_range), "none" (the whole history
	// was asked), "unsupported" (the group takes no time filter: each round holds its whole content).
	TimeFilter string    `json:"time_filter,omitempty"`
	Archives   []Archive `json:"archives"`
	Services   []Service `json:"services"`
	Totals     Totals    `json:"totals"`
}

// TimeRange is a half-open span of activity time.
type TimeRange struct {
	Start *time.Time `json:"start,omitempty"`
	End   time.Time  `json:"end"`
}

// Archive is one stored archive file (one signed URL of the job).
type Archive struct {
	Index      int    `json:"index"`
	Object     string `json:"object"`
	SourceName string `json:"source_name,omitempty"`
	Size       int64  `json:"size"`
	CRC32C     string `json:"crc32c,omitempty"`
	Kind       string `json:"kind"`
	Files      []File `json:"files"`
	// BytesRead is what listing the archive read of it (the directory, its end records, archive_browser.json).
	BytesRead int64 `json:"bytes_read"`
	// Error says why a zip-looking archive, or its archive_browser.json, could not be read (the archive
	// itself is stored as verified).
	Error string `json:"error,omitempty"`
}

// File is one entry of an archive (for a bare JSON payload, the payload itself). Sizes and CRC32 are as
// the central directory lists them.
type File struct {
	Path           string `json:"path"`
	Size           int64  `json:"size"`
	CompressedSize int64  `json:"compressed_size"`
	CRC32          uint32 `json:"crc32"`
}

// Service is one service of archive_browser.json.
type Service struct {
	Name         string   `json:"name"`
	Archive      int      `json:"archive"`
	IsIncomplete bool     `json:"is_incomplete"`
	Folders      []Folder `json:"folders"`
}

// Folder is one folder of a service.
type Folder struct {
	Name         string `json:"name"`
	Resource     string `json:"resource,omitempty"`
	IsIncomplete bool   `json:"is_incomplete"`
}

// Totals sum the archives.
type Totals struct {
	Archives         int   `json:"archives"`
	Files            int   `json:"files"`
	Bytes            int64 `json:"bytes"`
	UncompressedSize int64 `json:"uncompressed_bytes"`
	BytesRead        int64 `json:"bytes_read"`
}

// ObjectName is where the manifest of a job's archives is stored (beside copyengine.ObjectName's objects).
func ObjectName(prefix, user, round, resource, job string) string {
	n := copyengine.ObjectName(prefix, user, round, resource, job, 0, "x")
	return n[:strings.LastIndexByte(n, '/')+1] + FileName
}

// Input is one archive to describe.
type Input struct {
	Index      int
	Object     string
	SourceName string
	Size       int64
	CRC32C     string
	// Source serves ranged reads of the stored object.
	Source Ranger
}

// Job identifies the export.
type Job struct {
	User, Round, Resource, Job string
	ExportTime                 time.Time
	// StartTime is the start of the exported range (zero: from the beginning of the history).
	StartTime time.Time
	// TimeFilter is store.TimeFilter* ("applied", "none", "unsupported"); empty leaves it out.
	TimeFilter string
}

// Build describes the archives of a job. Storage errors are returned (try again); an archive that is
// not a readable zip is described by kind, with the reason in Error.
func Build(ctx context.Context, j Job, archives []Input) (*Manifest, error) {
	m := New(j)
	for _, in := range archives {
		a, services, err := Describe(ctx, in)
		if err != nil {
			return nil, err
		}
		m.Add(a, services)
	}
	return m, nil
}

// New is the manifest of a job before any archive is added.
func New(j Job) *Manifest {
	m := &Manifest{ManifestVersion: Version, User: j.User, Round: j.Round, Resource: j.Resource, Job: j.Job,
		ExportTime: j.ExportTime.UTC(), TimeRange: TimeRange{End: j.ExportTime.UTC()}, TimeFilter: j.TimeFilter,
		Archives: []Archive{}, Services: []Service{}}
	if !j.StartTime.IsZero() {
		start := j.StartTime.UTC()
		m.TimeRange.Start = &start
	}
	return m
}

// Add counts one described archive into the manifest (archives in index order).
func (m *Manifest) Add(a Archive, services []Service) {
	m.Archives = append(m.Archives, a)
	m.Services = append(m.Services, services...)
	m.Totals.Archives++
	m.Totals.Bytes += a.Size
	m.Totals.BytesRead += a.BytesRead
	for _, f := range a.Files {
		m.Totals.Files++
		m.Totals.UncompressedSize += f.Size
	}
}

// Describe lists one archive. Storage errors are returned (try again).
func Describe(ctx context.Context, in Input) (Archive, []Service, error) {
	ra := NewReaderAt(ctx, in.Source, in.Size)
	a, services, err := describe(ra, in)
	if err != nil {
		return a, nil, fmt.Errorf("read archive %d: %w", in.Index, err)
	}
	_, a.BytesRead = ra.Fetched()
	return a, services, nil
}

// Encode is the manifest's stored form (indented JSON, newline-terminated).
func (m *Manifest) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// storageError marks an error of the underlying reads (as opposed to a malformed archive).
type storageError struct{ err error }

func (e storageError) Error() string { return e.err.Error() }
func (e storageError) Unwrap() error { return e.err }

// guard wraps a ReaderAt so its errors can be told from format errors.
type guard struct{ r io.ReaderAt }

func (g guard) ReadAt(p []byte, off int64) (int, error) {
	n, err := g.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = storageError{err}
	}
	return n, err
}

func describe(ra io.ReaderAt, in Input) (Archive, []Service, error) {
	a := Archive{Index: in.Index, Object: in.Object, SourceName: in.SourceName, Size: in.Size, CRC32C: in.CRC32C, Files: []File{}}
	r := guard{ra}
	zr, err := zip.NewReader(r, in.Size)
	var se storageError
	switch {
	case errors.As(err, &se):
		return a, nil, err
	case err != nil:
		kind, ferr := sniff(r, in.Size)
		if ferr != nil {
			return a, nil, ferr
		}
		a.Kind = kind
		if kind == KindJSON {
			name := in.SourceName
			if name == "" {
				name = path.Base(in.Object)
			}
			a.Files = append(a.Files, File{Path: name, Size: in.Size, CompressedSize: in.Size})
		} else if looksZip(r) {
			a.Error = "not a readable zip: " + err.Error()
		}
		return a, nil, nil
	}
	a.Kind = KindZip
	var services []Service
	browserSeen := false
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		a.Files = append(a.Files, File{Path: f.Name, Size: int64(f.UncompressedSize64), CompressedSize: int64(f.CompressedSize64), CRC32: f.CRC32})
		if f.Name != BrowserPath || browserSeen {
			continue
		}
		browserSeen = true
		if f.CompressedSize64 > maxBrowserCompressed || f.UncompressedSize64 > maxBrowser {
			a.Error = fmt.Sprintf("%s is %d bytes (%d compressed), over the %d (%d) read for the manifest: its services are not listed",
				BrowserPath, f.UncompressedSize64, f.CompressedSize64, maxBrowser, maxBrowserCompressed)
			continue
		}
		content, err := readFile(f)
		switch {
		case errors.As(err, &se):
			return a, nil, err
		case err != nil:
			a.Error = BrowserPath + " is unreadable: " + err.Error()
		default:
			services = append(services, browser(content, in.Index)...)
		}
	}
	return a, services, nil
}

// readFile reads a zip entry whole; archive/zip checks its CRC32 at EOF (zip.ErrChecksum on mismatch)
// and refuses more bytes than the directory lists (zip.ErrFormat).
func readFile(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxBrowser+1))
}

// sniff tells a bare JSON payload from anything else by its first non-blank byte.
func sniff(r io.ReaderAt, size int64) (string, error) {
	buf := make([]byte, min(size, 512))
	n, err := r.ReadAt(buf, 0)
	var se storageError
	if errors.As(err, &se) {
		return "", err
	}
	for _, c := range buf[:n] {
		switch c {
		case ' ', '\t', '\r', '\n', 0xEF, 0xBB, 0xBF: // blanks and a UTF-8 BOM
			continue
		case '{', '[':
			return KindJSON, nil
		}
		return KindOther, nil
	}
	return KindOther, nil
}

func looksZip(r io.ReaderAt) bool {
	var b [4]byte
	n, _ := r.ReadAt(b[:], 0)
	return n == 4 && string(b[:]) == "PK\x03\x04"
}

// browser reads the services of archive_browser.json ({"services":[{"name","is_incomplete","folders":[...]}]}).
func browser(content []byte, archive int) []Service {
	var doc struct {
		Services []struct {
			Name         string `json:"name"`
			IsIncomplete bool   `json:"is_incomplete"`
			Folders      []struct {
				Name         string `json:"name"`
				Resource     string `json:"resource"`
				IsIncomplete bool   `json:"is_incomplete"`
			} `json:"folders"`
		} `json:"services"`
	}
	if json.Unmarshal(content, &doc) != nil {
		return nil
	}
	var out []Service
	for _, s := range doc.Services {
		sv := Service{Name: s.Name, Archive: archive, IsIncomplete: s.IsIncomplete, Folders: []Folder{}}
		for _, f := range s.Folders {
			sv.Folders = append(sv.Folders, Folder{Name: f.Name, Resource: f.Resource, IsIncomplete: f.IsIncomplete})
		}
		out = append(out, sv)
	}
	return out
}
