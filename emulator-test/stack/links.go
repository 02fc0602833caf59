package stack

import (
	"sync/atomic"
	"time"

	"github.com/portability-pipeline/pipeline/shared/startlink"
)

// LinkKeyID is the key ID of the stack's one link key.
const LinkKeyID = "local"

// linkSeq makes every link of the process distinct: a link is spent by its signature, and two links of
// one user signed in the same second would otherwise be the same link.
var linkSeq atomic.Int64

func (s *Stack) linkKey() startlink.Key {
	return startlink.Key{ID: LinkKeyID, Secret: s.StartLinkKey}
}

// StartLink returns a signed start link for user and resources, valid for up to an hour, as the
// operator's app would sign it. Each call gives a new link (each works once).
func (s *Stack) StartLink(user string, resources []string) string {
	exp := time.Now().Add(startlink.MaxStartTTL - time.Duration(linkSeq.Add(1)%1800)*time.Second)
	v := startlink.Sign(s.linkKey(), startlink.Link{User: user, Resources: resources, Purpose: startlink.PurposeStart, Expires: exp})
	return s.Functions["OAuthCallback"].URL() + "/start?" + v.Encode()
}

// StatusLink returns a signed status link for user, valid for ttl (at most STATUS_LINK_TTL, 10 minutes
// unless the stack's Env sets it), as the operator's app would sign it. It works once: the browser that
// opens it gets the status session.
func (s *Stack) StatusLink(user string, ttl time.Duration) string {
	exp := time.Now().Add(ttl - time.Duration(linkSeq.Add(1)%30)*time.Second)
	v := startlink.Sign(s.linkKey(), startlink.Link{User: user, Purpose: startlink.PurposeStatus, Expires: exp})
	return s.Functions["OAuthCallback"].URL() + "/status?" + v.Encode()
}
