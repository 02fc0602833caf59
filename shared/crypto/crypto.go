// Package crypto provides the envelope AEAD that protects stored secrets (OAuth tokens, PKCE verifiers,
// signed URLs): Tink's KMS envelope AEAD in production, a local Tink keyset in the emulator stack.
package crypto

import (
	"context"
	"fmt"
	"strings"

	"github.com/tink-crypto/tink-go-gcpkms/v2/integration/gcpkms"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Encrypter seals and opens small secrets bound to associated data (for example "token:"+userID), so a
// ciphertext copied to another record does not decrypt.
type Encrypter interface {
	Encrypt(ctx context.Context, plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext, associatedData []byte) ([]byte, error)
}

type tinkAEAD struct{ a tink.AEAD }

func (t tinkAEAD) Encrypt(_ context.Context, p, ad []byte) ([]byte, error) {
	return t.a.Encrypt(p, ad)
}

func (t tinkAEAD) Decrypt(_ context.Context, c, ad []byte) ([]byte, error) {
	return t.a.Decrypt(c, ad)
}

// NewKMSEnvelope returns an envelope AEAD: each secret gets a fresh AES-256-GCM data key, wrapped by the
// Cloud KMS key at keyURI (gcp-kms://...). Only the wrapped key and the ciphertext are stored.
func NewKMSEnvelope(ctx context.Context, keyURI string) (Encrypter, error) {
	if !strings.HasPrefix(keyURI, "gcp-kms://") {
		return nil, fmt.Errorf("TOKEN_KEY_URI must start with gcp-kms://")
	}
	kms, err := gcpkms.NewClient(ctx, keyURI, gcpkms.WithTransport(gcpkms.TransportREST))
	if err != nil {
		return nil, fmt.Errorf("cloud KMS client: %w", err)
	}
	kek, err := kms.GetAEAD(keyURI)
	if err != nil {
		return nil, fmt.Errorf("cloud KMS key: %w", err)
	}
	return tinkAEAD{aead.NewKMSEnvelopeAEAD2(aead.AES256GCMKeyTemplate(), kek)}, nil
}

// NewLocalKeyset returns an AEAD from a cleartext JSON keyset. Local stacks and tests only.
func NewLocalKeyset(keysetJSON string) (Encrypter, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(strings.NewReader(keysetJSON)))
	if err != nil {
		return nil, fmt.Errorf("read TOKEN_KEYSET: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("TOKEN_KEYSET is not an AEAD keyset: %w", err)
	}
	return tinkAEAD{a}, nil
}

// GenerateLocalKeyset returns a new cleartext AES-256-GCM keyset in JSON, for local stacks and tests.
func GenerateLocalKeyset() (string, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&b)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// GenerateLocal returns an AEAD over a new local keyset (GenerateLocalKeyset) and the keyset's JSON, for
// another process that must open what it seals. Local stacks and tests only.
func GenerateLocal() (Encrypter, string, error) {
	ks, err := GenerateLocalKeyset()
	if err != nil {
		return nil, "", err
	}
	enc, err := NewLocalKeyset(ks)
	return enc, ks, err
}
