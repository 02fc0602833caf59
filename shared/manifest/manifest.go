// Package manifest describes what an exported resource holds: manifest.json beside its archives
// (<prefix>/<user>/<round>/<resource>/<job>/manifest.json) lists each archive's files (path, size,
// compressed size, CRC32), the services and folders of Portability/archive_browser.json with their
// is_incomplete flags, the payload kind (zip, bare JSON, other), the export time and the time range.
//
// It is built from each zip's central directory with ranged reads of the stored object (never a whole
// download): zip.NewReader over an io.ReaderAt that reads blocks of the object and keeps a few of them
// (ReaderAt). Files up to MaxCheck bytes are read to check their CRC32 against the directory. The same
// inputs always give the same bytes, so writing it again is harmless.
package manifest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/transfer"
)

// Version is the manifest format version (field manifest_version).
const Version = 1

// FileName is the manifest's object name in the job's folder.
const FileName = "manifest.json"

// MaxCheck is the largest file whose CRC32 is checked by reading it.
const MaxCheck = 1 << 20

// maxBrowser bounds the archive_browser.json read.
const maxBrowser = 8 << 20

// Payload kinds.
const (
	KindZip   = "zip"
	KindJSON  = "json"
	KindOther = "other"
)

// File checks.
const (
	CheckOK       = "ok"
	CheckMismatch = "mismatch"
	CheckNotRead  = "not_read" // larger than MaxCheck
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
	Archives  []Archive `json:"archives"`
	Services  []Service `json:"services"`
	Totals    Totals    `json:"totals"`
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
	// Error says why a zip-looking archive could not be listed (the archive itself is stored as verified).
	Error string `json:"error,omitempty"`
}

// File is one entry of an archive (for a bare JSON payload, the payload itself).
type File struct {
	Path           string `json:"path"`
	Size           int64  `json:"size"`
	CompressedSize int64  `json:"compressed_size"`
	CRC32          uint32 `json:"crc32"`
	Check          string `json:"check,omitempty"`
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
	Mismatches       int   `json:"mismatches"`
}

// ObjectName is where the manifest of a job's archives is stored (beside transfer.ObjectName's objects).
func ObjectName(prefix, user, round, resource, job string) string {
	n := transfer.ObjectName(prefix, user, round, resource, job, 0, "x")
	return n[:strings.LastIndexByte(n, '/')+1] + FileName
}

// Input is one archive to describe.
type Input struct {
	Index      int
	Object     string
	SourceName string
	Size       int64
	CRC32C     string
	// Open returns a reader of the stored object (ranged reads).
	Open func(ctx context.Context) (io.ReaderAt, error)
}

// Job identifies the export.
type Job struct {
	User, Round, Resource, Job string
	ExportTime                 time.Time
}

// Build describes the archives of a job. Storage errors are returned (try again); an archive that is
// not a readable zip is described by kind, with the reason in Error.
func Build(ctx context.Context, j Job, archives []Input) (*Manifest, error) {
	m := &Manifest{ManifestVersion: Version, User: j.User, Round: j.Round, Resource: j.Resource, Job: j.Job,
		ExportTime: j.ExportTime.UTC(), TimeRange: TimeRange{End: j.ExportTime.UTC()}, Archives: []Archive{}, Services: []Service{}}
	for _, in := range archives {
		ra, err := in.Open(ctx)
		if err != nil {
			return nil, fmt.Errorf("open archive %d: %w", in.Index, err)
		}
		a, services, err := describe(ra, in)
		if err != nil {
			return nil, fmt.Errorf("read archive %d: %w", in.Index, err)
		}
		m.Archives = append(m.Archives, a)
		m.Services = append(m.Services, services...)
		m.Totals.Archives++
		m.Totals.Bytes += a.Size
		for _, f := range a.Files {
			m.Totals.Files++
			m.Totals.UncompressedSize += f.Size
			if f.Check == CheckMismatch {
				m.Totals.Mismatches++
			}
		}
	}
	return m, nil
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
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		file := File{Path: f.Name, Size: int64(f.UncompressedSize64), CompressedSize: int64(f.CompressedSize64), CRC32: f.CRC32}
		var content []byte
		isBrowser := path.Base(f.Name) == "archive_browser.json"
		if f.UncompressedSize64 <= MaxCheck || isBrowser && f.UncompressedSize64 <= maxBrowser {
			content, err = readFile(f)
			switch {
			case errors.As(err, &se):
				return a, nil, err
			case err != nil:
				file.Check = CheckMismatch
				content = nil
			default:
				file.Check = CheckOK
			}
		} else {
			file.Check = CheckNotRead
		}
		if isBrowser && content != nil {
			services = append(services, browser(content, in.Index)...)
		}
		a.Files = append(a.Files, file)
	}
	return a, services, nil
}

// readFile reads a zip entry whole; archive/zip checks its CRC32 at EOF (zip.ErrChecksum on mismatch).
func readFile(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var b bytes.Buffer
	h := crc32.NewIEEE()
	// The caller reads only entries declaring at most MaxCheck bytes, and archive/zip stops with ErrFormat
	// past the declared size.
	if _, err := io.Copy(io.MultiWriter(&b, h), rc); err != nil { //nolint:gosec // G110: bounded as above
		return nil, err
	}
	if h.Sum32() != f.CRC32 {
		return nil, zip.ErrChecksum
	}
	return b.Bytes(), nil
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
