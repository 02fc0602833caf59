package copyengine_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/copyengine/copyenginetest"
)

// heapPeak samples the Go heap every few milliseconds until stop is called,
// which returns the peak of HeapAlloc.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// TestMemoryBounded copies 512 MiB through a sink that keeps nothing: the
// heap peak must stay far below the object's size. Not parallel: the heap
// is process-wide.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("copies 512 MiB")
	}
	const size = 512 << 20
	src := copyenginetest.NewSource(size, copyenginetest.Faults{})
	defer src.Close()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	stop := heapPeak()
	rs := copyengine.NewURLSource(nil, src.SignedURL(), size, nil)
	parts := copyengine.Plan(size, copyengine.PlanOptions{PartSize: 64 << 20})
	sink := copyenginetest.NewDiscardSink()
	results, err := copyengine.CopyAll(context.Background(), rs, sink, parts, 4, copyengine.CopyOptions{TempPrefix: "tmp/m/"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := copyengine.Compose(context.Background(), sink, "final", results, copyengine.ComposeOptions{SourceCRC32C: src.CRC32C})
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != size {
		t.Fatalf("size %d", res.Size)
	}
	growth := int64(peak) - int64(base.HeapAlloc)
	t.Logf("heap: base %.1f MiB, peak %.1f MiB, growth %.1f MiB for a %d MiB object, 4 parts in flight", mib(base.HeapAlloc), mib(peak), float64(growth)/(1<<20), size>>20)
	// Budget: 4 x 256 KiB read buffers plus HTTP and runtime garbage; a
	// leak of the object would show hundreds of MiB.
	if limit := int64(16 << 20); growth > limit {
		t.Errorf("heap grew by %.1f MiB, limit %d MiB", float64(growth)/(1<<20), limit>>20)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// BenchmarkCopyAll measures the engine's throughput from a local HTTP source
// into a sink that discards (CRC32C on both sides, as with storage).
func BenchmarkCopyAll(b *testing.B) {
	const size = 256 << 20
	src := copyenginetest.NewSource(size, copyenginetest.Faults{})
	defer src.Close()
	parts := copyengine.Plan(size, copyengine.PlanOptions{PartSize: 32 << 20})
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
			b.SetBytes(size)
			runtime.GC()
			stop := heapPeak()
			for b.Loop() {
				rs := copyengine.NewURLSource(nil, src.SignedURL(), size, nil)
				if _, err := copyengine.CopyAll(context.Background(), rs, copyenginetest.NewDiscardSink(), parts, n, copyengine.CopyOptions{TempPrefix: "tmp/b/"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(mib(stop()), "peak-heap-MiB")
		})
	}
}
