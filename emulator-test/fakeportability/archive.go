package fakeportability

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"sort"
	"strings"
	"sync"
)

// Archives: zip files (STORE entries) and bare JSON files laid out as segments (literal bytes or filler), so
// tens of GB can be served from any offset without holding them. Objects are cached by content key (not by
// job), and their checksums computed once in a streaming pass.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment is a run of an object's bytes: literal, or filler stream seed from fillOff.
type segment struct {
	off     int64
	n       int64
	lit     []byte
	seed    uint64
	fillOff int64
}

// zipEntry is one file inside a zip.
type zipEntry struct {
	path    string
	size    int64
	content []segment // offsets relative to the entry's data
	crc     uint32
	offset  int64 // of the local header
}

// object is one downloadable file.
type object struct {
	key     string
	kind    string // "zip" or "json"
	size    int64
	entries []*zipEntry // zip only
	segs    []segment   // complete after prepare for zips; set at creation for JSON

	once   sync.Once
	crc32c uint32
	md5    []byte // nil when skipped (MD5MaxSize)
	md5Max int64
}

const (
	jsonPrefix = `{"data":"`
	jsonSuffix = "\"}\n"
)

// jsonContent is a JSON document of exactly n bytes (at least the wrapper's length) over filler seed.
func jsonContent(seed uint64, n int64) []segment {
	w := int64(len(jsonPrefix) + len(jsonSuffix))
	if n < w {
		return []segment{{n: n, seed: seed}}
	}
	return []segment{
		{off: 0, n: int64(len(jsonPrefix)), lit: []byte(jsonPrefix)},
		{off: int64(len(jsonPrefix)), n: n - w, seed: seed},
		{off: n - int64(len(jsonSuffix)), n: int64(len(jsonSuffix)), lit: []byte(jsonSuffix)},
	}
}

func litContent(b []byte) []segment { return []segment{{n: int64(len(b)), lit: b}} }

func contentSize(c []segment) int64 {
	var n int64
	for _, s := range c {
		n += s.n
	}
	return n
}

// readSegs copies bytes of segs at off into p (segs must cover off..off+len(p)).
func readSegs(segs []segment, p []byte, off int64) {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].off+segs[i].n > off })
	for len(p) > 0 && i < len(segs) {
		s := segs[i]
		in := off - s.off
		n := min(int64(len(p)), s.n-in)
		if s.lit != nil {
			copy(p[:n], s.lit[in:in+n])
		} else {
			fill(p[:n], s.seed, s.fillOff+in)
		}
		p = p[n:]
		off += n
		i++
	}
}

// ReadAt reads the object's bytes (after prepare).
func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, fmt.Errorf("offset %d beyond size %d", off, o.size)
	}
	n := min(int64(len(p)), o.size-off)
	readSegs(o.segs, p[:n], off)
	return int(n), nil
}

// Service folder names of the resource groups' prefixes, as Takeout names them.
var serviceNames = map[string]string{
	"alerts": "Alerts", "businessmessaging": "Business Messaging", "chrome": "Chrome", "discover": "Discover",
	"maps": "Maps", "myactivity": "My Activity", "mymaps": "My Maps", "nest": "Nest",
	"order_reserve": "Order and Reserve", "pixel": "Pixel", "play": "Google Play Store", "saved": "Saved",
	"search_ugc": "Search Contributions", "searchnotifications": "Search Notifications", "shopping": "Shopping",
	"streetview": "Street View", "youtube": "YouTube and YouTube Music",
}

// serviceFolder splits a group into Takeout-style service and folder names.
func serviceFolder(group string) (service, folder string) {
	prefix, rest, _ := strings.Cut(group, ".")
	service = serviceNames[prefix]
	if service == "" {
		service = strings.ToUpper(prefix[:1]) + prefix[1:]
	}
	rest = strings.ReplaceAll(rest, "_", " ")
	if rest != "" {
		folder = strings.ToUpper(rest[:1]) + rest[1:]
	}
	return service, folder
}

// archiveBrowser is Portability/archive_browser.json for a job's groups.
func archiveBrowser(groups []string) []byte {
	type folder struct {
		Name         string `json:"name"`
		Resource     string `json:"resource"`
		IsIncomplete bool   `json:"is_incomplete"`
	}
	type service struct {
		Name         string   `json:"name"`
		Folders      []folder `json:"folders"`
		IsIncomplete bool     `json:"is_incomplete"`
	}
	var services []*service
	byName := map[string]*service{}
	for _, g := range groups {
		sn, fn := serviceFolder(g)
		sv := byName[sn]
		if sv == nil {
			sv = &service{Name: sn}
			byName[sn] = sv
			services = append(services, sv)
		}
		sv.Folders = append(sv.Folders, folder{Name: fn, Resource: g})
	}
	b, _ := json.MarshalIndent(map[string]any{"services": services}, "", "  ")
	return append(b, '\n')
}

// objectCache shares objects between jobs: content depends on (groups, file, size), never on the job.
type objectCache struct {
	mu     sync.Mutex
	m      map[string]*object
	sem    chan struct{} // bounds background hashing
	md5Max int64
}

func newObjectCache(md5Max int64) *objectCache {
	return &objectCache{m: map[string]*object{}, sem: make(chan struct{}, 1), md5Max: md5Max}
}

func (c *objectCache) get(key string, build func() *object) *object {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.m[key]; o != nil {
		return o
	}
	o := build()
	o.key, o.md5Max = key, c.md5Max
	c.m[key] = o
	return o
}

// prepareAsync hashes o in the background (one object at a time); a reader needing it first does it itself.
func (c *objectCache) prepareAsync(o *object) {
	go func() {
		c.sem <- struct{}{}
		defer func() { <-c.sem }()
		o.prepare()
	}()
}

func (c *objectCache) bareJSON(group string, index int, size int64) *object {
	key := fmt.Sprintf("json|%s|%d|%d", group, index, size)
	return c.get(key, func() *object {
		n := max(size, int64(len(jsonPrefix)+len(jsonSuffix)))
		return &object{kind: "json", size: n, segs: jsonContent(seedOf(group, fmt.Sprint(index)), n)}
	})
}

func (c *objectCache) browserZip(groups []string) *object {
	key := "browser|" + strings.Join(groups, ",")
	return c.get(key, func() *object {
		o := &object{kind: "zip", entries: []*zipEntry{{path: "Portability/archive_browser.json", content: litContent(archiveBrowser(groups))}}}
		o.layout()
		return o
	})
}

// dataZip is data file index of groups, about size bytes (exactly size unless size is tiny): each group gets
// an equal share split in entries of at most entrySize under Portability/<Service>/<Folder>/.
func (c *objectCache) dataZip(groups []string, index int, size, entrySize int64, withBrowser bool) *object {
	key := fmt.Sprintf("zip|%s|%d|%d|%d|%t", strings.Join(groups, ","), index, size, entrySize, withBrowser)
	return c.get(key, func() *object {
		o := &object{kind: "zip"}
		build := func(data int64) {
			o.entries = nil
			share := max(data/int64(len(groups)), 0)
			for gi, g := range groups {
				sn, fn := serviceFolder(g)
				n := share
				if gi == len(groups)-1 {
					n = max(data-share*int64(len(groups)-1), 0)
				}
				count := max((n+entrySize-1)/entrySize, 1)
				for k := int64(0); k < count; k++ {
					es := min(entrySize, n-k*entrySize)
					path := fmt.Sprintf("Portability/%s/%s/%s-%03d-%05d.json", sn, fn, strings.ReplaceAll(fn, " ", "_"), index, k)
					o.entries = append(o.entries, &zipEntry{path: path, content: jsonContent(seedOf(g, path), max(es, 0))})
				}
			}
			if withBrowser {
				o.entries = append(o.entries, &zipEntry{path: "Portability/archive_browser.json", content: litContent(archiveBrowser(groups))})
			}
			o.layout()
		}
		// Lay out once to learn the overhead, then again with the data sized to hit size exactly.
		build(size)
		var data int64
		for _, e := range o.entries {
			data += e.size
		}
		for range 3 {
			if o.size == size {
				break
			}
			data -= o.size - size
			if data < 0 {
				break
			}
			build(data)
		}
		return o
	})
}

// ZIP record sizes.
const (
	zipLocalLen   = 30
	zipCentralLen = 46
	zipEndLen     = 22
	zip64EndLen   = 56
	zip64LocLen   = 20
	zipDOSDate    = (2024-1980)<<9 | 1<<5 | 1 // 2024-01-01
	zipUTF8Flag   = 0x800
	zipMax32      = 0xFFFFFFFF
)

// layout computes entry offsets and the object size (headers are built in prepare, when CRCs are known).
func (o *object) layout() {
	var off int64
	for _, e := range o.entries {
		e.size = contentSize(e.content)
		e.offset = off
		off += zipLocalLen + int64(len(e.path)) + e.size
	}
	cdOff := off
	for _, e := range o.entries {
		off += zipCentralLen + int64(len(e.path))
		if e.offset >= zipMax32 {
			off += 12
		}
	}
	if cdOff >= zipMax32 || len(o.entries) >= 0xFFFF || off-cdOff >= zipMax32 {
		off += zip64EndLen + zip64LocLen
	}
	o.size = off + zipEndLen
}

// prepare computes entry CRCs, builds the zip's segments and hashes the whole object (crc32c, md5).
func (o *object) prepare() {
	o.once.Do(func() {
		buf := make([]byte, 1<<20)
		if o.kind == "zip" {
			for _, e := range o.entries {
				h := crc32.NewIEEE()
				for off := int64(0); off < e.size; {
					n := min(int64(len(buf)), e.size-off)
					readSegs(e.content, buf[:n], off)
					h.Write(buf[:n])
					off += n
				}
				e.crc = h.Sum32()
			}
			o.segs = o.zipSegments()
		}
		c := crc32.New(castagnoli)
		var m = md5.New()
		doMD5 := o.md5Max <= 0 || o.size <= o.md5Max
		for off := int64(0); off < o.size; {
			n := min(int64(len(buf)), o.size-off)
			readSegs(o.segs, buf[:n], off)
			c.Write(buf[:n])
			if doMD5 {
				m.Write(buf[:n])
			}
			off += n
		}
		o.crc32c = c.Sum32()
		if doMD5 {
			o.md5 = m.Sum(nil)
		}
	})
}

// appendEntryFields appends the fields a zip's local header and its central-directory record both carry,
// in the same order (APPNOTE 4.3.7 and 4.3.12, "version needed to extract" to "extra field length"): a
// stored (uncompressed) entry of the fixed date, with UTF-8 names.
func appendEntryFields(b []byte, versionNeeded uint16, e *zipEntry, extraLen int) []byte {
	le16 := binary.LittleEndian.AppendUint16
	le32 := binary.LittleEndian.AppendUint32
	b = le16(b, versionNeeded)
	b = le16(b, zipUTF8Flag)
	b = le16(b, 0) // STORE
	b = le16(b, 0) // time
	b = le16(b, zipDOSDate)
	b = le32(b, e.crc)
	b = le32(b, uint32(e.size)) // compressed
	b = le32(b, uint32(e.size))
	b = le16(b, uint16(len(e.path)))
	return le16(b, uint16(extraLen))
}

func (o *object) zipSegments() []segment {
	var segs []segment
	var off int64
	add := func(s segment) {
		s.off = off
		segs = append(segs, s)
		off += s.n
	}
	le16 := binary.LittleEndian.AppendUint16
	le32 := binary.LittleEndian.AppendUint32
	le64 := binary.LittleEndian.AppendUint64
	for _, e := range o.entries {
		h := make([]byte, 0, zipLocalLen+len(e.path))
		h = le32(h, 0x04034b50)
		h = appendEntryFields(h, 20, e, 0)
		h = append(h, e.path...)
		add(segment{n: int64(len(h)), lit: h})
		for _, c := range e.content {
			c.off = 0
			add(c)
		}
	}
	cdOff := off
	var cd []byte
	for _, e := range o.entries {
		var extra []byte
		localOff := uint32(e.offset)
		version := uint16(20)
		if e.offset >= zipMax32 {
			extra = le16(extra, 0x0001)
			extra = le16(extra, 8)
			extra = le64(extra, uint64(e.offset))
			localOff, version = zipMax32, 45
		}
		cd = le32(cd, 0x02014b50)
		cd = le16(cd, 45) // made by
		cd = appendEntryFields(cd, version, e, len(extra))
		cd = le16(cd, 0) // comment
		cd = le16(cd, 0) // disk
		cd = le16(cd, 0) // internal attributes
		cd = le32(cd, 0) // external attributes
		cd = le32(cd, localOff)
		cd = append(cd, e.path...)
		cd = append(cd, extra...)
	}
	cdLen := int64(len(cd))
	count := len(o.entries)
	end := cd
	if cdOff >= zipMax32 || count >= 0xFFFF || cdLen >= zipMax32 {
		z64 := cdOff + cdLen
		end = le32(end, 0x06064b50)
		end = le64(end, zip64EndLen-12)
		end = le16(end, 45)
		end = le16(end, 45)
		end = le32(end, 0)
		end = le32(end, 0)
		end = le64(end, uint64(count))
		end = le64(end, uint64(count))
		end = le64(end, uint64(cdLen))
		end = le64(end, uint64(cdOff))
		end = le32(end, 0x07064b50)
		end = le32(end, 0)
		end = le64(end, uint64(z64))
		end = le32(end, 1)
		cdOff, count = zipMax32, 0xFFFF
	}
	end = le32(end, 0x06054b50)
	end = le16(end, 0)
	end = le16(end, 0)
	end = le16(end, uint16(min(count, 0xFFFF)))
	end = le16(end, uint16(min(count, 0xFFFF)))
	end = le32(end, uint32(min(cdLen, zipMax32)))
	end = le32(end, uint32(cdOff))
	end = le16(end, 0)
	add(segment{n: int64(len(end)), lit: end})
	if off != o.size {
		panic(fmt.Sprintf("zip layout: built %d bytes, planned %d", off, o.size))
	}
	return segs
}
