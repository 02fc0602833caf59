package fakeportability

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Signed archive downloads: GET /download/{job}/{file}?expires=UNIX&sig=HMAC, answered like Cloud Storage
// (x-goog-hash, ranges, XML errors), with download faults and an optional bandwidth cap.

func (s *Server) signature(jobID, file string, expires int64) string {
	m := hmac.New(sha256.New, s.sigKey)
	m.Write([]byte(jobID + "\n" + file + "\n" + strconv.FormatInt(expires, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) signedURL(base, jobID, file string, expires time.Time) string {
	exp := expires.Unix()
	q := url.Values{"expires": {strconv.FormatInt(exp, 10)}, "sig": {s.signature(jobID, file, exp)}}
	return base + "/download/" + url.PathEscape(jobID) + "/" + url.PathEscape(file) + "?" + q.Encode()
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	jobID, file := r.PathValue("job"), r.PathValue("file")
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || !hmac.Equal([]byte(q.Get("sig")), []byte(s.signature(jobID, file, exp))) {
		writeStorageError(w, http.StatusForbidden, "SignatureDoesNotMatch", "Access denied.",
			"The request signature we calculated does not match the signature you provided. Check your Google secret key and signing method.")
		return
	}
	now := s.clock.Now()
	if now.Unix() >= exp {
		writeStorageError(w, http.StatusForbidden, "ExpiredToken", "Invalid argument.",
			"The provided token has expired. Request signature expired at: "+time.Unix(exp, 0).UTC().Format(time.RFC3339))
		return
	}
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
		writeStorageError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", "No such object: "+file)
		return
	}
	o.prepare()
	if fault != nil && !sleepCtx(r, time.Duration(fault.SlowStartMs)*time.Millisecond) {
		return
	}
	h := w.Header()
	if o.kind == "zip" {
		h.Set("Content-Type", "application/zip")
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("x-goog-hash", o.gooHash())
	h.Set("x-goog-stored-content-length", strconv.FormatInt(o.size, 10))
	h.Set("x-goog-storage-class", "STANDARD")
	h.Set("ETag", `"`+o.etag()+`"`)
	out := &downloadWriter{ResponseWriter: w, limit: s.opts.BandwidthLimit, start: time.Now(), cut: -1}
	rd := &objectReader{o: o, corrupt: -1}
	if fault != nil {
		if fault.CutAfterBytes != nil {
			out.cut = *fault.CutAfterBytes
		}
		if fault.CorruptAt != nil {
			rd.corrupt = *fault.CorruptAt
		}
	}
	http.ServeContent(out, r, "", time.Time{}, rd)
}

// gooHash is the x-goog-hash value: crc32c (big-endian, base64) and md5 (base64) of the whole object.
func (o *object) gooHash() string {
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], o.crc32c)
	v := "crc32c=" + base64.StdEncoding.EncodeToString(c[:])
	if o.md5 != nil {
		v += ",md5=" + base64.StdEncoding.EncodeToString(o.md5)
	}
	return v
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

// downloadWriter copies in large chunks, caps bandwidth and cuts the connection after cut bytes.
type downloadWriter struct {
	http.ResponseWriter
	limit   int64 // bytes/s, 0: none
	start   time.Time
	written int64
	cut     int64 // -1: none
}

func (d *downloadWriter) Write(p []byte) (int, error) {
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
