package copyengine_test

import (
	"context"
	"fmt"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/copyengine/copyenginetest"
)

// The transfer function's flow, with a fake source and an in-memory sink in
// place of the signed URL and the bucket.
func Example() {
	ctx := context.Background()
	archive := copyenginetest.NewSource(1<<20+5, copyenginetest.Faults{CutAfter: 1000, CutTimes: 1})
	defer archive.Close()
	sink := copyenginetest.NewMemSink() // production: copyengine.NewGCSSink(storageClient, bucket)

	// poll: probe the URL and plan the parts (one message per part).
	url := archive.SignedURL()
	src, err := copyengine.Probe(ctx, nil, url)
	if err != nil {
		fmt.Println(copyengine.Classify(err), err)
		return
	}
	parts := copyengine.Plan(src.Size, copyengine.PlanOptions{PartSize: 256 << 10})

	// transfer, once per message: copy one part.
	refresh := func(ctx context.Context) (string, error) { return archive.SignedURL(), nil } // a state call
	tmp := copyengine.TempPrefix("user-1", "user-1~1", "myactivity.search", "job-7", 0)
	var done []copyengine.PartResult
	for _, p := range parts {
		rs := copyengine.NewURLSource(nil, url, src.Size, refresh)
		res, err := copyengine.CopyPart(ctx, rs, sink, p, copyengine.CopyOptions{TempPrefix: tmp})
		if err != nil {
			fmt.Println(copyengine.Classify(err), err)
			return
		}
		done = append(done, res) // persisted per part in Firestore
	}

	// transfer, after the last part: compose and verify.
	name := copyengine.ObjectName("exports", "user-1", "user-1~1", "myactivity.search", "job-7", 0, src.Name)
	out, err := copyengine.Compose(ctx, sink, name, done, copyengine.ComposeOptions{
		SourceCRC32C: src.CRC32C,
		ContentType:  src.ContentType,
		Metadata:     map[string]string{"resource": "myactivity.search", "job": "job-7"},
	})
	if err != nil {
		fmt.Println(copyengine.Classify(err), err)
		return
	}
	fmt.Println(len(parts), "parts ->", out.Name, out.Size, out.CRC32C == src.CRC32C)
	// Output: 5 parts -> exports/user-1/user-1~1/myactivity.search/job-7/0-archive-001.zip 1048581 true
}
