package copyengine_test

import (
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func TestCombineCRC32C(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 9))
	for iter := range 200 {
		n := r.IntN(1 << 16)
		if iter < 5 {
			n = iter // tiny inputs, including empty
		}
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		want := crc32.Checksum(data, castagnoli)
		// Split at random points into 1..8 pieces (pieces may be empty).
		cuts := []int{0}
		for range r.IntN(8) {
			cuts = append(cuts, r.IntN(n+1))
		}
		cuts = append(cuts, n)
		slices.Sort(cuts)
		var parts []copyengine.PartResult
		for i := 1; i < len(cuts); i++ {
			piece := data[cuts[i-1]:cuts[i]]
			parts = append(parts, copyengine.PartResult{Offset: int64(cuts[i-1]), Length: int64(len(piece)), CRC32C: crc32.Checksum(piece, castagnoli)})
		}
		if got := copyengine.CombineParts(parts); got != want {
			t.Fatalf("n=%d cuts=%v: combined %08x, want %08x", n, cuts, got, want)
		}
		if len(parts) >= 2 {
			a, b := parts[0], parts[1]
			ab := crc32.Checksum(data[:a.Length+b.Length], castagnoli)
			if got := copyengine.CombineCRC32C(a.CRC32C, b.CRC32C, b.Length); got != ab {
				t.Fatalf("pair: %08x, want %08x", got, ab)
			}
		}
	}
}

// TestCombineCRC32CLarge checks lengths beyond 2^32 against a slower but
// independent identity: combining with a run of zeros built by doubling.
func TestCombineCRC32CLarge(t *testing.T) {
	t.Parallel()
	zeros := make([]byte, 1<<20)
	z := crc32.Checksum(zeros, castagnoli) // CRC of 1 MiB of zeros
	zl := int64(len(zeros))
	for zl < 1<<34 { // 16 GiB of zeros, by doubling
		z = copyengine.CombineCRC32C(z, z, zl)
		zl *= 2
	}
	head := []byte("portability")
	h := crc32.Checksum(head, castagnoli)
	// head || 16 GiB zeros, two ways: at once, and as head||8GiB||8GiB.
	once := copyengine.CombineCRC32C(h, z, zl)
	half := crc32.Checksum(zeros, castagnoli) // rebuilt up to 8 GiB of zeros
	hl := int64(len(zeros))
	for hl < zl/2 {
		half = copyengine.CombineCRC32C(half, half, hl)
		hl *= 2
	}
	twice := copyengine.CombineCRC32C(copyengine.CombineCRC32C(h, half, hl), half, hl)
	if once != twice {
		t.Fatalf("16 GiB: %08x vs %08x", once, twice)
	}
}

// TestCombineCRC32CBeyond512MiB compares with the CRC computed over the
// bytes, for lengths around 2^29 (where a table of 32 powers wrapped) and
// beyond 2^32.
func TestCombineCRC32CBeyond512MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("checksums 11 GiB")
	}
	t.Parallel()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + i>>11)
	}
	// crcOf is the CRC32C of n bytes of chunk repeated, streamed.
	crcOf := func(n int64) uint32 {
		var c uint32
		for n > 0 {
			k := min(n, int64(len(chunk)))
			c = crc32.Update(c, castagnoli, chunk[:k])
			n -= k
		}
		return c
	}
	head := []byte("portability")
	h := crc32c(head)
	for _, n := range []int64{1<<29 - 1, 1 << 29, 1<<29 + 4097, 1<<30 + 1<<20, 5<<30 + 3} {
		want := crc32.Update(h, castagnoli, nil)
		for rest := n; rest > 0; {
			k := min(rest, int64(len(chunk)))
			want = crc32.Update(want, castagnoli, chunk[:k])
			rest -= k
		}
		if got := copyengine.CombineCRC32C(h, crcOf(n), n); got != want {
			t.Errorf("head + %d bytes: combined %08x, computed %08x", n, got, want)
		}
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
