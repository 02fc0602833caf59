// Package signedurl seals the signed archive URLs the API returns (bearer credentials, valid 6 h) before
// they are stored, bound to their job and file index, and fetches fresh ones when they expire.
package signedurl

import (
	"context"
	"fmt"

	"github.com/portability-pipeline/pipeline/shared/crypto"
	"github.com/portability-pipeline/pipeline/shared/portability"
)

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

// Fresh asks the API for newly signed URLs of a complete job and returns them sealed, by index.
func Fresh(ctx context.Context, enc crypto.Encrypter, api portability.API, job string) (map[int][]byte, []string, error) {
	st, err := api.State(ctx, job)
	if err != nil {
		return nil, nil, err
	}
	if st.State != portability.StateComplete {
		return nil, nil, fmt.Errorf("job %s is %s, not COMPLETE", job, st.State)
	}
	sealed := make(map[int][]byte, len(st.URLs))
	for i, u := range st.URLs {
		if sealed[i], err = Seal(ctx, enc, job, i, u); err != nil {
			return nil, nil, err
		}
	}
	return sealed, st.URLs, nil
}
