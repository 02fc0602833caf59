package pipelinetest

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sort"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/shared/manifest"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Object is an archive object found in the bucket.
type Object struct {
	Name     string
	Size     int64
	CRC32C   uint32 // computed from the stored bytes, not taken from the server
	Metadata map[string]string
}

// Objects lists the objects under prefix, reading each one to checksum it (the local storage stand-in
// does not check multi-chunk CRC32C itself).
func (h *Harness) Objects(prefix string) []Object {
	h.T.Helper()
	b := h.Env.Storage.Bucket(Bucket)
	it := b.Objects(h.Ctx, &storage.Query{Prefix: prefix})
	var out []Object
	for {
		a, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			h.T.Fatal(err)
		}
		r, err := b.Object(a.Name).NewReader(h.Ctx)
		if err != nil {
			h.T.Fatal(err)
		}
		c := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		n, err := io.Copy(c, r)
		r.Close()
		if err != nil {
			h.T.Fatal(err)
		}
		out = append(out, Object{Name: a.Name, Size: n, CRC32C: c.Sum32(), Metadata: a.Metadata})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FileCRC decodes the fake's base64 big-endian CRC32C of a file.
func FileCRC(f fakeportability.FileInfo) uint32 {
	b, err := base64.StdEncoding.DecodeString(f.CRC32C)
	if err != nil || len(b) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// VerifyExports checks that every file of the job of every done resource of user (all rounds) is in the
// bucket exactly once, byte-identical to the fake's file (size and CRC32C), and that nothing else is under
// the user's prefix. It returns the number of objects verified.
func (h *Harness) VerifyExports(user string) int {
	h.T.Helper()
	exported := map[string]bool{}
	u, err := h.Env.Store.GetUser(h.Ctx, user)
	if err != nil {
		h.T.Fatal(err)
	}
	for n := 1; n <= u.Rounds; n++ {
		list, err := h.Env.Store.ListResources(h.Ctx, store.RoundID(user, n))
		if err != nil {
			h.T.Fatal(err)
		}
		for _, r := range list {
			if r.State == store.ResDone {
				exported[r.Job] = true
			}
		}
	}
	var objs []Object
	for _, o := range h.Objects(h.Env.Config.ObjectPrefix + "/" + user + "/") {
		if !strings.HasSuffix(o.Name, "/"+manifest.FileName) { // manifests are checked by the events tests
			objs = append(objs, o)
		}
	}
	byJobFile := map[string]Object{}
	for _, o := range objs {
		// By the file's name, not its index: the API does not promise the order of its URLs, so the
		// pipeline's file index need not be the fake's.
		key := o.Metadata["job"] + "/" + o.Metadata["source-name"]
		if _, dup := byJobFile[key]; dup {
			h.T.Errorf("file %s stored twice", key)
		}
		byJobFile[key] = o
	}
	want := 0
	for _, j := range h.Fake.Jobs(user) {
		if !exported[j.ID] {
			continue
		}
		for _, f := range j.Files {
			want++
			o, ok := byJobFile[j.ID+"/"+f.Name]
			if !ok {
				h.T.Errorf("job %s file %d (%s) missing from the bucket", j.ID, f.Index, f.Name)
				continue
			}
			if o.Size != f.Size || o.CRC32C != FileCRC(f) {
				h.T.Errorf("job %s file %d: stored %d bytes crc %08x, source %d bytes crc %08x", j.ID, f.Index, o.Size, o.CRC32C, f.Size, FileCRC(f))
			}
		}
	}
	if len(objs) != want {
		names := make([]string, len(objs))
		for i, o := range objs {
			names[i] = o.Name
		}
		h.T.Errorf("%d objects under the user's prefix, want %d:\n%s", len(objs), want, strings.Join(names, "\n"))
	}
	return want
}

// UserCalls returns the fake's call counts of one user by method (initiate, getState, retry, ...).
func (h *Harness) UserCalls(user string) map[string]int {
	out := map[string]int{}
	users, _ := h.Fake.Calls()["users"].(map[string]any)
	u, _ := users[user].(map[string]any)
	for k, v := range u {
		if n, ok := v.(int); ok {
			out[k] = n
		}
	}
	return out
}

// InitiatesOf returns how many initiate calls named resource for user.
func (h *Harness) InitiatesOf(user, resource string) int {
	users, _ := h.Fake.Calls()["users"].(map[string]any)
	u, _ := users[user].(map[string]any)
	by, _ := u["initiateByResource"].(map[string]int)
	return by[resource]
}
