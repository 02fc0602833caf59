package startlink

import (
	"bytes"
	"net/url"
	"testing"
	"time"
)

// FuzzVerify feeds Verify arbitrary query strings (a start or status link is outside input): it must
// never panic, and it may accept a link only if the same link signed with the key gives the same
// parameters back: no other spelling of a valid link passes.
func FuzzVerify(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	good := Sign(key, Link{User: "alice", Resources: []string{"myactivity.search", "youtube.subscriptions"}, Purpose: PurposeStart, Expires: now.Add(time.Hour)})
	status := Sign(key, Link{User: "alice", Purpose: PurposeStatus, Expires: now.Add(time.Hour)})
	for _, q := range []string{
		good.Encode(), status.Encode(), "", "user=alice", "user=alice&user=mallory&" + good.Encode(),
		"user=..%2F..&resources=myactivity.search&exp=1800003600&sig=00",
		"user=alice&resources=myactivity.search,youtube.subscriptions&exp=+1800003600&sig=" + good.Get(ParamSig),
		"user=alice&resources=youtube.subscriptions,myactivity.search&exp=1800003600&sig=" + good.Get(ParamSig),
		"user=alice&resources=myactivity.search%2Cyoutube.subscriptions&exp=01800003600&sig=" + good.Get(ParamSig),
	} {
		f.Add(q, PurposeStart)
		f.Add(q, PurposeStatus)
	}
	f.Fuzz(func(t *testing.T, query, purpose string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		l, err := Verify(key, purpose, v, now)
		if err != nil {
			return
		}
		again := Sign(key, l)
		for _, p := range []string{ParamUser, ParamResources, ParamExpires} {
			if again.Get(p) != v.Get(p) {
				t.Fatalf("accepted %q: %s=%q, the signed link has %q", query, p, v.Get(p), again.Get(p))
			}
		}
		if !bytes.EqualFold([]byte(again.Get(ParamSig)), []byte(v.Get(ParamSig))) {
			t.Fatalf("accepted %q with a signature other than the link's", query)
		}
		if err := l.Validate(now); err != nil {
			t.Fatalf("accepted an invalid link %q: %v", query, err)
		}
	})
}
