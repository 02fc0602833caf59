package copyengine

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Source describes a signed URL's object, learnt by Probe.
type Source struct {
	Size        int64
	CRC32C      uint32 // whole-object CRC32C from x-goog-hash
	HasCRC32C   bool   // false when the host sent no crc32c (never for Cloud Storage)
	MD5         []byte // nil for composite objects
	ContentType string
	// Name is the file name from Content-Disposition, else the last element of
	// the URL path (unsanitized: pass it to ObjectName).
	Name string
}

// Probe learns the size and checksums of the object behind a signed URL
// without downloading it: a GET of byte 0 (signed URLs are often signed for
// GET only, so no HEAD). Errors are *HTTPError or redacted transport errors:
// classify them with Classify. The URL's query never appears in an error.
func Probe(ctx context.Context, client *http.Client, rawURL string) (Source, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Source{}, fmt.Errorf("probe %s: bad URL", RedactURL(rawURL))
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := client.Do(req)
	if err != nil {
		return Source{}, fmt.Errorf("probe: %w", redactErr(err))
	}
	defer resp.Body.Close() // never read: a 200 may carry the whole object

	var src Source
	switch resp.StatusCode {
	case http.StatusPartialContent:
		total, ok := contentRangeTotal(resp.Header.Get("Content-Range"))
		if !ok {
			return Source{}, fmt.Errorf("probe %s: bad Content-Range %q: %w", RedactURL(rawURL), resp.Header.Get("Content-Range"), ErrSizeMismatch)
		}
		src.Size = total
	case http.StatusOK: // Range ignored, or an empty object
		if resp.ContentLength < 0 {
			return Source{}, fmt.Errorf("probe %s: no size in answer: %w", RedactURL(rawURL), ErrSizeMismatch)
		}
		src.Size = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable: // empty object: "bytes */0"
		total, ok := contentRangeTotal(resp.Header.Get("Content-Range"))
		if !ok || total != 0 {
			return Source{}, newHTTPError("probe", rawURL, resp)
		}
	default:
		return Source{}, newHTTPError("probe", rawURL, resp)
	}
	if s := resp.Header.Get("X-Goog-Stored-Content-Length"); s != "" && resp.StatusCode != http.StatusOK {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n != src.Size {
			return Source{}, fmt.Errorf("probe %s: Content-Range says %d bytes, x-goog-stored-content-length %d: %w", RedactURL(rawURL), src.Size, n, ErrSizeMismatch)
		}
	}
	src.CRC32C, src.HasCRC32C, src.MD5 = parseGoogHash(resp.Header.Values("X-Goog-Hash"))
	if src.Size == 0 && !src.HasCRC32C {
		src.CRC32C, src.HasCRC32C = 0, true // CRC32C of nothing
	}
	src.ContentType = resp.Header.Get("Content-Type")
	src.Name = sourceName(resp.Header.Get("Content-Disposition"), req.URL)
	return src, nil
}

// contentRangeTotal parses the total of "bytes 0-0/1234" or "bytes */0".
func contentRangeTotal(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	_, total, ok := strings.Cut(rest, "/")
	if !ok || total == "*" {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil && n >= 0
}

// contentRangeStart parses the first byte of "bytes 10-19/1234".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil && n >= 0
}

// parseGoogHash reads "crc32c=<b64>,md5=<b64>" (one or several headers).
func parseGoogHash(values []string) (crc uint32, hasCRC bool, md5 []byte) {
	for _, v := range values {
		for _, kv := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(val)
			if err != nil {
				continue
			}
			switch k {
			case "crc32c":
				if len(b) == 4 {
					crc, hasCRC = binary.BigEndian.Uint32(b), true
				}
			case "md5":
				if len(b) == 16 {
					md5 = b
				}
			}
		}
	}
	return crc, hasCRC, md5
}

// sourceName picks the file name from Content-Disposition, else from the URL
// path.
func sourceName(disposition string, u *url.URL) string {
	if _, params, err := mime.ParseMediaType(disposition); err == nil {
		if fn := path.Base(strings.ReplaceAll(params["filename"], `\`, "/")); fn != "" && fn != "." && fn != "/" {
			return fn
		}
	}
	if u != nil {
		if fn := path.Base(u.Path); fn != "" && fn != "." && fn != "/" {
			return fn
		}
	}
	return ""
}
