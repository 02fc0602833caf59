package oauthcallback

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/startlink"
)

// Binding the flow to the browser (RFC 6749 §10.12, RFC 9700 §4.7): the start page sets a cookie with a
// random value, the browser ID. Only its SHA-256 is stored with the OAuth state, and the callback is
// accepted only with the cookie whose hash matches, so a consent URL forwarded to someone else, or a
// callback URL replayed elsewhere, lands in a browser that cannot complete it. The same cookie ties the
// CSRF tokens of the forms and the status session to the browser.
//
// Cookie attributes follow PUBLIC_URL's scheme: on https the names carry the __Host- prefix (the browser
// then insists on Secure, Path=/ and no Domain, so no other host can plant or read them); the local stack
// runs on plain http, where a browser refuses Secure cookies, so there the names are unprefixed and the
// cookies not Secure. HttpOnly and SameSite=Lax always: Lax still sends them on the top-level GET that
// Google's redirect to /callback is.

const (
	browserCookie = "pp-browser"
	sessionCookie = "pp-session"
	// browserCookieAge is how long the browser ID lives; every start page and status link renews it.
	browserCookieAge = 24 * time.Hour
	// fieldCSRF is the form field of the CSRF token.
	fieldCSRF = "csrf"
)

// cookies names and writes the function's cookies.
type cookies struct {
	secure bool
	prefix string
}

func newCookies(scheme string) (cookies, error) {
	switch scheme {
	case "https":
		return cookies{secure: true, prefix: "__Host-"}, nil
	case "http":
		return cookies{}, nil
	}
	return cookies{}, fmt.Errorf("PUBLIC_URL scheme %q: want https (or http for a local stack)", scheme)
}

func (c cookies) name(base string) string { return c.prefix + base }

func (c cookies) set(w http.ResponseWriter, base, value string, age time.Duration) {
	// Secure follows PUBLIC_URL: false only on the plain-http local stack, where a browser drops Secure cookies.
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: see above
		Name: c.name(base), Value: value, Path: "/", MaxAge: int(age / time.Second),
		Secure: c.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// get returns the value of a cookie, "" when absent; a cookie given twice (one planted beside ours) is
// treated as absent.
func (c cookies) get(r *http.Request, base string) string {
	var vals []string
	for _, ck := range r.Cookies() {
		if ck.Name == c.name(base) {
			vals = append(vals, ck.Value)
		}
	}
	if len(vals) != 1 {
		return ""
	}
	return vals[0]
}

// browserIDLen is the length of a browser ID: base64url of 32 random bytes.
const browserIDLen = 43

// browserID returns the request's browser ID, "" when it has none (or a malformed one).
func (h *Handler) browserID(r *http.Request) string {
	v := h.cookies.get(r, browserCookie)
	if len(v) != browserIDLen {
		return ""
	}
	if _, err := b64.DecodeString(v); err != nil {
		return ""
	}
	return v
}

// ensureBrowser returns the request's browser ID, or a new one, and (re)sets the cookie. An existing ID
// is kept so that two tabs of one browser do not undo each other's consent.
func (h *Handler) ensureBrowser(w http.ResponseWriter, r *http.Request) string {
	id := h.browserID(r)
	if id == "" {
		var b [32]byte
		rand.Read(b[:]) // never fails (Go 1.24+)
		id = b64.EncodeToString(b[:])
	}
	h.cookies.set(w, browserCookie, id, browserCookieAge)
	return id
}

// browserHash is what the state stores of a browser ID.
func browserHash(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

// sameBrowser compares a request's browser ID with a stored hash in constant time.
func sameBrowser(id string, stored []byte) bool {
	if id == "" || len(stored) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(browserHash(id), stored) == 1
}

// macKeys are HMAC keys derived from every key of the link keyset for one use: the current key's signs,
// all verify, so a rotation does not break a state, form or session in flight.
type macKeys [][]byte

// deriveKeys derives a 32-byte key per link key (HKDF-SHA256 with info), so the one secret the operator
// manages serves every purpose without any two MACs being interchangeable.
func deriveKeys(ks *startlink.Keyset, info string) (macKeys, error) {
	var out macKeys
	for _, k := range ks.Keys() {
		d, err := hkdf.Key(sha256.New, k.Secret, nil, info, 32)
		if err != nil {
			return nil, fmt.Errorf("derive %s key: %w", info, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// sum is the MAC of msg under the current key.
func (m macKeys) sum(msg string) []byte { return hmacSum(m[0], msg) }

// verify reports whether mac is msg's MAC under any key (constant time per key).
func (m macKeys) verify(msg string, mac []byte) bool {
	ok := false
	for _, k := range m {
		ok = hmac.Equal(mac, hmacSum(k, msg)) || ok
	}
	return ok
}

// csrfToken is the token of a form for an action in one browser: a MAC of the action and the browser
// ID. A page of another site cannot read it, and the token of one browser is worthless in another.
func (h *Handler) csrfToken(action, browser string) string {
	return b64.EncodeToString(h.csrfKeys.sum(action + "\n" + browser))
}

func (h *Handler) validCSRF(action, browser, token string) bool {
	mac, err := b64.DecodeString(token)
	return browser != "" && err == nil && h.csrfKeys.verify(action+"\n"+browser, mac)
}

// A status session is the cookie "USER.EXP.MAC" (USER base64url, EXP unix seconds, MAC base64url of
// HMAC(sessionKey, "session\nUSER\nEXP\nbase64url(SHA-256(browser ID))")): it shows one user's status
// until EXP, and only beside the browser cookie it was issued with. It is stateless: nothing to store,
// and a deleted user's session shows "no export".

func (h *Handler) sessionMsg(user string, exp int64, browser string) string {
	return "session\n" + user + "\n" + strconv.FormatInt(exp, 10) + "\n" + b64.EncodeToString(browserHash(browser))
}

// startSession gives the browser a status session for user.
func (h *Handler) startSession(w http.ResponseWriter, user, browser string) {
	exp := h.now().Add(h.cfg.OAuth.SessionTTL).Unix()
	v := b64.EncodeToString([]byte(user)) + "." + strconv.FormatInt(exp, 10) + "." + b64.EncodeToString(h.sessionKeys.sum(h.sessionMsg(user, exp, browser)))
	h.cookies.set(w, sessionCookie, v, h.cfg.OAuth.SessionTTL)
}

// session returns the user of the request's status session and its browser ID; ok is false without a
// valid, unexpired session issued to this browser.
func (h *Handler) session(r *http.Request) (user, browser string, ok bool) {
	browser = h.browserID(r)
	parts := strings.Split(h.cookies.get(r, sessionCookie), ".")
	if browser == "" || len(parts) != 3 {
		return "", "", false
	}
	u, err1 := b64.DecodeString(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	mac, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || !h.sessionKeys.verify(h.sessionMsg(string(u), exp, browser), mac) {
		return "", "", false
	}
	if !h.now().Before(time.Unix(exp, 0)) || startlink.ValidUser(string(u)) != nil {
		return "", "", false
	}
	return string(u), browser, true
}
