package scenario

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strings"

	"cloud.google.com/go/storage"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/shared/manifest"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Object is an object found in the bucket.
type Object struct {
	Name     string
	Size     int64
	CRC32C   uint32 // computed from the stored bytes, not taken from the server
	Metadata map[string]string
}

// Objects lists the objects under prefix by name, reading each one to checksum it (the storage
// stand-ins do not check multi-chunk CRC32C themselves).
func Objects(ctx context.Context, b *storage.BucketHandle, prefix string) ([]Object, error) {
	var out []Object
	err := EachObject(ctx, b, prefix, func(a *storage.ObjectAttrs) error {
		size, crc, err := checksum(ctx, b.Object(a.Name))
		if err != nil {
			return err
		}
		out = append(out, Object{Name: a.Name, Size: size, CRC32C: crc, Metadata: a.Metadata})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func checksum(ctx context.Context, o *storage.ObjectHandle) (int64, uint32, error) {
	r, err := o.NewReader(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.Copy(h, r)
	return n, h.Sum32(), err
}

// FileCRC decodes the fake's base64 big-endian CRC32C of a file.
func FileCRC(f fakeportability.FileInfo) uint32 {
	b, err := base64.StdEncoding.DecodeString(f.CRC32C)
	if err != nil || len(b) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// Report is what a user's exports came to.
type Report struct {
	User   string
	Rounds int
	Closed bool
	// Jobs counts the jobs of done resources; Expected their files, Verified those stored intact.
	Jobs     int
	Expected int
	Verified int
	// Objects and Bytes count the archive objects stored under the user's prefix (manifests aside).
	Objects int
	Bytes   int64
	// Manifests counts the manifest.json objects (one per exported job with archives).
	Manifests int
	// Problems lists every file missing, stored twice or altered; Mismatches adds a count that is off.
	Problems []string
	// States counts the resources of every round by final state.
	States map[store.ResourceState]int
	// Stored names the archive objects found.
	Stored []string
}

// Mismatches is Problems plus, when more or fewer objects are stored than expected, a line saying so.
func (r Report) Mismatches() []string {
	out := append([]string(nil), r.Problems...)
	if r.Objects != r.Expected {
		out = append(out, fmt.Sprintf("%d objects stored, %d expected:\n%s", r.Objects, r.Expected, strings.Join(r.Stored, "\n")))
	}
	return out
}

// VerifyExports compares the bucket with the fake: every file of the job of every done resource of user
// (all rounds) must be stored exactly once with the fake's size and CRC32C (computed from the stored
// bytes), and nothing else may be stored under the user's prefix.
func VerifyExports(ctx context.Context, v View, user string) (Report, error) {
	rep := Report{User: user, States: map[store.ResourceState]int{}}
	u, rounds, err := Rounds(ctx, v.Store, user)
	if err != nil {
		return rep, err
	}
	rep.Rounds, rep.Closed = u.Rounds, u.State == "closed"
	jobs := map[string]bool{}
	for _, r := range rounds {
		for _, res := range r.Resources {
			rep.States[res.State]++
			if res.State == store.ResDone {
				jobs[res.Job] = true
			}
		}
	}
	rep.Jobs = len(jobs)

	objs, err := Objects(ctx, v.Bucket, v.ObjectPrefix+"/"+user+"/")
	if err != nil {
		return rep, err
	}
	stored := map[string]Object{}
	for _, o := range objs {
		if strings.HasSuffix(o.Name, "/"+manifest.FileName) {
			rep.Manifests++
			continue
		}
		// By the file's name, not its index: the API does not promise the order of its URLs, so the
		// pipeline's file index need not be the fake's.
		key := o.Metadata["job"] + "/" + o.Metadata["source-name"]
		if _, dup := stored[key]; dup {
			rep.Problems = append(rep.Problems, "stored twice: "+key)
		}
		stored[key] = o
		rep.Objects++
		rep.Bytes += o.Size
		rep.Stored = append(rep.Stored, o.Name)
	}
	for _, j := range v.Fake.Jobs(v.Account(user)) {
		if !jobs[j.ID] {
			continue
		}
		for _, f := range j.Files {
			rep.Expected++
			key := j.ID + "/" + f.Name
			o, ok := stored[key]
			switch {
			case !ok:
				rep.Problems = append(rep.Problems, fmt.Sprintf("missing: job %s file %d (%s)", j.ID, f.Index, f.Name))
			case o.Size != f.Size || o.CRC32C != FileCRC(f):
				rep.Problems = append(rep.Problems, fmt.Sprintf("altered: %s stored %d bytes crc %08x, source %d bytes crc %08x", o.Name, o.Size, o.CRC32C, f.Size, FileCRC(f)))
			default:
				rep.Verified++
			}
		}
	}
	return rep, nil
}
