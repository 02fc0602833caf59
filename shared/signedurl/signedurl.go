// Package signedurl seals the signed archive URLs the API returns (bearer credentials, valid 6 h) before
// they are stored, bound to their job and file index, and fetches fresh ones when they expire, matched to
// the planned files by the object path they name.
package signedurl

import (
	"context"
	"errors"
	"fmt"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/crypto"
	"github.com/portability-pipeline/pipeline/shared/portability"
)

// ErrMismatch: a fresh state call lists other files than were planned (another count, or a path that no
// planned file has). Permanent: the caller fails the files with the error's text as the reason.
var ErrMismatch = errors.New("fresh signed URLs do not match the planned files")

// ErrNotComplete: the job is no longer COMPLETE at Google, so it gives no URLs. Permanent.
var ErrNotComplete = errors.New("job is not COMPLETE")

func associatedData(job string, index int) []byte { return fmt.Appendf(nil, "url:%s:%d", job, index) }

// Seal encrypts the URL of file index of job.
func Seal(ctx context.Context, enc crypto.Encrypter, job string, index int, url string) ([]byte, error) {
	return enc.Encrypt(ctx, []byte(url), associatedData(job, index))
}

// Open decrypts a sealed URL.
func Open(ctx context.Context, enc crypto.Encrypter, job string, index int, sealed []byte) (string, error) {
	b, err := enc.Decrypt(ctx, sealed, associatedData(job, index))
	if err != nil {
		return "", fmt.Errorf("open URL %d of job %s: %w", index, job, err)
	}
	return string(b), nil
}

// Fresh asks the API for newly signed URLs of a complete job and matches them to the planned files:
// paths[i] is the object path (copyengine.ObjectPath) recorded for file i at planning; "" (a file planned
// before paths were recorded) takes the URL at position i. Each URL must pass policy. It returns the
// sealed URLs and the URLs, both by file index. Nothing documents that the API keeps the order of its
// URLs between state calls, so position is never trusted when a path is known.
func Fresh(ctx context.Context, enc crypto.Encrypter, api portability.API, policy *copyengine.URLPolicy, job string, paths []string) (map[int][]byte, []string, error) {
	st, err := api.State(ctx, job)
	if err != nil {
		return nil, nil, err
	}
	if st.State != portability.StateComplete {
		return nil, nil, fmt.Errorf("job %s is %s: %w", job, st.State, ErrNotComplete)
	}
	urls, err := Match(st.URLs, paths, policy)
	if err != nil {
		return nil, nil, fmt.Errorf("job %s: %w", job, err)
	}
	sealed := make(map[int][]byte, len(urls))
	for i, u := range urls {
		if sealed[i], err = Seal(ctx, enc, job, i, u); err != nil {
			return nil, nil, err
		}
	}
	return sealed, urls, nil
}

// Match orders fresh by the planned paths (see Fresh). Errors never quote a URL's query.
func Match(fresh, paths []string, policy *copyengine.URLPolicy) ([]string, error) {
	if len(fresh) != len(paths) {
		return nil, fmt.Errorf("the job now lists %d files at Google, %d were planned: %w", len(fresh), len(paths), ErrMismatch)
	}
	byPath := make(map[string]string, len(fresh))
	for _, u := range fresh {
		if err := policy.Check(u); err != nil {
			return nil, err
		}
		p, err := copyengine.ObjectPath(u)
		if err != nil {
			return nil, err
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("the job lists the file %s twice: %w", p, ErrMismatch)
		}
		byPath[p] = u
	}
	out := make([]string, len(paths))
	for i, p := range paths {
		if p == "" {
			out[i] = fresh[i]
			continue
		}
		u, ok := byPath[p]
		if !ok {
			return nil, fmt.Errorf("the job no longer lists the planned file %s: %w", p, ErrMismatch)
		}
		out[i] = u
	}
	return out, nil
}
