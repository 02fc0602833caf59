package oauthcallback

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
)

// The OAuth state sent to Google is "ID.MAC": ID is 32 random bytes (base64url, the Firestore document
// ID of oauthStates/{ID}) and MAC is HMAC-SHA256(stateKey, ID), base64url, with stateKey derived from the
// current link key (HKDF-SHA256, info "oauth-state"); a state MACed with the previous key still passes
// during a rotation. A state that does not carry a valid MAC is refused before any Firestore read, so
// forged states cost nothing. The state binds the user; the browser cookie (browser.go) binds the browser.

const stateIDLen = 43 // base64url of 32 bytes, unpadded

var b64 = base64.RawURLEncoding

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
	return id, id + "." + b64.EncodeToString(h.stateKeys.sum(id))
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
	return id, h.stateKeys.verify(id, got)
}
