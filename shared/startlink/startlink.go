// Package startlink signs and verifies the links the operator's app gives a signed-in person: a start link
// (begin the consent for some resources) and a status link (see how the export goes).
//
// The app and the pipeline share the secret START_LINK_KEY. A link carries the query parameters
//
//	user=ID&resources=g1,g2&exp=UNIX&sig=HEX
//
// where sig is the lowercase hex HMAC-SHA256, keyed with the bytes of START_LINK_KEY, of the canonical
// message (fields joined by "\n", no trailing newline):
//
//	portability-pipeline/link/v1
//	<purpose: start or status>
//	<user ID>
//	<resource groups, sorted, comma-joined; empty for a status link>
//	<exp, decimal unix seconds>
//
// The purpose is not in the URL: the route decides it, so a status link cannot open a consent. User IDs
// and group names cannot contain "\n" or ",", so the encoding is unambiguous once they are validated.
//
// A start link may carry since=RFC3339 (optional): the export's first round then asks only for activity
// from that time on (groups with time filters). When present it is signed as one more line,
// "since=<the value exactly as in the URL>"; a link without it has the message above, so links signed
// before since existed verify unchanged. A since that is malformed or in the future is refused (ErrSince).
package startlink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/resources"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Purposes of a link.
const (
	PurposeStart  = "start"
	PurposeStatus = "status"
)

// Limits on how far ahead a link may expire (plus ClockSkew, for the app's clock).
const (
	MaxStartTTL  = time.Hour
	MaxStatusTTL = 31 * 24 * time.Hour
	ClockSkew    = time.Minute
)

// Version is the first line of the signed message.
const Version = "portability-pipeline/link/v1"

// Query parameter names.
const (
	ParamUser      = "user"
	ParamResources = "resources"
	ParamExpires   = "exp"
	ParamSig       = "sig"
	ParamSince     = "since"
)

// Errors of Verify; every error wraps one of them.
var (
	ErrMissing   = errors.New("link incomplete")
	ErrSignature = errors.New("link signature does not match (forged or changed)")
	ErrExpired   = errors.New("link expired")
	ErrInvalid   = errors.New("link invalid")
	// ErrSince: the link's since is not an RFC 3339 time, or is in the future.
	ErrSince = errors.New("link since invalid")
)

// Link is what a link grants.
type Link struct {
	User      string
	Resources []string // groups; sorted by Sign and Verify
	Purpose   string
	Expires   time.Time
	// Since is the optional start of the activity to export (start links; zero when absent).
	Since time.Time
}

// Message returns the canonical signed message of a link (resources in the given order; Sign sorts them).
func Message(purpose, user, resourceList string, exp int64) string {
	return strings.Join([]string{Version, purpose, user, resourceList, strconv.FormatInt(exp, 10)}, "\n")
}

// sinceLine is the extra signed line of a link with since (none without).
func sinceLine(msg, since string) string {
	if since == "" {
		return msg
	}
	return msg + "\nsince=" + since
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Sign returns the query parameters of l (user, resources, exp, sig). It does not check l: call Validate
// first when l comes from outside.
func Sign(key []byte, l Link) url.Values {
	rs := slices.Sorted(slices.Values(l.Resources))
	list := strings.Join(rs, ",")
	exp := l.Expires.Unix()
	v := url.Values{}
	v.Set(ParamUser, l.User)
	if list != "" {
		v.Set(ParamResources, list)
	}
	v.Set(ParamExpires, strconv.FormatInt(exp, 10))
	since := ""
	if !l.Since.IsZero() {
		since = l.Since.UTC().Format(time.RFC3339)
		v.Set(ParamSince, since)
	}
	v.Set(ParamSig, hex.EncodeToString(mac(key, sinceLine(Message(l.Purpose, l.User, list, exp), since))))
	return v
}

// Validate checks the content of a link at time now: purpose, user ID, resource groups, expiry.
func (l Link) Validate(now time.Time) error {
	var maxTTL time.Duration
	switch l.Purpose {
	case PurposeStart:
		maxTTL = MaxStartTTL
		if len(l.Resources) == 0 {
			return fmt.Errorf("%w: a start link needs resources", ErrInvalid)
		}
	case PurposeStatus:
		maxTTL = MaxStatusTTL
	default:
		return fmt.Errorf("%w: purpose %q (want %s or %s)", ErrInvalid, l.Purpose, PurposeStart, PurposeStatus)
	}
	if !store.ValidUserID(l.User) {
		return fmt.Errorf("%w: user ID %q (letters, digits and ._@+=- only, at most 128)", ErrInvalid, l.User)
	}
	if len(l.Resources) > 0 {
		if _, err := resources.Validate(l.Resources); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
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

// Verify checks the parameters of a link for purpose at time now: all present, signature (constant
// time), expiry, content. It returns the link with sorted resources.
func Verify(key []byte, purpose string, v url.Values, now time.Time) (Link, error) {
	var absent []string
	for _, p := range []string{ParamUser, ParamExpires, ParamSig} {
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
	for _, p := range []string{ParamUser, ParamResources, ParamExpires, ParamSig, ParamSince} {
		if len(v[p]) > 1 {
			return Link{}, fmt.Errorf("%w: %s given twice", ErrInvalid, p)
		}
	}
	user, list, expStr := v.Get(ParamUser), v.Get(ParamResources), v.Get(ParamExpires)
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != expStr {
		return Link{}, fmt.Errorf("%w: exp %q is not unix seconds", ErrInvalid, expStr)
	}
	got, err := hex.DecodeString(v.Get(ParamSig))
	if err != nil || len(got) != sha256.Size {
		return Link{}, fmt.Errorf("%w: sig is not a hex HMAC-SHA256", ErrSignature)
	}
	sinceText := v.Get(ParamSince)
	if _, present := v[ParamSince]; present && sinceText == "" {
		return Link{}, fmt.Errorf("%w: since is empty", ErrSince)
	}
	if !hmac.Equal(got, mac(key, sinceLine(Message(purpose, user, list, exp), sinceText))) {
		return Link{}, ErrSignature
	}
	l := Link{User: user, Purpose: purpose, Expires: time.Unix(exp, 0)}
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
	if err := l.Validate(now); err != nil {
		return Link{}, err
	}
	l.Resources = slices.Sorted(slices.Values(l.Resources))
	return l, nil
}
