// Package copyengine copies an archive from a signed URL into Cloud Storage in
// byte-range parts, so that objects of tens of GB move in pieces that each
// fit in one 540 s function invocation, several instances share one archive,
// and nothing is held whole in memory or on disk.
//
// The flow of the transfer step:
//
//	src, err := copyengine.Probe(ctx, httpClient, url)          // size, CRC32C, name: no download
//	parts := copyengine.Plan(src.Size, copyengine.PlanOptions{})  // one Pub/Sub message per part
//	// per message:
//	rs := copyengine.NewURLSource(httpClient, url, src.Size, refresh) // refresh: a state call, urls[i]
//	res, err := copyengine.CopyPart(ctx, rs, copyengine.NewGCSSink(gcs, bucket), parts[p],
//		copyengine.CopyOptions{TempPrefix: copyengine.TempPrefix(user, round, resource, job, i)})
//	// persist res (Offset, Length, CRC32C, Name); when every part is done:
//	out, err := copyengine.Compose(ctx, sink, copyengine.ObjectName(prefix, user, round, resource, job, i, src.Name),
//		results, copyengine.ComposeOptions{SourceCRC32C: src.CRC32C, ContentType: src.ContentType, Metadata: md})
//
// Errors: Classify(err) says Retryable, URLExpired (refresh the URL), Gone
// (past retention) or Permanent; ErrChecksumMismatch and ErrPartsMissing mean
// "copy the parts again" (the caller bounds the attempts). No error holds a
// signed URL's query string: URLs appear only through RedactURL.
//
// Verification: CopyPart compares the CRC32C it computed on the wire with the
// one storage reports for the stored part, and the byte count with the plan.
// Compose combines the parts' CRC32Cs (CombineCRC32C, as zlib's
// crc32_combine) and requires both that value and storage's CRC32C of the
// composed object to equal the source's x-goog-hash; otherwise the final
// object is deleted. The engine does not rely on storage rejecting bad
// uploads (the local stand-in does not check multi-chunk CRC32C).
//
// Memory budget per part in flight: CopyOptions.BufferSize (256 KiB) for
// reading, plus the sink's upload buffer: GCSSink.ChunkSize (8 MiB, held by
// the storage library's writer), plus a few KiB of HTTP buffers: about
// 8.3 MiB with the defaults, independent of the part's and the object's
// size. CopyAll with N in flight uses N times that.
package copyengine
