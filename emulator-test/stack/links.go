package stack

import (
	"time"

	"github.com/portability-pipeline/pipeline/shared/startlink"
)

// StatusLink returns a signed status link for user, valid for ttl (at most startlink.MaxStatusTTL), as
// the operator's app would sign it.
func (s *Stack) StatusLink(user string, ttl time.Duration) string {
	v := startlink.Sign(s.StartLinkKey, startlink.Link{User: user, Purpose: startlink.PurposeStatus, Expires: time.Now().Add(ttl)})
	return s.Functions["OAuthCallback"].URL() + "/status?" + v.Encode()
}

// StartLinkSince is StartLink with a signed since: round 1 exports activity from then on.
func (s *Stack) StartLinkSince(user string, resources []string, since time.Time) string {
	v := startlink.Sign(s.StartLinkKey, startlink.Link{User: user, Resources: resources, Purpose: startlink.PurposeStart,
		Expires: time.Now().Add(time.Hour), Since: since})
	return s.Functions["OAuthCallback"].URL() + "/start?" + v.Encode()
}
