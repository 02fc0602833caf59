package startlink

import (
	"bytes"
	"net/url"
	"slices"
	"testing"
	"time"
)

// FuzzVerify feeds Verify arbitrary query strings (a start or status link is outside input): it must
// never panic, and it may accept a link only if the same link signed with its key verifies to the same
// link with the same signature: no other spelling of a valid link passes, except spaces around groups
// (trimmed once, and signed as written).
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	good := Sign(cur, Link{User: "alice", Resources: []string{"myactivity.search", "youtube.subscriptions"}, Purpose: PurposeStart, Expires: now.Add(time.Hour)})
	named := Sign(prev, Link{User: "alice", Resources: []string{"myactivity.search"}, Name: "Alice", Purpose: PurposeStart, Expires: now.Add(time.Hour)})
	status := Sign(cur, Link{User: "alice", Purpose: PurposeStatus, Expires: now.Add(5 * time.Minute)})
	for _, q := range []string{
		good.Encode(), named.Encode(), status.Encode(), "", "user=alice", "user=alice&user=mallory&" + good.Encode(),
		"kid=k2&user=..%2F..&resources=myactivity.search&exp=1800003600&sig=00",
		"kid=k2&user=alice&resources=myactivity.search,youtube.subscriptions&exp=+1800003600&sig=" + good.Get(ParamSig),
		"kid=k2&user=alice&resources=youtube.subscriptions,myactivity.search&exp=1800003600&sig=" + good.Get(ParamSig),
		"kid=k1&user=alice&resources=myactivity.search%2Cyoutube.subscriptions&exp=01800003600&sig=" + good.Get(ParamSig),
	} {
		f.Add(q, PurposeStart)
		f.Add(q, PurposeStatus)
	}
	f.Fuzz(func(t *testing.T, query, purpose string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		l, err := Verify(keys, purpose, v, now, ttlFor(purpose))
		if err != nil {
			return
		}
		k, _ := keys.lookup(l.KeyID)
		again := Sign(k, l)
		for _, p := range []string{ParamKeyID, ParamUser, ParamExpires, ParamName} {
			if again.Get(p) != v.Get(p) {
				t.Fatalf("accepted %q: %s=%q, the signed link has %q", query, p, v.Get(p), again.Get(p))
			}
		}
		if again.Get(ParamResources) == v.Get(ParamResources) && !bytes.EqualFold([]byte(again.Get(ParamSig)), []byte(v.Get(ParamSig))) {
			t.Fatalf("accepted %q with a signature other than the link's", query)
		}
		l2, err := Verify(keys, purpose, again, now, ttlFor(purpose))
		if err != nil || !slices.Equal(l2.Resources, l.Resources) {
			t.Fatalf("accepted %q, but its canonical form %q gives %v, %v", query, again.Encode(), l2, err)
		}
	})
}
