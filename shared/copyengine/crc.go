package copyengine

import "hash/crc32"

// castagnoli is the CRC32C table Cloud Storage uses for object checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcPoly is the reflected Castagnoli polynomial.
const crcPoly = 0x82f63b78

// x2nTable[k] holds x^(2^k) modulo the polynomial, in the reflected bit order
// of the CRC, for every k x2nModP needs (k = 3 + bit of an int64 length).
// zlib keeps 32 entries and wraps k with &31, which is exact only because
// x^(2^32) = x modulo its (irreducible) polynomial; the Castagnoli polynomial
// is not irreducible, so wrapping gave wrong CRCs for lengths of 2^29 bytes
// (512 MiB) and more.
var x2nTable = func() (t [67]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = multModP(p, p)
	}
	return t
}()

// multModP multiplies a and b modulo the CRC polynomial (reflected order:
// bit 31 is x^0).
func multModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// x2nModP returns x^(n * 2^k) modulo the CRC polynomial.
func x2nModP(n int64, k uint) uint32 {
	p := uint32(1) << 31 // x^0
	for ; n != 0; n >>= 1 {
		if n&1 != 0 {
			p = multModP(x2nTable[k], p)
		}
		k++
	}
	return p
}

// CombineCRC32C returns the CRC32C of the concatenation A||B given crcA =
// CRC32C(A), crcB = CRC32C(B) and lenB = len(B), as zlib's crc32_combine does,
// in O(log lenB) time and without the data.
func CombineCRC32C(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	return multModP(x2nModP(lenB, 3), crcA) ^ crcB
}

// CombineParts returns the CRC32C of the parts concatenated in order.
func CombineParts(parts []PartResult) uint32 {
	var c uint32
	for _, p := range parts {
		c = CombineCRC32C(c, p.CRC32C, p.Length)
	}
	return c
}
