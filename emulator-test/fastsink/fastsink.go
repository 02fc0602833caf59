// Package fastsink is a Cloud Storage stand-in for throughput benchmarks: an HTTP server speaking the part
// of the JSON API the Go storage client uses to write objects (resumable and multipart uploads, compose,
// object metadata, delete), which checksums every byte it receives (CRC32C, as Cloud Storage) and then
// discards it. It keeps only names, sizes, CRC32Cs and metadata, so objects of any size cost no memory, and
// it hashes at memory speed where fake-gcs-server re-hashes whole objects (about 27 MB/s here).
//
// Point the client at it with
//
//	storage.NewClient(ctx, option.WithEndpoint(srv.URL+"/storage/v1/"), option.WithoutAuthentication())
//
// or STORAGE_EMULATOR_HOST=host:port. Reads of object content are not served (the bytes are gone).
package fastsink

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Object is what the server keeps of a stored object: what a copyengine.Sink reports of it, and where
// and when it was stored.
type Object struct {
	copyengine.ObjectInfo
	Bucket  string
	Created time.Time
}

// Stats counts requests and bytes.
type Stats struct {
	Uploads, Chunks, Composes, Deletes, Gets int64
	Bytes                                    int64 // content bytes received
}

type session struct {
	mu     sync.Mutex
	meta   objectJSON
	bucket string
	off    int64
	crc    uint32
	done   bool
}

// Server is the sink. Safe for concurrent use.
type Server struct {
	mu       sync.Mutex
	objects  map[string]*Object // bucket + "/" + name
	sessions map[string]*session
	gen      int64
	// BaseURL is the external URL of the server (session URIs point at it); taken from each request's Host
	// when empty.
	BaseURL string

	uploads, chunks, composes, deletes, gets, bytes atomic.Int64
}

// New returns an empty server; serve it with Handler.
func New() *Server {
	return &Server{objects: map[string]*Object{}, sessions: map[string]*session{}}
}

// Stats reports the counters so far.
func (s *Server) Stats() Stats {
	return Stats{Uploads: s.uploads.Load(), Chunks: s.chunks.Load(), Composes: s.composes.Load(),
		Deletes: s.deletes.Load(), Gets: s.gets.Load(), Bytes: s.bytes.Load()}
}

// Object returns a stored object.
func (s *Server) Object(bucket, name string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[bucket+"/"+name]
	if !ok {
		return Object{}, false
	}
	return *o, true
}

// Names lists the objects of bucket.
func (s *Server) Names(bucket string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, o := range s.objects {
		if o.Bucket == bucket {
			names = append(names, o.Name)
		}
	}
	return names
}

// Reset forgets every object and session.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects, s.sessions = map[string]*Object{}, map[string]*session{}
}

// Handler serves the API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// objectJSON is the API's object resource (the fields the client reads and writes).
type objectJSON struct {
	Kind           string            `json:"kind,omitempty"`
	ID             string            `json:"id,omitempty"`
	Bucket         string            `json:"bucket,omitempty"`
	Name           string            `json:"name,omitempty"`
	Size           string            `json:"size,omitempty"`
	CRC32C         string            `json:"crc32c,omitempty"`
	ContentType    string            `json:"contentType,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Generation     string            `json:"generation,omitempty"`
	Metageneration string            `json:"metageneration,omitempty"`
	StorageClass   string            `json:"storageClass,omitempty"`
	TimeCreated    string            `json:"timeCreated,omitempty"`
	Updated        string            `json:"updated,omitempty"`
	ComponentCount int               `json:"componentCount,omitempty"`
}

func (o *Object) json() objectJSON {
	ts := o.Created.UTC().Format(time.RFC3339Nano)
	return objectJSON{Kind: "storage#object", ID: o.Bucket + "/" + o.Name + "/" + strconv.FormatInt(o.Generation, 10),
		Bucket: o.Bucket, Name: o.Name, Size: strconv.FormatInt(o.Size, 10), CRC32C: encodeCRC(o.CRC32C),
		ContentType: o.ContentType, Metadata: o.Metadata, Generation: strconv.FormatInt(o.Generation, 10),
		Metageneration: "1", StorageClass: "STANDARD", TimeCreated: ts, Updated: ts}
}

func encodeCRC(c uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], c)
	return base64.StdEncoding.EncodeToString(b[:])
}

func decodeCRC(s string) (uint32, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

// apiError writes the JSON API's error shape.
func apiError(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg, "errors": []map[string]string{{"domain": "global", "reason": reason, "message": msg}},
	}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

// splitPath parses /storage/v1/b/B/o[/NAME[/compose]] and /upload/storage/v1/b/B/o from the escaped path
// (object names hold %2F).
func splitPath(p string) (upload bool, bucket, name, verb string, ok bool) {
	rest, found := strings.CutPrefix(p, "/upload/storage/v1/b/")
	if found {
		upload = true
	} else if rest, found = strings.CutPrefix(p, "/storage/v1/b/"); !found {
		return false, "", "", "", false
	}
	b, rest, _ := strings.Cut(rest, "/")
	bucket, err := url.PathUnescape(b)
	if err != nil || bucket == "" {
		return false, "", "", "", false
	}
	if rest == "" {
		return upload, bucket, "", "", true // the bucket itself
	}
	rest, found = strings.CutPrefix(rest, "o")
	if !found || rest != "" && rest[0] != '/' {
		return false, "", "", "", false
	}
	rest = strings.TrimPrefix(rest, "/")
	if n, found := strings.CutSuffix(rest, "/compose"); found {
		rest, verb = n, "compose"
	}
	if name, err = url.PathUnescape(rest); err != nil {
		return false, "", "", "", false
	}
	return upload, bucket, name, verb, true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	upload, bucket, name, verb, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		apiError(w, http.StatusNotFound, "notFound", "Not Found")
		return
	}
	q := r.URL.Query()
	switch {
	case upload && q.Get("upload_id") != "" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		s.chunk(w, r, q.Get("upload_id"))
	case upload && r.Method == http.MethodPost && q.Get("uploadType") == "resumable":
		s.startResumable(w, r, bucket)
	case upload && r.Method == http.MethodPost && q.Get("uploadType") == "multipart":
		s.multipart(w, r, bucket)
	case upload && r.Method == http.MethodPost && q.Get("uploadType") == "media":
		s.media(w, r, bucket, q.Get("name"))
	case upload && r.Method == http.MethodDelete && q.Get("upload_id") != "":
		s.mu.Lock()
		delete(s.sessions, q.Get("upload_id"))
		s.mu.Unlock()
		w.WriteHeader(499) // what Cloud Storage answers to a cancelled session
	case !upload && verb == "compose" && r.Method == http.MethodPost:
		s.compose(w, r, bucket, name)
	case !upload && name == "" && r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/o"):
		writeJSON(w, map[string]string{"kind": "storage#bucket", "id": bucket, "name": bucket, "location": "LOCAL", "storageClass": "STANDARD"})
	case !upload && name != "" && r.Method == http.MethodGet:
		s.gets.Add(1)
		if q.Get("alt") == "media" {
			apiError(w, http.StatusNotImplemented, "notImplemented", "fastsink discards object content")
			return
		}
		o, ok := s.Object(bucket, name)
		if !ok {
			apiError(w, http.StatusNotFound, "notFound", "No such object: "+bucket+"/"+name)
			return
		}
		writeJSON(w, o.json())
	case !upload && name != "" && r.Method == http.MethodDelete:
		s.deletes.Add(1)
		s.mu.Lock()
		_, ok := s.objects[bucket+"/"+name]
		delete(s.objects, bucket+"/"+name)
		s.mu.Unlock()
		if !ok {
			apiError(w, http.StatusNotFound, "notFound", "No such object: "+bucket+"/"+name)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusNotImplemented, "notImplemented", fmt.Sprintf("fastsink does not serve %s %s", r.Method, r.URL.Path))
	}
}

// store commits an object (replacing any of that name) and answers with it.
func (s *Server) store(w http.ResponseWriter, bucket string, meta objectJSON, size int64, crc uint32, declared string) {
	if declared != "" {
		if want, ok := decodeCRC(declared); !ok || want != crc {
			apiError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Provided CRC32C %q doesn't match calculated CRC32C %q.", declared, encodeCRC(crc)))
			return
		}
	}
	if meta.Name == "" {
		apiError(w, http.StatusBadRequest, "required", "Required: object name")
		return
	}
	s.mu.Lock()
	s.gen++
	o := &Object{Bucket: bucket, Created: time.Now(), ObjectInfo: copyengine.ObjectInfo{Name: meta.Name, Size: size, CRC32C: crc,
		ContentType: meta.ContentType, Metadata: meta.Metadata, Generation: time.Now().UnixMicro()*1000 + s.gen%1000}}
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	s.objects[bucket+"/"+meta.Name] = o
	s.mu.Unlock()
	writeJSON(w, o.json())
}

// hashBody reads r to the end, checksumming and discarding it.
func (s *Server) hashBody(r io.Reader, crc uint32) (uint32, int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			crc = crc32.Update(crc, castagnoli, buf[:k])
			n += int64(k)
		}
		if err == io.EOF {
			s.bytes.Add(n)
			return crc, n, nil
		}
		if err != nil {
			s.bytes.Add(n)
			return crc, n, err
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// declaredCRC is the crc32c of an X-Goog-Hash header, or "".
func declaredCRC(h http.Header) string {
	for _, v := range h.Values("X-Goog-Hash") {
		for _, kv := range strings.Split(v, ",") {
			if c, ok := strings.CutPrefix(strings.TrimSpace(kv), "crc32c="); ok {
				return c
			}
		}
	}
	return ""
}

func (s *Server) startResumable(w http.ResponseWriter, r *http.Request, bucket string) {
	s.uploads.Add(1)
	var meta objectJSON
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&meta); err != nil && !errors.Is(err, io.EOF) {
			apiError(w, http.StatusBadRequest, "parseError", "bad object metadata: "+err.Error())
			return
		}
	}
	if n := r.URL.Query().Get("name"); n != "" {
		meta.Name = n
	}
	if meta.Name == "" {
		apiError(w, http.StatusBadRequest, "required", "Required: object name")
		return
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	uid := hex.EncodeToString(id[:])
	s.mu.Lock()
	s.sessions[uid] = &session{meta: meta, bucket: bucket}
	s.mu.Unlock()
	base := s.BaseURL
	if base == "" {
		base = "http://" + r.Host
	}
	w.Header().Set("Location", base+"/upload/storage/v1/b/"+url.PathEscape(bucket)+"/o?uploadType=resumable&upload_id="+uid)
	w.WriteHeader(http.StatusOK)
}

// parseContentRange reads "bytes A-B/T", "bytes A-B/*" and "bytes */T" (-1 for absent parts).
func parseContentRange(h string) (first, last, total int64, ok bool) {
	rest, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	first, last, total = -1, -1, -1
	if tot != "*" {
		t, err := strconv.ParseInt(tot, 10, 64)
		if err != nil || t < 0 {
			return 0, 0, 0, false
		}
		total = t
	}
	if rng != "*" {
		a, b, found := strings.Cut(rng, "-")
		if !found {
			return 0, 0, 0, false
		}
		var err1, err2 error
		first, err1 = strconv.ParseInt(a, 10, 64)
		last, err2 = strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil || first < 0 || last < first {
			return 0, 0, 0, false
		}
	}
	return first, last, total, true
}

func (s *Server) chunk(w http.ResponseWriter, r *http.Request, uid string) {
	s.chunks.Add(1)
	s.mu.Lock()
	ss := s.sessions[uid]
	s.mu.Unlock()
	if ss == nil {
		apiError(w, http.StatusNotFound, "notFound", "No such upload session")
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.done {
		apiError(w, http.StatusNotFound, "notFound", "upload session already finalized")
		return
	}
	first, last, total, ok := parseContentRange(r.Header.Get("Content-Range"))
	if !ok {
		apiError(w, http.StatusBadRequest, "invalid", "bad Content-Range "+strconv.Quote(r.Header.Get("Content-Range")))
		return
	}
	incomplete := func() {
		if ss.off > 0 {
			w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", ss.off-1))
		}
		if r.Header.Get("X-GUploader-No-308") == "yes" {
			w.Header().Set("X-Http-Status-Code-Override", "308")
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusPermanentRedirect)
	}
	if first >= 0 {
		if first != ss.off {
			// A resent or out-of-order chunk: tell the client where we are.
			_, _ = io.Copy(io.Discard, r.Body)
			incomplete()
			return
		}
		crc, n, err := s.hashBody(r.Body, ss.crc)
		if err != nil {
			// The chunk is lost; the client resends it from ss.off.
			return
		}
		if n != last-first+1 {
			apiError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("chunk has %d bytes, Content-Range says %d", n, last-first+1))
			return
		}
		ss.crc, ss.off = crc, ss.off+n
	}
	if total < 0 || ss.off < total {
		incomplete()
		return
	}
	if ss.off != total {
		apiError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("upload has %d bytes, final Content-Range says %d", ss.off, total))
		return
	}
	ss.done = true
	s.mu.Lock()
	delete(s.sessions, uid)
	s.mu.Unlock()
	crc := declaredCRC(r.Header)
	if crc == "" {
		crc = ss.meta.CRC32C
	}
	s.store(w, ss.bucket, ss.meta, ss.off, ss.crc, crc)
}

func (s *Server) multipart(w http.ResponseWriter, r *http.Request, bucket string) {
	s.uploads.Add(1)
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		apiError(w, http.StatusBadRequest, "invalid", "multipart upload without a boundary")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	mp, err := mr.NextPart()
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid", "multipart upload without metadata")
		return
	}
	var meta objectJSON
	if err := json.NewDecoder(mp).Decode(&meta); err != nil {
		apiError(w, http.StatusBadRequest, "parseError", "bad object metadata: "+err.Error())
		return
	}
	mp, err = mr.NextPart()
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid", "multipart upload without media")
		return
	}
	if ct := mp.Header.Get("Content-Type"); meta.ContentType == "" && ct != "" {
		meta.ContentType = ct
	}
	crc, n, err := s.hashBody(mp, 0)
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid", "reading media: "+err.Error())
		return
	}
	if n := r.URL.Query().Get("name"); n != "" {
		meta.Name = n
	}
	s.store(w, bucket, meta, n, crc, meta.CRC32C)
}

func (s *Server) media(w http.ResponseWriter, r *http.Request, bucket, name string) {
	s.uploads.Add(1)
	crc, n, err := s.hashBody(r.Body, 0)
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid", "reading media: "+err.Error())
		return
	}
	s.store(w, bucket, objectJSON{Name: name, ContentType: r.Header.Get("Content-Type")}, n, crc, declaredCRC(r.Header))
}

type composeRequest struct {
	SourceObjects []struct {
		Name string `json:"name"`
	} `json:"sourceObjects"`
	Destination *objectJSON `json:"destination"`
}

func (s *Server) compose(w http.ResponseWriter, r *http.Request, bucket, name string) {
	s.composes.Add(1)
	var req composeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "parseError", "bad compose request: "+err.Error())
		return
	}
	if len(req.SourceObjects) == 0 || len(req.SourceObjects) > copyengine.MaxComposeSources {
		apiError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("compose needs 1 to %d sources, got %d", copyengine.MaxComposeSources, len(req.SourceObjects)))
		return
	}
	s.mu.Lock()
	var size int64
	var crc uint32
	for _, so := range req.SourceObjects {
		o := s.objects[bucket+"/"+so.Name]
		if o == nil {
			s.mu.Unlock()
			apiError(w, http.StatusNotFound, "notFound", "Object "+so.Name+" not found")
			return
		}
		crc = copyengine.CombineCRC32C(crc, o.CRC32C, o.Size)
		size += o.Size
	}
	s.mu.Unlock()
	meta := objectJSON{Name: name}
	if req.Destination != nil {
		meta.ContentType, meta.Metadata = req.Destination.ContentType, req.Destination.Metadata
	}
	s.store(w, bucket, meta, size, crc, "")
}
