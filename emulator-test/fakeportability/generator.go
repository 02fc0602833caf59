package fakeportability

import (
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
)

// The filler generator: archive content is a cheap deterministic function of (seed, offset), so any range
// of a file of any size can be produced without storing it. The stream is a fixed 64 KiB block of printable
// characters whose first 32 bytes are replaced by the seed and the block counter in hex, so every block of
// every stream differs while generation costs little more than a memory copy.

const (
	fillBlockSize = 64 << 10
	fillStampLen  = 32
)

const fillAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,.-_"

var fillBlock = func() []byte {
	b := make([]byte, fillBlockSize)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = fillAlphabet[x%uint64(len(fillAlphabet))]
	}
	return b
}()

// fill writes the bytes of filler stream seed at [off, off+len(dst)).
func fill(dst []byte, seed uint64, off int64) {
	var stamp [fillStampLen]byte
	for len(dst) > 0 {
		k := off / fillBlockSize
		in := int(off % fillBlockSize)
		var n int
		if in < fillStampLen {
			var raw [16]byte
			binary.BigEndian.PutUint64(raw[:8], seed)
			binary.BigEndian.PutUint64(raw[8:], uint64(k))
			hex.Encode(stamp[:], raw[:])
			n = copy(dst, stamp[in:])
		} else {
			n = copy(dst, fillBlock[in:])
		}
		dst = dst[n:]
		off += int64(n)
	}
}

// seedOf derives a filler seed from names.
func seedOf(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}
