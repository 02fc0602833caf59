package stack

import (
	"sync"
	"time"

	"github.com/portability-pipeline/pipeline/shared/startlink"
)

// LinkKeyID is the key ID of the stack's one link key.
const LinkKeyID = "local"

// expiries makes every link of the process distinct: a link is spent by its signature, and two links of
// one user signed in the same second would otherwise be the same link. A link that would expire when
// another does expires a second earlier.
var expiries = struct {
	sync.Mutex
	used map[int64]bool
}{used: map[int64]bool{}}

func expiry(ttl time.Duration) time.Time {
	expiries.Lock()
	defer expiries.Unlock()
	now := time.Now().Unix()
	for e := range expiries.used {
		if e < now {
			delete(expiries.used, e)
		}
	}
	exp := time.Now().Add(ttl).Unix()
	for expiries.used[exp] {
		exp--
	}
	expiries.used[exp] = true
	return time.Unix(exp, 0)
}

func (s *Stack) linkKey() startlink.Key {
	return startlink.Key{ID: LinkKeyID, Secret: s.StartLinkKey}
}

// StartLink returns a signed start link for user and resources, valid for up to an hour, as the
// operator's app would sign it. Each call gives a new link (each works once).
func (s *Stack) StartLink(user string, resources []string) string {
	return s.StartLinkSince(user, resources, time.Time{})
}

// StatusLink returns a signed status link for user, valid for up to ttl (at most STATUS_LINK_TTL, 10
// minutes unless the stack's Env sets it), as the operator's app would sign it. It works once: the
// browser that opens it gets the status session.
func (s *Stack) StatusLink(user string, ttl time.Duration) string {
	v := startlink.Sign(s.linkKey(), startlink.Link{User: user, Purpose: startlink.PurposeStatus, Expires: expiry(ttl)})
	return s.Functions["OAuthCallback"].URL() + "/status?" + v.Encode()
}

// StartLinkSince is StartLink with a signed since: round 1 exports activity from then on.
func (s *Stack) StartLinkSince(user string, resources []string, since time.Time) string {
	v := startlink.Sign(s.linkKey(), startlink.Link{User: user, Resources: resources, Purpose: startlink.PurposeStart,
		Expires: expiry(startlink.MaxStartTTL), Since: since})
	return s.Functions["OAuthCallback"].URL() + "/start?" + v.Encode()
}
