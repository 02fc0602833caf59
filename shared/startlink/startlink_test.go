package startlink

import (
	"encoding/hex"
	"errors"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

var key = []byte("0123456789abcdef0123456789abcdef-test")

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	good := Link{User: "alice", Resources: []string{"youtube.subscriptions", "myactivity.search"}, Purpose: PurposeStart, Expires: now.Add(30 * time.Minute)}
	signed := func(l Link) url.Values { return Sign(key, l) }
	edit := func(v url.Values, f func(url.Values)) url.Values {
		c := url.Values{}
		for k, vs := range v {
			c[k] = append([]string(nil), vs...)
		}
		f(c)
		return c
	}
	tests := []struct {
		name    string
		purpose string
		values  url.Values
		key     []byte
		want    error
	}{
		{"valid", PurposeStart, signed(good), key, nil},
		{"valid status link", PurposeStatus, signed(Link{User: "alice", Purpose: PurposeStatus, Expires: now.Add(7 * 24 * time.Hour)}), key, nil},
		{"tampered user", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamUser, "mallory") }), key, ErrSignature},
		{"tampered resources", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamResources, "myactivity.search") }), key, ErrSignature},
		{"added resource", PurposeStart, edit(signed(good), func(v url.Values) {
			v.Set(ParamResources, "myactivity.search,myactivity.youtube,youtube.subscriptions")
		}), key, ErrSignature},
		{"extended expiry", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamExpires, "1800003600") }), key, ErrSignature},
		{"expired", PurposeStart, signed(Link{User: "alice", Resources: good.Resources, Purpose: PurposeStart, Expires: now.Add(-time.Second)}), key, ErrExpired},
		{"expiry too far ahead", PurposeStart, signed(Link{User: "alice", Resources: good.Resources, Purpose: PurposeStart, Expires: now.Add(2 * time.Hour)}), key, ErrInvalid},
		{"missing sig", PurposeStart, edit(signed(good), func(v url.Values) { v.Del(ParamSig) }), key, ErrMissing},
		{"missing exp", PurposeStart, edit(signed(good), func(v url.Values) { v.Del(ParamExpires) }), key, ErrMissing},
		{"sig not hex", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamSig, "zz") }), key, ErrSignature},
		{"repeated parameter", PurposeStart, edit(signed(good), func(v url.Values) { v.Add(ParamUser, "alice") }), key, ErrInvalid},
		{"other key", PurposeStart, signed(good), []byte("another key of at least thirty-two chars"), ErrSignature},
		{"status link used as start link", PurposeStart, signed(Link{User: "alice", Resources: good.Resources, Purpose: PurposeStatus, Expires: good.Expires}), key, ErrSignature},
		{"signed bad user ID", PurposeStart, signed(Link{User: "a/b", Resources: good.Resources, Purpose: PurposeStart, Expires: good.Expires}), key, ErrInvalid},
		{"signed unknown resource", PurposeStart, signed(Link{User: "alice", Resources: []string{"gmail.all"}, Purpose: PurposeStart, Expires: good.Expires}), key, ErrInvalid},
		{"signed scope URL", PurposeStart, signed(Link{User: "alice", Resources: []string{"https://www.googleapis.com/auth/dataportability.myactivity.search"}, Purpose: PurposeStart, Expires: good.Expires}), key, ErrInvalid},
	}
	withSince := good
	withSince.Since = now.Add(-10 * 24 * time.Hour)
	// rawSince signs a start link whose since is exactly text (what an app's own signer might send).
	rawSince := func(text string) url.Values {
		v := signed(good)
		exp := good.Expires.Unix()
		v.Set(ParamSince, text)
		v.Set(ParamSig, hex.EncodeToString(mac(key, sinceLine(Message(PurposeStart, "alice", "myactivity.search,youtube.subscriptions", exp), text))))
		return v
	}
	tests = append(tests, []struct {
		name    string
		purpose string
		values  url.Values
		key     []byte
		want    error
	}{
		{"valid with since", PurposeStart, signed(withSince), key, nil},
		{"valid with since, fractional seconds and offset", PurposeStart, rawSince("2027-01-01T10:00:00.5+02:00"), key, nil},
		{"tampered since", PurposeStart, edit(signed(withSince), func(v url.Values) { v.Set(ParamSince, "2020-01-01T00:00:00Z") }), key, ErrSignature},
		{"since added to a link without one", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamSince, "2020-01-01T00:00:00Z") }), key, ErrSignature},
		{"since removed", PurposeStart, edit(signed(withSince), func(v url.Values) { v.Del(ParamSince) }), key, ErrSignature},
		{"empty since", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamSince, "") }), key, ErrSince},
		{"repeated since", PurposeStart, edit(signed(withSince), func(v url.Values) { v.Add(ParamSince, "2020-01-01T00:00:00Z") }), key, ErrInvalid},
		{"signed since in the future", PurposeStart, signed(Link{User: "alice", Resources: good.Resources, Purpose: PurposeStart, Expires: good.Expires, Since: now.Add(time.Hour)}), key, ErrSince},
		{"signed malformed since", PurposeStart, rawSince("yesterday"), key, ErrSince},
		{"signed date without time", PurposeStart, rawSince("2026-01-01"), key, ErrSince},
		{"signed since before 1970", PurposeStart, rawSince("1969-12-31T23:59:59Z"), key, ErrSince},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := Verify(tc.key, tc.purpose, tc.values, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
			if err == nil && (l.User != "alice" || l.Purpose != tc.purpose) {
				t.Errorf("link = %+v", l)
			}
			if err == nil && tc.name == "valid with since" && !l.Since.Equal(withSince.Since) {
				t.Errorf("since = %v, want %v", l.Since, withSince.Since)
			}
			if err == nil && tc.name == "valid" && !l.Since.IsZero() {
				t.Errorf("a link without since gives since %v", l.Since)
			}
			if err == nil && tc.purpose == PurposeStart && strings.Join(l.Resources, ",") != "myactivity.search,youtube.subscriptions" {
				t.Errorf("resources = %v, want sorted", l.Resources)
			}
		})
	}
}

// TestOpenSSL checks the shell recipe of the README against Sign.
func TestOpenSSL(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	l := Link{User: "alice", Resources: []string{"myactivity.search", "youtube.subscriptions"}, Purpose: PurposeStart, Expires: time.Unix(1_800_000_000, 0)}
	script := `msg=$(printf 'portability-pipeline/link/v1\n%s\n%s\n%s\n%s' start "$U" "$R" "$E")
printf '%s' "$msg" | openssl dgst -sha256 -hmac "$START_LINK_KEY" | sed 's/^.*= //'`
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = []string{"START_LINK_KEY=" + string(key), "U=alice", "R=myactivity.search,youtube.subscriptions", "E=1800000000", "PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), Sign(key, l).Get(ParamSig); got != want {
		t.Errorf("openssl sig %q, Sign %q", got, want)
	}
}
