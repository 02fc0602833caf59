package crypto_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/crypto"
)

// What GenerateLocal's AEAD seals, an AEAD read from the keyset JSON it returns opens, for the same
// associated data only; a second keyset is a different key.
func TestGenerateLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	enc, ks, err := crypto.GenerateLocal()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := enc.Encrypt(ctx, []byte("secret"), []byte("token:u1"))
	if err != nil {
		t.Fatal(err)
	}
	same, err := crypto.NewLocalKeyset(ks)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := same.Decrypt(ctx, sealed, []byte("token:u1")); err != nil || !bytes.Equal(got, []byte("secret")) {
		t.Errorf("decrypt with the returned keyset: %q, %v", got, err)
	}
	if _, err := same.Decrypt(ctx, sealed, []byte("token:u2")); err == nil {
		t.Error("decrypted with other associated data")
	}
	other, _, err := crypto.GenerateLocal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Decrypt(ctx, sealed, []byte("token:u1")); err == nil {
		t.Error("a second generated keyset opened the first one's ciphertext")
	}
}
