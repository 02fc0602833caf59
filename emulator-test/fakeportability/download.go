package fakeportability

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Signed archive downloads: GET /download/{job}/{file} with the query of a Cloud Storage V4 signed URL
// (X-Goog-Algorithm, X-Goog-Credential, X-Goog-Date, X-Goog-Expires, X-Goog-SignedHeaders, X-Goog-Signature),
// answered like Cloud Storage (x-goog-hash, ranges, XML errors), with download faults and an optional
// bandwidth cap. The signature is an HMAC of the fake's own key (Google signs with RSA); what matters to the
// pipeline is the shape of the URL and the answers, which follow Google's pages (see README.md).

// v4DateFormat is X-Goog-Date's format (ISO 8601 basic, UTC).
const v4DateFormat = "20060102T150405Z"

// maxV4Expires is the longest X-Goog-Expires Cloud Storage accepts: 7 days.
const maxV4Expires = 7 * 24 * 3600

func (s *Server) signature(jobID, file, date, expires string) string {
	m := hmac.New(sha256.New, s.sigKey)
	m.Write([]byte(jobID + "\n" + file + "\n" + date + "\n" + expires))
	return hex.EncodeToString(m.Sum(nil))
}

// signedURL signs file of jobID at now for ttl. The query keeps Google's order: the canonical query string,
// then X-Goog-Signature last.
func (s *Server) signedURL(base, jobID, file string, now time.Time, ttl time.Duration) string {
	date := now.UTC().Format(v4DateFormat)
	expires := strconv.FormatInt(int64(ttl/time.Second), 10)
	q := "X-Goog-Algorithm=GOOG4-HMAC-SHA256" +
		"&X-Goog-Credential=" + url.QueryEscape("fake-signer@fake-portability.iam.gserviceaccount.com/"+date[:8]+"/auto/storage/goog4_request") +
		"&X-Goog-Date=" + date + "&X-Goog-Expires=" + expires + "&X-Goog-SignedHeaders=host" +
		"&X-Goog-Signature=" + s.signature(jobID, file, date, expires)
	return base + "/download/" + url.PathEscape(jobID) + "/" + url.PathEscape(file) + "?" + q
}

// checkSignedQuery answers as Cloud Storage does for an unusable signed URL and reports whether it did:
// a malformed X-Goog-Date or X-Goog-Expires is 400 MalformedSecurityHeader, an expired URL 400 ExpiredToken
// (403 with Options.ExpiredURL403, what older stand-ins and some reports show), a signature that does not
// match 403 SignatureDoesNotMatch.
func (s *Server) checkSignedQuery(w http.ResponseWriter, r *http.Request, jobID, file string) bool {
	q := r.URL.Query()
	rawDate, rawExp := q.Get("X-Goog-Date"), q.Get("X-Goog-Expires")
	date, err := time.Parse(v4DateFormat, rawDate)
	if err != nil {
		writeStorageError(w, storageError{code: http.StatusBadRequest, xmlCode: "MalformedSecurityHeader",
			message: "Your request has a malformed header.", param: "x-goog-date", details: "Header was not in the expected format."})
		return true
	}
	exp, err := strconv.ParseInt(rawExp, 10, 64)
	if err != nil || exp < 1 || exp > maxV4Expires {
		writeStorageError(w, storageError{code: http.StatusBadRequest, xmlCode: "MalformedSecurityHeader",
			message: "Your request has a malformed header.", param: "x-goog-expires",
			details: "Expiration must be a number of seconds between 1 and 604800 (7 days)."})
		return true
	}
	if end := date.Add(time.Duration(exp) * time.Second); !s.clock.Now().Before(end) {
		code := http.StatusBadRequest
		if s.opts.ExpiredURL403 {
			code = http.StatusForbidden
		}
		writeStorageError(w, storageError{code: code, xmlCode: "ExpiredToken", message: "Invalid argument.",
			details: "The provided token has expired. Request signature expired at: " + end.UTC().Format(time.RFC3339)})
		return true
	}
	if !hmac.Equal([]byte(q.Get("X-Goog-Signature")), []byte(s.signature(jobID, file, rawDate, rawExp))) {
		writeStorageError(w, storageError{code: http.StatusForbidden, xmlCode: "SignatureDoesNotMatch", message: "Access denied.",
			details: "The request signature we calculated does not match the signature you provided. Check your Google secret key and signing method."})
		return true
	}
	return false
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	jobID, file := r.PathValue("job"), r.PathValue("file")
	if s.checkSignedQuery(w, r, jobID, file) {
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	var o *object
	var owner string
	if j := s.jobs[jobID]; j != nil && j.state(now) == StateComplete && now.Before(j.completedAt().Add(s.opts.Retention)) {
		for _, f := range j.files {
			if f.name == file {
				o, owner = f.obj, j.user
			}
		}
	}
	var fault *DownloadFault
	if o != nil {
		fault = s.faults.takeDownload(owner)
	}
	s.mu.Unlock()
	if o == nil {
		writeStorageError(w, storageError{code: http.StatusNotFound, xmlCode: "NoSuchKey", message: "The specified key does not exist.", details: "No such object: " + file})
		return
	}
	if fault == nil {
		fault = &DownloadFault{}
	}
	if !sleepCtx(r, time.Duration(fault.SlowStartMs)*time.Millisecond) {
		return
	}
	switch {
	case fault.Status != 0:
		writeStorageError(w, storageError{code: fault.Status, xmlCode: fault.Code, message: "Injected fault."})
		return
	case fault.RedirectTo != "":
		http.Redirect(w, r, fault.RedirectTo, http.StatusFound)
		return
	}
	o.prepare()
	h := w.Header()
	if o.kind == "zip" {
		h.Set("Content-Type", "application/zip")
	} else {
		h.Set("Content-Type", "application/json")
	}
	if hash := o.gooHash(!fault.NoCRC32C); hash != "" && !fault.NoHash {
		h.Set("x-goog-hash", hash)
	}
	h.Set("x-goog-stored-content-length", strconv.FormatInt(o.size, 10))
	h.Set("x-goog-storage-class", "STANDARD")
	h.Set("ETag", `"`+o.etag()+`"`)
	out := &downloadWriter{ResponseWriter: w, limit: s.opts.BandwidthLimit, start: time.Now(), cut: -1,
		noLength: fault.NoContentLength, shortBy: fault.ShortBy, keep: -1}
	rd := &objectReader{o: o, corrupt: -1}
	if fault.CutAfterBytes != nil {
		out.cut = *fault.CutAfterBytes
	}
	if fault.CorruptAt != nil {
		rd.corrupt = *fault.CorruptAt
	}
	if fault.IgnoreRange {
		r.Header.Del("Range") // as a server that does not do ranges: 200 with the whole object
	}
	http.ServeContent(out, r, "", time.Time{}, rd)
}

// gooHash is the x-goog-hash value: crc32c (big-endian, base64) and md5 (base64) of the whole object.
// Without withCRC (a fault) only md5 is given, and nothing when there is no md5 either.
func (o *object) gooHash(withCRC bool) string {
	var parts []string
	if withCRC {
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], o.crc32c)
		parts = append(parts, "crc32c="+base64.StdEncoding.EncodeToString(c[:]))
	}
	if o.md5 != nil {
		parts = append(parts, "md5="+base64.StdEncoding.EncodeToString(o.md5))
	}
	return strings.Join(parts, ",")
}

func (o *object) etag() string {
	if o.md5 != nil {
		return base64.RawURLEncoding.EncodeToString(o.md5)
	}
	return strconv.FormatUint(uint64(o.crc32c), 16)
}

// objectReader is an io.ReadSeeker over an object, flipping the bits of one byte when asked.
type objectReader struct {
	o       *object
	off     int64
	corrupt int64 // -1: none
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.off >= r.o.size {
		return 0, io.EOF
	}
	n, err := r.o.ReadAt(p, r.off)
	if r.corrupt >= r.off && r.corrupt < r.off+int64(n) {
		p[r.corrupt-r.off] ^= 0xFF
	}
	r.off += int64(n)
	return n, err
}

func (r *objectReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.o.size
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	r.off = offset
	return offset, nil
}

// downloadWriter copies in large chunks, caps bandwidth and cuts the connection after cut bytes. As faults
// it drops Content-Length (a chunked answer), or sends a 206 whose body, and Content-Length, are shortBy
// bytes shorter than its Content-Range says, ending cleanly.
type downloadWriter struct {
	http.ResponseWriter
	limit    int64 // bytes/s, 0: none
	start    time.Time
	written  int64
	cut      int64 // -1: none
	noLength bool
	shortBy  int64
	keep     int64 // body bytes to send when short; -1: all
}

func (d *downloadWriter) WriteHeader(code int) {
	h := d.Header()
	if d.noLength {
		h.Del("Content-Length")
	}
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && d.shortBy > 0 && code == http.StatusPartialContent {
		d.keep = max(n-d.shortBy, 0)
		h.Set("Content-Length", strconv.FormatInt(d.keep, 10))
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *downloadWriter) Write(p []byte) (int, error) {
	if d.keep >= 0 {
		if d.written >= d.keep {
			return len(p), nil // the rest is never sent
		}
		if rest := d.keep - d.written; int64(len(p)) > rest {
			n, err := d.write(p[:rest])
			if err != nil {
				return n, err
			}
			return len(p), nil
		}
	}
	return d.write(p)
}

func (d *downloadWriter) write(p []byte) (int, error) {
	if d.cut >= 0 && d.written+int64(len(p)) > d.cut {
		n, _ := d.ResponseWriter.Write(p[:d.cut-d.written])
		d.written += int64(n)
		_ = http.NewResponseController(d.ResponseWriter).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	n, err := d.ResponseWriter.Write(p)
	d.written += int64(n)
	if d.limit > 0 {
		due := d.start.Add(time.Duration(float64(d.written) / float64(d.limit) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
	}
	return n, err
}

// ReadFrom uses 1 MiB chunks (io.Copy's default 32 KiB costs throughput on multi-GB bodies).
func (d *downloadWriter) ReadFrom(src io.Reader) (int64, error) {
	size := 1 << 20
	if d.limit > 0 {
		size = int(min(max(d.limit/10, 4096), 1<<20))
	}
	return io.CopyBuffer(writerOnly{d}, src, make([]byte, size))
}

type writerOnly struct{ io.Writer }

func (d *downloadWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
