package copyengine

// DefaultPartSize is the part size when PlanOptions.PartSize is zero: a part
// of 256 MiB copies in seconds to tens of seconds, well inside a 540 s
// function.
const DefaultPartSize = 256 << 20

// MaxComposeSources is the most sources one Cloud Storage compose call takes.
const MaxComposeSources = 32

// PlanOptions tune Plan.
type PlanOptions struct {
	PartSize int64 // bytes per part; DefaultPartSize when <= 0
	// MaxParts, when > 0, caps the number of parts by growing the part size
	// (rounded up to a multiple of 1 MiB).
	MaxParts int
}

// Part is a byte range of the source, copied into one temporary object.
type Part struct {
	Index  int   `json:"index"`
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// Plan splits an object of size bytes into parts of opts.PartSize (the last
// one shorter). A zero-byte object is one empty part. More than
// MaxComposeSources parts are fine: Compose builds a tree.
func Plan(size int64, opts PlanOptions) []Part {
	ps := opts.PartSize
	if ps <= 0 {
		ps = DefaultPartSize
	}
	if size <= 0 {
		return []Part{{Index: 0, Offset: 0, Length: 0}}
	}
	if opts.MaxParts > 0 && (size+ps-1)/ps > int64(opts.MaxParts) {
		ps = (size + int64(opts.MaxParts) - 1) / int64(opts.MaxParts)
		const mib = 1 << 20
		ps = (ps + mib - 1) / mib * mib
	}
	n := (size + ps - 1) / ps
	parts := make([]Part, 0, n)
	for i := int64(0); i < n; i++ {
		off := i * ps
		parts = append(parts, Part{Index: int(i), Offset: off, Length: min(ps, size-off)})
	}
	return parts
}
