// Package startlink signs and verifies the links the operator's app gives a signed-in person: a start link
// (begin the consent for some resources) and a status link (see how the export goes).
//
// The app and the pipeline share a small keyset, START_LINK_KEY (see ParseKeyset): the first key signs,
// every key verifies, so the secret can rotate without breaking links in flight. A link carries the query
// parameters
//
//	kid=KEY_ID&user=ID&resources=g1,g2&exp=UNIX[&name=DISPLAY_NAME]&sig=HEX
//
// where sig is the lowercase hex HMAC-SHA256, keyed with the bytes of the secret of key KEY_ID, of the
// canonical message (fields joined by "\n", no trailing newline):
//
//	portability-pipeline/link/v2
//	<purpose: start or status>
//	<key ID>
//	<user ID>
//	<resource groups, comma-joined as in the URL; empty for a status link>
//	<exp, decimal unix seconds>
//	<display name; empty when the link has none>
//
// The purpose is not in the URL: the route decides it, so a status link cannot open a consent. Key IDs,
// user IDs and group names cannot contain "\n" or ",", and the display name (the last field) holds no
// control character, so the encoding is unambiguous once they are validated.
//
// A link is a bearer capability for its short life; the pipeline makes each one single-use (it records
// the signature's hash when the link is first used), so sign a fresh link for every visit.
//
// A start link may carry since=RFC3339 (optional): the export's first round then asks only for activity
// from that time on (groups with time filters). When present it is signed as one more line,
// "since=<the value exactly as in the URL>" after the display name line; a link without it has the
// message above. A since that is malformed or in the future is refused (ErrSince).
package startlink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/portability-pipeline/pipeline/shared/resources"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Purposes of a link.
const (
	PurposeStart  = "start"
	PurposeStatus = "status"
)

// Limits on how far ahead a link may expire (plus ClockSkew, for the app's clock). A status link's limit
// is the pipeline's STATUS_LINK_TTL (DefaultStatusTTL, at most MaxStatusTTL): it only opens a session in
// the browser that uses it first, so it needs to live no longer than the redirect from the app.
const (
	MaxStartTTL      = time.Hour
	DefaultStatusTTL = 10 * time.Minute
	MaxStatusTTL     = time.Hour
	ClockSkew        = time.Minute
)

// Version is the first line of the signed message.
const Version = "portability-pipeline/link/v2"

// Query parameter names.
const (
	ParamKeyID     = "kid"
	ParamUser      = "user"
	ParamResources = "resources"
	ParamExpires   = "exp"
	ParamName      = "name"
	ParamSig       = "sig"
	ParamSince     = "since"
)

// Params lists every parameter of a link, in the order Sign writes them.
var Params = []string{ParamKeyID, ParamUser, ParamResources, ParamExpires, ParamName, ParamSince, ParamSig}

// MaxNameLen is the longest display name, in characters.
const MaxNameLen = 100

// Errors of Verify; every error wraps one of the first four (ErrUserID comes with ErrInvalid).
var (
	ErrMissing   = errors.New("link incomplete")
	ErrSignature = errors.New("link signature does not match (forged, changed, or signed with a key not in the keyset)")
	ErrExpired   = errors.New("link expired")
	ErrInvalid   = errors.New("link invalid")
	// ErrSince: the link's since is not an RFC 3339 time, or is in the future.
	ErrSince = errors.New("link since invalid")
	// ErrUserID: the signed user ID cannot name a user (a Firestore document ID): the app's mistake.
	ErrUserID = errors.New("user ID not usable")
)

// Link is what a link grants.
type Link struct {
	User      string
	Resources []string // groups; Verify returns them trimmed and sorted
	Purpose   string
	Expires   time.Time
	// Since is the optional start of the activity to export (start links; zero when absent).
	Since time.Time
	// Name is the app's display name of the account that receives the data (start links, optional): the
	// start page shows it so a person sees whose account they fill before consenting.
	Name string
	// KeyID is the key that signed the link (set by Verify).
	KeyID string
}

// Message returns the canonical signed message of a link (resources as written in the URL).
func Message(purpose, keyID, user, resourceList string, exp int64, name string) string {
	return strings.Join([]string{Version, purpose, keyID, user, resourceList, strconv.FormatInt(exp, 10), name}, "\n")
}

// sinceLine is the extra signed line of a link with since (none without).
func sinceLine(msg, since string) string {
	if since == "" {
		return msg
	}
	return msg + "\nsince=" + since
}

func mac(secret []byte, msg string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Sign returns the query parameters of l signed with k (kid, user, resources, exp, name, sig), resources
// sorted. It does not check l: call Validate first when l comes from outside.
func Sign(k Key, l Link) url.Values {
	rs := slices.Sorted(slices.Values(l.Resources))
	list := strings.Join(rs, ",")
	exp := l.Expires.Unix()
	v := url.Values{}
	v.Set(ParamKeyID, k.ID)
	v.Set(ParamUser, l.User)
	if list != "" {
		v.Set(ParamResources, list)
	}
	v.Set(ParamExpires, strconv.FormatInt(exp, 10))
	if l.Name != "" {
		v.Set(ParamName, l.Name)
	}
	since := ""
	if !l.Since.IsZero() {
		since = l.Since.UTC().Format(time.RFC3339)
		v.Set(ParamSince, since)
	}
	v.Set(ParamSig, hex.EncodeToString(mac(k.Secret, sinceLine(Message(l.Purpose, k.ID, l.User, list, exp, l.Name), since))))
	return v
}

// ValidUser reports why id cannot be the user of a link (nil if it can): the store's user ID rules, and
// none of the IDs Firestore reserves ("." and "..", and __anything__), which it would refuse only when
// the first document is written, long after the consent.
func ValidUser(id string) error {
	if store.ReservedID(id) {
		return fmt.Errorf("%w: %w: %q is reserved by Firestore (., .. and __...__)", ErrInvalid, ErrUserID, id)
	}
	if !store.ValidUserID(id) {
		return fmt.Errorf("%w: %w: %q (letters, digits and ._@+=- only, at most 128, not starting with a dot)", ErrInvalid, ErrUserID, id)
	}
	return nil
}

// validName checks a display name: printable text, no control or format characters (which could hide or
// reorder what the page shows), no surrounding space, at most MaxNameLen characters.
func validName(name string) error {
	if name == "" {
		return nil
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen || strings.TrimSpace(name) != name {
		return fmt.Errorf("%w: display name must be valid text of at most %d characters without surrounding space", ErrInvalid, MaxNameLen)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return fmt.Errorf("%w: display name holds the control or format character %U", ErrInvalid, r)
		}
	}
	return nil
}

// Validate checks the content of a link at time now: purpose, user ID, resource groups, display name,
// and an expiry at most maxTTL (plus ClockSkew) ahead.
func (l Link) Validate(now time.Time, maxTTL time.Duration) error {
	switch l.Purpose {
	case PurposeStart:
		if len(l.Resources) == 0 {
			return fmt.Errorf("%w: a start link needs resources", ErrInvalid)
		}
	case PurposeStatus:
		if len(l.Resources) > 0 || l.Name != "" {
			return fmt.Errorf("%w: a status link has no resources and no display name", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: purpose %q (want %s or %s)", ErrInvalid, l.Purpose, PurposeStart, PurposeStatus)
	}
	if err := ValidUser(l.User); err != nil {
		return err
	}
	if len(l.Resources) > 0 {
		if _, err := resources.Validate(l.Resources); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if err := validName(l.Name); err != nil {
		return err
	}
	if l.Expires.IsZero() {
		return fmt.Errorf("%w: no expiry", ErrInvalid)
	}
	if !now.Before(l.Expires) {
		return fmt.Errorf("%w at %s", ErrExpired, l.Expires.UTC().Format(time.RFC3339))
	}
	if l.Expires.Sub(now) > maxTTL+ClockSkew {
		return fmt.Errorf("%w: a %s link may expire at most %s ahead", ErrInvalid, l.Purpose, maxTTL)
	}
	if !l.Since.IsZero() && l.Since.After(now.Add(ClockSkew)) {
		return fmt.Errorf("%w: since %s is in the future", ErrSince, l.Since.UTC().Format(time.RFC3339))
	}
	if !l.Since.IsZero() && l.Since.Before(time.Unix(0, 0)) {
		return fmt.Errorf("%w: since %s is before 1970", ErrSince, l.Since.UTC().Format(time.RFC3339))
	}
	return nil
}

// Verify checks the parameters of a link for purpose at time now: all present and given once, a key of
// ks, the signature (constant time), expiry at most maxTTL ahead, content. It returns the link with its
// resources trimmed and sorted (the form every later step uses).
func Verify(ks *Keyset, purpose string, v url.Values, now time.Time, maxTTL time.Duration) (Link, error) {
	var absent []string
	for _, p := range []string{ParamKeyID, ParamUser, ParamExpires, ParamSig} {
		if v.Get(p) == "" {
			absent = append(absent, p)
		}
	}
	if purpose == PurposeStart && v.Get(ParamResources) == "" {
		absent = append(absent, ParamResources)
	}
	if len(absent) > 0 {
		return Link{}, fmt.Errorf("%w: no %s", ErrMissing, strings.Join(absent, ", "))
	}
	for _, p := range Params {
		if len(v[p]) > 1 {
			return Link{}, fmt.Errorf("%w: %s given twice", ErrInvalid, p)
		}
	}
	kid, user, list, expStr, name := v.Get(ParamKeyID), v.Get(ParamUser), v.Get(ParamResources), v.Get(ParamExpires), v.Get(ParamName)
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != expStr {
		return Link{}, fmt.Errorf("%w: exp %q is not unix seconds", ErrInvalid, expStr)
	}
	got, err := hex.DecodeString(v.Get(ParamSig))
	if err != nil || len(got) != sha256.Size {
		return Link{}, fmt.Errorf("%w: sig is not a hex HMAC-SHA256", ErrSignature)
	}
	k, ok := ks.lookup(kid)
	if !ok {
		// The ID is not secret; it is shown only if it looks like one.
		shown := kid
		if !keyIDPattern.MatchString(kid) {
			shown = "(malformed)"
		}
		return Link{}, fmt.Errorf("%w: key ID %q is not in the keyset (rotated out, or the app's keyset differs)", ErrSignature, shown)
	}
	sinceText := v.Get(ParamSince)
	if _, present := v[ParamSince]; present && sinceText == "" {
		return Link{}, fmt.Errorf("%w: since is empty", ErrSince)
	}
	if !hmac.Equal(got, mac(k.Secret, sinceLine(Message(purpose, kid, user, list, exp, name), sinceText))) {
		return Link{}, ErrSignature
	}
	l := Link{User: user, Purpose: purpose, Expires: time.Unix(exp, 0), Name: name, KeyID: kid}
	if sinceText != "" {
		if purpose != PurposeStart {
			return Link{}, fmt.Errorf("%w: only a start link takes since", ErrSince)
		}
		if l.Since, err = time.Parse(time.RFC3339, sinceText); err != nil {
			return Link{}, fmt.Errorf("%w: %q is not an RFC 3339 time", ErrSince, sinceText)
		}
	}
	if list != "" {
		l.Resources = strings.Split(list, ",")
	}
	if err := l.Validate(now, maxTTL); err != nil {
		return Link{}, err
	}
	if len(l.Resources) > 0 {
		// Trimmed once, here: the signed spelling "a, b" and "a,b" give the same groups.
		l.Resources, _ = resources.Validate(l.Resources)
	}
	return l, nil
}

// ID returns the identifier under which a used link is recorded: SHA-256 of its purpose and signature
// (hex), so the record holds nothing that could be turned back into a working link.
func ID(purpose string, v url.Values) string {
	sum := sha256.Sum256([]byte(purpose + "\n" + strings.ToLower(v.Get(ParamSig))))
	return hex.EncodeToString(sum[:])
}

// --- keys ----------------------------------------------------------------------------------------

// Key is one secret of the keyset and its ID (the kid of the links it signs).
type Key struct {
	ID     string
	Secret []byte
}

// Keyset is the current key (it signs) and at most one previous key (it only verifies).
type Keyset struct {
	keys []Key
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// MinSecretLen is the shortest secret accepted, in bytes.
const MinSecretLen = 32

// NewKeyset returns the keyset of current and an optional previous key.
func NewKeyset(current Key, previous ...Key) (*Keyset, error) {
	if len(previous) > 1 {
		return nil, fmt.Errorf("a keyset holds the current key and at most one previous key, got %d keys", 1+len(previous))
	}
	ks := &Keyset{}
	for _, k := range append([]Key{current}, previous...) {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("key ID %q: use 1-32 letters, digits, _ or -", k.ID)
		}
		if len(k.Secret) < MinSecretLen {
			return nil, fmt.Errorf("key %s: the secret must be at least %d characters", k.ID, MinSecretLen)
		}
		if _, dup := ks.lookup(k.ID); dup {
			return nil, fmt.Errorf("key ID %s appears twice", k.ID)
		}
		ks.keys = append(ks.keys, Key{ID: k.ID, Secret: slices.Clone(k.Secret)})
	}
	return ks, nil
}

// ParseKeyset reads START_LINK_KEY: "ID:SECRET" (one key), or "ID:SECRET,ID:SECRET" (the current key
// first, then the previous one, during a rotation). IDs are 1-32 of [A-Za-z0-9_-]; a secret is at least
// 32 characters without commas or whitespace. Surrounding whitespace (a trailing newline in the secret)
// is ignored. A value without an ID, the single key of earlier versions, is refused with an error saying
// how to write it: the error never repeats the secret.
func ParseKeyset(s string) (*Keyset, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("START_LINK_KEY is empty")
	}
	var keys []Key
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		id, secret, ok := strings.Cut(entry, ":")
		if !ok {
			if i == 0 && !strings.Contains(s, ",") {
				return nil, errors.New("START_LINK_KEY is a single key without a key ID: links now carry a key ID, so write it as ID:SECRET " +
					"(for example k1:<the same secret>) and have the app sign with kid=k1 (see functions/oauthcallback/README.md, key rotation)")
			}
			return nil, fmt.Errorf("START_LINK_KEY entry %d is not ID:SECRET", i+1)
		}
		if strings.ContainsFunc(secret, unicode.IsSpace) {
			return nil, fmt.Errorf("START_LINK_KEY key %d: the secret holds whitespace", i+1)
		}
		keys = append(keys, Key{ID: id, Secret: []byte(secret)})
	}
	ks, err := NewKeyset(keys[0], keys[1:]...)
	if err != nil {
		return nil, fmt.Errorf("START_LINK_KEY: %w", err)
	}
	return ks, nil
}

// Current is the key that signs.
func (ks *Keyset) Current() Key { return ks.keys[0] }

// Keys returns every key, the current one first.
func (ks *Keyset) Keys() []Key { return slices.Clone(ks.keys) }

func (ks *Keyset) lookup(id string) (Key, bool) {
	for _, k := range ks.keys {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}
