package oauthcallback

import (
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/startlink"
)

// FuzzParseState feeds the callback's state parser arbitrary values (the state comes back from the
// browser): it must never panic, and it may accept a value only if its ID is a well-formed state ID whose
// MAC under the key is the one given. Without the key no value passes (the parser runs before any
// Firestore read, so this is the whole defence against forged states).
func FuzzParseState(f *testing.F) {
	ks, err := startlink.ParseKeyset("fz:fuzz-start-link-key-0123456789abcdef")
	if err != nil {
		f.Fatal(err)
	}
	keys, err := deriveKeys(ks, "oauth-state")
	if err != nil {
		f.Fatal(err)
	}
	h := &Handler{stateKeys: keys}
	id, good := h.newState()
	mac := good[strings.Index(good, ".")+1:]
	for _, s := range []string{good, id, id + ".", "." + mac, id + "." + mac + "=", id + ".." + mac, strings.ToUpper(good),
		strings.Repeat("A", 43) + "." + mac, "../../x." + mac, "", ".", "a.b.c", id + "." + mac[:42] + "B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		gotID, ok := h.parseState(value)
		if !ok {
			return
		}
		if len(gotID) != stateIDLen || !strings.HasPrefix(value, gotID+".") {
			t.Fatalf("accepted %q with ID %q", value, gotID)
		}
		if _, err := b64.DecodeString(gotID); err != nil {
			t.Fatalf("accepted %q whose ID is not base64url", value)
		}
		want := gotID + "." + b64.EncodeToString(h.stateKeys.sum(gotID))
		// base64 decoding ignores the unused low bits of the last character; anything else must match.
		if len(value) != len(want) || value[:len(want)-1] != want[:len(want)-1] {
			t.Fatalf("accepted %q, the state for ID %q is %q", value, gotID, want)
		}
	})
}

// FuzzOAuthErrorCode: the callback's error parameter reaches a log line only through oauthErrorCode,
// which must keep it short and in the OAuth error code alphabet.
func FuzzOAuthErrorCode(f *testing.F) {
	for _, s := range []string{"access_denied", "server_error", "", "ACCESS_DENIED", "a\nb", `"},"severity":"EMERGENCY`, strings.Repeat("a", 41)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := oauthErrorCode(s)
		if len(out) > 40 || strings.IndexFunc(out, func(r rune) bool { return !(r == '_' || r == '(' || r == ')' || r >= 'a' && r <= 'z') }) >= 0 {
			t.Fatalf("oauthErrorCode(%q) = %q", s, out)
		}
	})
}
