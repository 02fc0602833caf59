package startlink

import (
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	cur     = Key{ID: "k2", Secret: []byte("0123456789abcdef0123456789abcdef-test")}
	prev    = Key{ID: "k1", Secret: []byte("an older secret of at least thirty-two characters")}
	keys, _ = NewKeyset(cur, prev)
	ttl     = DefaultStatusTTL
)

// ttlFor is the limit the pipeline passes for a purpose.
func ttlFor(purpose string) time.Duration {
	if purpose == PurposeStart {
		return MaxStartTTL
	}
	return ttl
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	good := Link{User: "alice", Resources: []string{"youtube.subscriptions", "myactivity.search"}, Purpose: PurposeStart, Expires: now.Add(30 * time.Minute)}
	signed := func(l Link) url.Values { return Sign(cur, l) }
	with := func(f func(*Link)) url.Values { l := good; f(&l); return signed(l) }
	edit := func(v url.Values, f func(url.Values)) url.Values {
		c := url.Values{}
		for k, vs := range v {
			c[k] = append([]string(nil), vs...)
		}
		f(c)
		return c
	}
	onlyCurrent, _ := NewKeyset(cur)
	tests := []struct {
		name    string
		purpose string
		values  url.Values
		keys    *Keyset
		want    error
	}{
		{"valid", PurposeStart, signed(good), keys, nil},
		{"valid, previous key", PurposeStart, Sign(prev, good), keys, nil},
		{"valid, display name", PurposeStart, with(func(l *Link) { l.Name = "Alice Martin (alice@example.com)" }), keys, nil},
		{"valid status link", PurposeStatus, signed(Link{User: "alice", Purpose: PurposeStatus, Expires: now.Add(5 * time.Minute)}), keys, nil},
		{"rotated-out key", PurposeStart, Sign(prev, good), onlyCurrent, ErrSignature},
		{"key ID swapped", PurposeStart, edit(Sign(prev, good), func(v url.Values) { v.Set(ParamKeyID, cur.ID) }), keys, ErrSignature},
		{"no key ID", PurposeStart, edit(signed(good), func(v url.Values) { v.Del(ParamKeyID) }), keys, ErrMissing},
		{"tampered user", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamUser, "mallory") }), keys, ErrSignature},
		{"tampered display name", PurposeStart, edit(with(func(l *Link) { l.Name = "Mallory" }), func(v url.Values) { v.Set(ParamName, "Alice") }), keys, ErrSignature},
		{"added display name", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamName, "Alice") }), keys, ErrSignature},
		{"tampered resources", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamResources, "myactivity.search") }), keys, ErrSignature},
		{"added resource", PurposeStart, edit(signed(good), func(v url.Values) {
			v.Set(ParamResources, "myactivity.search,myactivity.youtube,youtube.subscriptions")
		}), keys, ErrSignature},
		{"extended expiry", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamExpires, "1800003600") }), keys, ErrSignature},
		{"expired", PurposeStart, with(func(l *Link) { l.Expires = now.Add(-time.Second) }), keys, ErrExpired},
		{"expiry too far ahead", PurposeStart, with(func(l *Link) { l.Expires = now.Add(2 * time.Hour) }), keys, ErrInvalid},
		{"status link beyond its TTL", PurposeStatus, signed(Link{User: "alice", Purpose: PurposeStatus, Expires: now.Add(ttl + 2*ClockSkew)}), keys, ErrInvalid},
		{"missing sig", PurposeStart, edit(signed(good), func(v url.Values) { v.Del(ParamSig) }), keys, ErrMissing},
		{"missing exp", PurposeStart, edit(signed(good), func(v url.Values) { v.Del(ParamExpires) }), keys, ErrMissing},
		{"sig not hex", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamSig, "zz") }), keys, ErrSignature},
		{"repeated parameter", PurposeStart, edit(signed(good), func(v url.Values) { v.Add(ParamUser, "alice") }), keys, ErrInvalid},
		{"repeated name", PurposeStart, edit(with(func(l *Link) { l.Name = "A" }), func(v url.Values) { v.Add(ParamName, "B") }), keys, ErrInvalid},
		{"other key", PurposeStart, Sign(Key{ID: cur.ID, Secret: []byte("another key of at least thirty-two chars")}, good), keys, ErrSignature},
		{"status link used as start link", PurposeStart, signed(Link{User: "alice", Resources: good.Resources, Purpose: PurposeStatus, Expires: good.Expires}), keys, ErrSignature},
		{"signed bad user ID", PurposeStart, with(func(l *Link) { l.User = "a/b" }), keys, ErrUserID},
		{"signed reserved user ID __x__", PurposeStart, with(func(l *Link) { l.User = "__x__" }), keys, ErrUserID},
		{"signed reserved user ID .", PurposeStart, with(func(l *Link) { l.User = "." }), keys, ErrUserID},
		{"signed reserved user ID ..", PurposeStart, with(func(l *Link) { l.User = ".." }), keys, ErrUserID},
		{"signed unknown resource", PurposeStart, with(func(l *Link) { l.Resources = []string{"gmail.all"} }), keys, ErrInvalid},
		{"signed scope URL", PurposeStart, with(func(l *Link) {
			l.Resources = []string{"https://www.googleapis.com/auth/dataportability.myactivity.search"}
		}), keys, ErrInvalid},
		{"display name with a newline", PurposeStart, with(func(l *Link) { l.Name = "Alice\nMallory" }), keys, ErrInvalid},
		{"display name with a bidi override", PurposeStart, with(func(l *Link) { l.Name = "Alice \u202eyrollaM" }), keys, ErrInvalid},
		{"display name too long", PurposeStart, with(func(l *Link) { l.Name = strings.Repeat("a", MaxNameLen+1) }), keys, ErrInvalid},
		{"status link with a name", PurposeStatus, signed(Link{User: "alice", Purpose: PurposeStatus, Name: "Alice", Expires: now.Add(time.Minute)}), keys, ErrInvalid},
	}
	withSince := good
	withSince.Since = now.Add(-10 * 24 * time.Hour)
	// rawSince signs a start link whose since is exactly text (what an app's own signer might send).
	rawSince := func(text string) url.Values {
		v := signed(good)
		exp := good.Expires.Unix()
		v.Set(ParamSince, text)
		v.Set(ParamSig, hex.EncodeToString(mac(cur.Secret, sinceLine(Message(PurposeStart, cur.ID, "alice", "myactivity.search,youtube.subscriptions", exp, ""), text))))
		return v
	}
	tests = append(tests, []struct {
		name    string
		purpose string
		values  url.Values
		keys    *Keyset
		want    error
	}{
		{"valid with since", PurposeStart, signed(withSince), keys, nil},
		{"valid with since, fractional seconds and offset", PurposeStart, rawSince("2027-01-01T10:00:00.5+02:00"), keys, nil},
		{"tampered since", PurposeStart, edit(signed(withSince), func(v url.Values) { v.Set(ParamSince, "2020-01-01T00:00:00Z") }), keys, ErrSignature},
		{"since added to a link without one", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamSince, "2020-01-01T00:00:00Z") }), keys, ErrSignature},
		{"since removed", PurposeStart, edit(signed(withSince), func(v url.Values) { v.Del(ParamSince) }), keys, ErrSignature},
		{"empty since", PurposeStart, edit(signed(good), func(v url.Values) { v.Set(ParamSince, "") }), keys, ErrSince},
		{"repeated since", PurposeStart, edit(signed(withSince), func(v url.Values) { v.Add(ParamSince, "2020-01-01T00:00:00Z") }), keys, ErrInvalid},
		{"signed since in the future", PurposeStart, signed(Link{User: "alice", Resources: good.Resources, Purpose: PurposeStart, Expires: good.Expires, Since: now.Add(time.Hour)}), keys, ErrSince},
		{"signed malformed since", PurposeStart, rawSince("yesterday"), keys, ErrSince},
		{"signed date without time", PurposeStart, rawSince("2026-01-01"), keys, ErrSince},
		{"signed since before 1970", PurposeStart, rawSince("1969-12-31T23:59:59Z"), keys, ErrSince},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := Verify(tc.keys, tc.purpose, tc.values, now, ttlFor(tc.purpose))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
			if err == nil && (l.User != "alice" || l.Purpose != tc.purpose || l.KeyID != tc.values.Get(ParamKeyID)) {
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
			if err != nil && strings.Contains(err.Error(), string(cur.Secret)) {
				t.Error("the error holds the secret")
			}
		})
	}
}

// TestVerifyTrimsOnce: a link signed with spaces after the commas gives the trimmed groups (before the
// fix the scope " youtube.subscriptions" was asked), and duplicates hidden by spaces are refused.
func TestVerifyTrimsOnce(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	sign := func(list string) url.Values {
		v := url.Values{ParamKeyID: {cur.ID}, ParamUser: {"alice"}, ParamResources: {list}, ParamExpires: {"1800000600"}}
		v.Set(ParamSig, hexMAC(cur.Secret, Message(PurposeStart, cur.ID, "alice", list, 1800000600, "")))
		return v
	}
	v := sign("youtube.subscriptions, myactivity.search")
	l, err := Verify(keys, PurposeStart, v, now, MaxStartTTL)
	if err != nil || !slices.Equal(l.Resources, []string{"myactivity.search", "youtube.subscriptions"}) {
		t.Fatalf("Verify: %q, %v", l.Resources, err)
	}
	if _, err := Verify(keys, PurposeStart, sign("myactivity.search, myactivity.search"), now, MaxStartTTL); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate behind a space: %v", err)
	}
}

func TestParseKeyset(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 32)
	tests := []struct {
		in      string
		current string
		n       int
		err     string
	}{
		{"k1:" + secret, "k1", 1, ""},
		{"k2:" + secret + "2,k1:" + secret + "\n", "k2", 2, ""},
		{" k2:" + secret + "2 , k1:" + secret + " ", "k2", 2, ""},
		{"k1:" + secret + ":with:colons", "k1", 1, ""},
		{secret, "", 0, "single key without a key ID"},
		{"", "", 0, "empty"},
		{"k1:short", "", 0, "at least 32"},
		{"k1:" + secret + ",k1:" + secret + "x", "", 0, "twice"},
		{"k3:" + secret + ",k2:" + secret + ",k1:" + secret, "", 0, "at most one previous"},
		{"bad id!:" + secret, "", 0, "key ID"},
		{"k1:" + secret + " more", "", 0, "whitespace"},
		{"k1:" + secret + "," + secret, "", 0, "not ID:SECRET"},
	}
	for _, tc := range tests {
		ks, err := ParseKeyset(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseKeyset(%.12q...): %v, want an error with %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error repeats the secret: %v", err)
			}
			continue
		}
		if err != nil || ks.Current().ID != tc.current || len(ks.Keys()) != tc.n {
			t.Errorf("ParseKeyset(%.12q...): %+v, %v", tc.in, ks, err)
		}
	}
}

// TestOpenSSL checks the shell recipe of the READMEs against Sign.
func TestOpenSSL(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	for _, l := range []Link{
		{User: "alice", Resources: []string{"myactivity.search", "youtube.subscriptions"}, Purpose: PurposeStart, Expires: time.Unix(1_800_000_000, 0)},
		{User: "alice", Resources: []string{"myactivity.search"}, Purpose: PurposeStart, Name: "Alice Martin", Expires: time.Unix(1_800_000_000, 0)},
		{User: "alice", Purpose: PurposeStatus, Expires: time.Unix(1_800_000_000, 0)},
	} {
		// The recipe of functions/oauthcallback/README.md, with its variables.
		// No $(...) around the message: it would drop the newline that ends a message without a name.
		script := `printf 'portability-pipeline/link/v2\n%s\n%s\n%s\n%s\n%s\n%s' "$purpose" "$kid" "$user" "$resources" "$exp" "$name" |
  openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= //'`
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = []string{"secret=" + string(cur.Secret), "kid=" + cur.ID, "purpose=" + l.Purpose, "user=" + l.User,
			"resources=" + strings.Join(l.Resources, ","), "exp=1800000000", "name=" + l.Name, "PATH=/usr/bin:/bin"}
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(string(out)), Sign(cur, l).Get(ParamSig); got != want {
			t.Errorf("%s link: openssl sig %q, Sign %q", l.Purpose, got, want)
		}
	}
}

func TestID(t *testing.T) {
	t.Parallel()
	a := Sign(cur, Link{User: "alice", Resources: []string{"myactivity.search"}, Purpose: PurposeStart, Expires: time.Unix(1_800_000_000, 0)})
	b := Sign(cur, Link{User: "alice", Resources: []string{"myactivity.search"}, Purpose: PurposeStart, Expires: time.Unix(1_800_000_001, 0)})
	if ID(PurposeStart, a) == ID(PurposeStart, b) || ID(PurposeStart, a) == ID(PurposeStatus, a) || strings.Contains(ID(PurposeStart, a), a.Get(ParamSig)) {
		t.Error("link IDs collide or hold the signature")
	}
	upper, _ := url.ParseQuery(a.Encode())
	upper.Set(ParamSig, strings.ToUpper(a.Get(ParamSig)))
	if ID(PurposeStart, a) != ID(PurposeStart, upper) {
		t.Error("the same signature in capitals is another link")
	}
}

// TestREADMEShell runs the shell example of functions/oauthcallback/README.md as an app would and
// verifies the link it prints.
func TestREADMEShell(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	readme, err := os.ReadFile("../../functions/oauthcallback/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- shell example: checked by shared/startlink TestREADMEShell -->\n```sh\n")
	script, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("the README has no marked shell example")
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = []string{"START_LINK_KEY=k1:" + string(cur.Secret), "PUBLIC_URL=https://fn.example", "PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, script)
	}
	u, err := url.Parse(strings.TrimSpace(string(out)))
	if err != nil || u.Host != "fn.example" || u.Path != "/start" {
		t.Fatalf("printed %q", out)
	}
	ks, _ := ParseKeyset("k1:" + string(cur.Secret))
	l, err := Verify(ks, PurposeStart, u.Query(), time.Now(), MaxStartTTL)
	if err != nil || l.User != "alice" || l.KeyID != "k1" || len(l.Resources) != 2 {
		t.Errorf("the README's link: %+v, %v", l, err)
	}
}
