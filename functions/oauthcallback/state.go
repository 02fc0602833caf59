package oauthcallback

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// The OAuth state sent to Google is "ID.MAC": ID is 32 random bytes (base64url, the Firestore document
// ID of oauthStates/{ID}) and MAC is HMAC-SHA256(stateKey, ID), base64url. A state that does not carry a
// valid MAC is refused before any Firestore read, so forged states cost nothing.

const stateIDLen = 43 // base64url of 32 bytes, unpadded

var b64 = base64.RawURLEncoding

// deriveStateKey derives the state MAC key from START_LINK_KEY (HKDF-SHA256, info "oauth-state"), so the
// one secret the operator manages serves both purposes without the two MACs being interchangeable.
func deriveStateKey(startLinkKey string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, []byte(startLinkKey), nil, "oauth-state", 32)
	if err != nil {
		return nil, fmt.Errorf("derive state key: %w", err)
	}
	return k, nil
}

func (h *Handler) stateMAC(id string) []byte {
	m := hmac.New(sha256.New, h.stateKey)
	m.Write([]byte(id))
	return m.Sum(nil)
}

// newState returns a fresh state ID and the value to send to Google.
func (h *Handler) newState() (id, value string) {
	for {
		var b [32]byte
		rand.Read(b[:]) // never fails (Go 1.24+)
		id = b64.EncodeToString(b[:])
		// Firestore reserves IDs matching __.*__; never produce one.
		if !strings.HasPrefix(id, "__") {
			break
		}
	}
	return id, id + "." + b64.EncodeToString(h.stateMAC(id))
}

// parseState checks a state value's form and MAC and returns its ID.
func (h *Handler) parseState(value string) (string, bool) {
	id, macText, ok := strings.Cut(value, ".")
	if !ok || len(id) != stateIDLen {
		return "", false
	}
	if _, err := b64.DecodeString(id); err != nil {
		return "", false
	}
	got, err := b64.DecodeString(macText)
	if err != nil {
		return "", false
	}
	return id, hmac.Equal(got, h.stateMAC(id))
}
