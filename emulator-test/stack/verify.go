package stack

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/portability-pipeline/pipeline/shared/manifest"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Report is what a user's exports came to.
type Report struct {
	User     string
	Rounds   int
	Closed   bool
	Jobs     int
	Objects  int
	Bytes    int64
	Verified int
	// Manifests counts the manifest.json objects (one per exported job with archives).
	Manifests int
	// Problems lists every mismatch: missing, duplicated, altered or unexpected objects.
	Problems []string
	// Resources counts the first round's resources by final state.
	States map[string]int
}

// Store returns the pipeline's store on the emulator.
func (s *Stack) Store() *store.Store { return store.New(s.FirestoreClient) }

// Verify compares the bucket with the fake: every file of the job of every done resource of user (all
// rounds) must be stored exactly once with the fake's size and CRC32C (computed from the stored bytes,
// since the storage stand-in does not check multi-chunk uploads), and nothing else may be stored.
// account is the Google account the user consented with (the fake knows users by account).
func (s *Stack) Verify(ctx context.Context, user, account string) (Report, error) {
	rep := Report{User: user, States: map[string]int{}}
	st := s.Store()
	u, err := st.GetUser(ctx, user)
	if err != nil {
		return rep, err
	}
	rep.Rounds, rep.Closed = u.Rounds, u.State == "closed"
	jobs := map[string]bool{}
	for n := 1; n <= u.Rounds; n++ {
		list, err := st.ListResources(ctx, store.RoundID(user, n))
		if err != nil {
			return rep, err
		}
		for _, r := range list {
			rep.States[r.State]++
			if r.State == store.ResDone {
				jobs[r.Job] = true
			}
		}
	}
	rep.Jobs = len(jobs)

	stored := map[string]storedObject{}
	b := s.StorageClient.Bucket(s.Bucket)
	it := b.Objects(ctx, &storage.Query{Prefix: "exports/" + user + "/"})
	for {
		a, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return rep, err
		}
		if strings.HasSuffix(a.Name, "/"+manifest.FileName) {
			rep.Manifests++
			continue
		}
		// By the file's name, not its index: the API does not promise the order of its URLs, so the
		// pipeline's file index need not be the fake's.
		key := a.Metadata["job"] + "/" + a.Metadata["source-name"]
		if _, dup := stored[key]; dup {
			rep.Problems = append(rep.Problems, "stored twice: "+key)
		}
		size, crc, err := checksum(ctx, b.Object(a.Name))
		if err != nil {
			return rep, err
		}
		stored[key] = storedObject{name: a.Name, size: size, crc: crc}
		rep.Objects++
		rep.Bytes += size
	}
	expected := 0
	for _, j := range s.Fake.Jobs(account) {
		if !jobs[j.ID] {
			continue
		}
		for _, f := range j.Files {
			expected++
			key := j.ID + "/" + f.Name
			o, ok := stored[key]
			switch {
			case !ok:
				rep.Problems = append(rep.Problems, "missing: "+key+" ("+f.Name+")")
			case o.size != f.Size || o.crc != fileCRC(f.CRC32C):
				rep.Problems = append(rep.Problems, fmt.Sprintf("altered: %s stored %d bytes crc %08x, source %d bytes crc %08x", o.name, o.size, o.crc, f.Size, fileCRC(f.CRC32C)))
			default:
				rep.Verified++
			}
		}
	}
	if rep.Objects != expected {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d objects stored, %d expected", rep.Objects, expected))
	}
	return rep, nil
}

type storedObject struct {
	name string
	size int64
	crc  uint32
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

func fileCRC(b64 string) uint32 {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// WaitClosed waits until every user's grant is closed (one-time: after the reset; time-based: after the
// last round), calling progress every tick. When only future tasks are pending (a time-based grant
// waiting a day), it advances the fake's clock to the next one.
func (s *Stack) WaitClosed(ctx context.Context, users []string, progress func()) error {
	st := s.Store()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	idle := 0
	for {
		open := 0
		for _, u := range users {
			usr, err := st.GetUser(ctx, u)
			if err != nil || usr.State != "closed" {
				open++
			}
		}
		if progress != nil {
			progress()
		}
		if open == 0 {
			return nil
		}
		if s.quiet() {
			idle++
		} else {
			idle = 0
		}
		// Nothing moves for a while: jump the virtual clock to the next scheduled task.
		if idle >= 4 {
			if d, ok := s.Tasks.NextDue(); ok {
				if wait := d.Sub(s.Fake.Clock().Now()); wait > 0 {
					s.Fake.Clock().Advance(wait + time.Second)
				}
			}
			idle = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d users still open: %w", open, len(users), ctx.Err())
		case <-tick.C:
		}
	}
}

// quiet reports that no task is running or due: what remains waits for the clock.
func (s *Stack) quiet() bool { return !s.Tasks.Busy() }

// ClearData clears what a test left: Firestore documents, the fake's users, jobs, faults and clock, waiting
// tasks and every object in the bucket. Call it between tests, once the previous one has settled.
func (s *Stack) ClearData(ctx context.Context) error {
	s.DeliverTwice(false)
	s.losses.mu.Lock()
	s.losses.armed = nil
	s.losses.mu.Unlock()
	if err := s.Tasks.Purge(); err != nil {
		return err
	}
	if err := s.Firestore.Clear(ctx, s.Project); err != nil {
		return err
	}
	s.Fake.ClearData()
	s.clearGCSFaults()
	if err := s.clearEvents(ctx); err != nil {
		return err
	}
	b := s.StorageClient.Bucket(s.Bucket)
	it := b.Objects(ctx, nil)
	for {
		a, err := it.Next()
		if err == iterator.Done {
			return nil
		}
		if err != nil {
			return err
		}
		if err := b.Object(a.Name).Delete(ctx); err != nil {
			return err
		}
	}
}
