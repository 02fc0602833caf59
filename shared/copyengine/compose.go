package copyengine

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"time"
)

// ComposeOptions describe the final object.
type ComposeOptions struct {
	// SourceCRC32C is the source's whole-object CRC32C (Source.CRC32C): the
	// parts' combined CRC32C and the stored object's must equal it.
	SourceCRC32C uint32
	// NoSourceCRC32C skips the comparison with SourceCRC32C (a host that sent
	// no x-goog-hash); the stored CRC32C is still checked against the parts'.
	NoSourceCRC32C bool
	ContentType    string
	// Metadata is set on the final object (resource, job, export time, source
	// CRC32C...).
	Metadata map[string]string
	// TempPrefix is where intermediate objects of a compose tree go; the
	// folder of the first part's object when empty.
	TempPrefix string
}

// ObjectResult is the verified final object.
type ObjectResult struct {
	Name   string
	Size   int64
	CRC32C uint32
	// AlreadyDone: the final object existed with the right CRC32C (a
	// redelivered Compose); nothing was composed.
	AlreadyDone bool
	// CleanupErr is the first failure deleting temporaries (best effort: a
	// bucket lifecycle rule on TempRoot removes leftovers). Log it; it does
	// not make the result wrong.
	CleanupErr error
}

// Compose concatenates the parts (in order, contiguous from offset 0) into
// finalName, through intermediate objects when there are more than
// MaxComposeSources, sets opts' content type and metadata, deletes the
// temporaries and verifies: the CRC32C combined from the parts' CRC32Cs must
// equal the source's, and so must the CRC32C storage reports for the final
// object. Otherwise it deletes the final object (a bad archive is never left
// as good) and returns an error wrapping ErrChecksumMismatch.
//
// Compose is idempotent: when finalName already exists with the expected
// CRC32C and size, it only deletes leftover temporaries and returns
// AlreadyDone. When neither the final object nor all parts exist, the error
// wraps ErrPartsMissing: copy the parts again.
func Compose(ctx context.Context, dst Sink, finalName string, parts []PartResult, opts ComposeOptions) (ObjectResult, error) {
	if len(parts) == 0 {
		return ObjectResult{}, fmt.Errorf("compose %s: no parts", finalName)
	}
	var size int64
	for i, p := range parts {
		if p.Offset != size || p.Name == "" || p.Length < 0 || (i > 0 && p.Index <= parts[i-1].Index) {
			return ObjectResult{}, fmt.Errorf("compose %s: part %d (index %d, offset %d) out of order or not contiguous: %w", finalName, i, p.Index, p.Offset, ErrSizeMismatch)
		}
		size += p.Length
	}
	combined := CombineParts(parts)
	want := combined
	if !opts.NoSourceCRC32C {
		want = opts.SourceCRC32C
	}
	tempPrefix := opts.TempPrefix
	if tempPrefix == "" {
		tempPrefix = path.Dir(parts[0].Name) + "/"
	}
	res := ObjectResult{Name: finalName, Size: size, CRC32C: want}
	var temps []string
	for _, p := range parts {
		temps = append(temps, p.Name)
	}

	// A redelivery: the final object is there and good.
	if info, err := dst.Attrs(ctx, finalName); err == nil {
		if info.CRC32C == want && info.Size == size {
			res.AlreadyDone = true
			res.CleanupErr = deleteAll(ctx, dst, append(temps, treeNames(tempPrefix, len(parts))...))
			return res, nil
		}
		// Anything else under that name is stale or bad: it is replaced below,
		// or deleted if the parts are bad.
	} else if !errors.Is(err, ErrNotExist) {
		return ObjectResult{}, fmt.Errorf("compose %s: %w", finalName, err)
	}

	if combined != want {
		// Some part was corrupted in transit: storage holds what it was sent.
		// Every part must be copied again.
		derr := deleteAll(ctx, dst, append([]string{finalName}, temps...))
		return ObjectResult{CleanupErr: derr}, fmt.Errorf("compose %s: parts combine to CRC32C %08x, source has %08x: %w", finalName, combined, want, ErrChecksumMismatch)
	}

	// Build the tree level by level: groups of up to 32 sources.
	level := temps
	lengths := make([]int64, len(parts))
	crcs := make([]uint32, len(parts))
	for i, p := range parts {
		lengths[i], crcs[i] = p.Length, p.CRC32C
	}
	attrs := ObjectAttrs{ContentType: "application/octet-stream"}
	for depth := 1; len(level) > MaxComposeSources; depth++ {
		var next []string
		var nextLen []int64
		var nextCRC []uint32
		for g := 0; g*MaxComposeSources < len(level); g++ {
			lo, hi := g*MaxComposeSources, min((g+1)*MaxComposeSources, len(level))
			var gl int64
			var gc uint32
			for i := lo; i < hi; i++ {
				gc = CombineCRC32C(gc, crcs[i], lengths[i])
				gl += lengths[i]
			}
			name := composeName(tempPrefix, depth, g)
			info, err := composeChecked(ctx, dst, name, level[lo:hi], attrs)
			if err != nil {
				return ObjectResult{}, fmt.Errorf("compose %s: %w", finalName, err)
			}
			if info.CRC32C != gc || info.Size != gl {
				derr := deleteAll(ctx, dst, append([]string{name}, temps...))
				return ObjectResult{CleanupErr: derr}, fmt.Errorf("compose %s: intermediate %s has CRC32C %08x (%d bytes), want %08x (%d bytes): %w", finalName, name, info.CRC32C, info.Size, gc, gl, ErrChecksumMismatch)
			}
			temps = append(temps, name)
			next, nextLen, nextCRC = append(next, name), append(nextLen, gl), append(nextCRC, gc)
		}
		level, lengths, crcs = next, nextLen, nextCRC
	}

	ct := opts.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	info, err := composeChecked(ctx, dst, finalName, level, ObjectAttrs{ContentType: ct, Metadata: opts.Metadata})
	if errors.Is(err, ErrPartsMissing) {
		// A concurrent delivery may have composed and cleaned up meanwhile.
		if info, aerr := dst.Attrs(ctx, finalName); aerr == nil && info.CRC32C == want && info.Size == size {
			res.AlreadyDone = true
			res.CleanupErr = deleteAll(ctx, dst, temps)
			return res, nil
		}
	}
	if err != nil {
		return ObjectResult{}, fmt.Errorf("compose %s: %w", finalName, err)
	}
	if info.CRC32C != want || info.Size != size {
		derr := deleteAll(ctx, dst, append([]string{finalName}, temps...))
		return ObjectResult{CleanupErr: derr}, fmt.Errorf("compose %s: stored CRC32C %08x (%d bytes), source %08x (%d bytes): %w", finalName, info.CRC32C, info.Size, want, size, ErrChecksumMismatch)
	}
	res.CleanupErr = deleteAll(ctx, dst, temps)
	return res, nil
}

// composeChecked runs one compose; on failure it checks whether sources are
// missing (storage answers 404, some stand-ins 500) to return
// ErrPartsMissing.
func composeChecked(ctx context.Context, dst Sink, name string, srcs []string, attrs ObjectAttrs) (ObjectInfo, error) {
	info, err := dst.Compose(ctx, name, srcs, attrs)
	if err == nil {
		return info, nil
	}
	for _, s := range srcs {
		if _, aerr := dst.Attrs(ctx, s); errors.Is(aerr, ErrNotExist) {
			return ObjectInfo{}, fmt.Errorf("%s is missing: %w", s, ErrPartsMissing)
		}
	}
	return ObjectInfo{}, err
}

// treeNames lists the intermediate objects a tree over n parts may have had.
func treeNames(tempPrefix string, n int) []string {
	var names []string
	for depth := 1; n > MaxComposeSources; depth++ {
		n = (n + MaxComposeSources - 1) / MaxComposeSources
		for g := range n {
			names = append(names, composeName(tempPrefix, depth, g))
		}
	}
	return names
}

// deleteAll deletes names, 8 at a time, and returns the first error. It runs
// even if ctx is cancelled (cleanup after a failure).
func deleteAll(ctx context.Context, dst Sink, names []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, 8)
	for _, n := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := dst.Delete(ctx, n); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}
