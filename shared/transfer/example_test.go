package transfer_test

import (
	"context"
	"fmt"

	"github.com/portability-pipeline/pipeline/shared/transfer"
	"github.com/portability-pipeline/pipeline/shared/transfer/transfertest"
)

// The transfer function's flow, with a fake source and an in-memory sink in
// place of the signed URL and the bucket.
func Example() {
	ctx := context.Background()
	archive := transfertest.NewSource(1<<20+5, transfertest.Faults{CutAfter: 1000, CutTimes: 1})
	defer archive.Close()
	sink := transfertest.NewMemSink() // production: transfer.NewGCSSink(storageClient, bucket)

	// poll: probe the URL and plan the parts (one message per part).
	url := archive.SignedURL()
	src, err := transfer.Probe(ctx, nil, url)
	if err != nil {
		fmt.Println(transfer.Classify(err), err)
		return
	}
	parts := transfer.Plan(src.Size, transfer.PlanOptions{PartSize: 256 << 10})

	// transfer, once per message: copy one part.
	refresh := func(ctx context.Context) (string, error) { return archive.SignedURL(), nil } // a state call
	tmp := transfer.TempPrefix("user-1", "user-1~1", "myactivity.search", "job-7", 0)
	var done []transfer.PartResult
	for _, p := range parts {
		rs := transfer.NewURLSource(nil, url, src.Size, refresh)
		res, err := transfer.CopyPart(ctx, rs, sink, p, transfer.CopyOptions{TempPrefix: tmp})
		if err != nil {
			fmt.Println(transfer.Classify(err), err)
			return
		}
		done = append(done, res) // persisted per part in Firestore
	}

	// transfer, after the last part: compose and verify.
	name := transfer.ObjectName("exports", "user-1", "user-1~1", "myactivity.search", "job-7", 0, src.Name)
	out, err := transfer.Compose(ctx, sink, name, done, transfer.ComposeOptions{
		SourceCRC32C: src.CRC32C,
		ContentType:  src.ContentType,
		Metadata:     map[string]string{"resource": "myactivity.search", "job": "job-7"},
	})
	if err != nil {
		fmt.Println(transfer.Classify(err), err)
		return
	}
	fmt.Println(len(parts), "parts ->", out.Name, out.Size, out.CRC32C == src.CRC32C)
	// Output: 5 parts -> exports/user-1/user-1~1/myactivity.search/job-7/0-archive-001.zip 1048581 true
}
