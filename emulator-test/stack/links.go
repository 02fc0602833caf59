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
