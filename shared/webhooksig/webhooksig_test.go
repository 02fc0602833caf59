package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// verify is the stand-alone snippet of the package documentation, kept in step with it.
func verify(secret []byte, header string, body []byte, now time.Time) bool {
	var ts string
	var sigs [][]byte
	for _, kv := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(t, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return true
		}
	}
	return false
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secret := []byte("whsec-0123456789abcdef0123456789abcdef")
	body := []byte(`{"schema_version":1,"id":"abc","type":"resource.exported","user":"ana"}`)
	now := time.Unix(1_800_000_000, 0)
	good := Sign(secret, body, now)
	old := Sign(secret, body, now.Add(-6*time.Minute))
	tampered := []byte(strings.Replace(string(body), "ana", "bob", 1))
	for _, c := range []struct {
		name   string
		header string
		body   []byte
		secret []byte
		now    time.Time
		want   error
	}{
		{"valid", good, body, secret, now, nil},
		{"valid, clock 4 min ahead", good, body, secret, now.Add(4 * time.Minute), nil},
		{"rotated secret listed second", good[:strings.Index(good, ",")] + ",v1=" + strings.Repeat("00", 32) + good[strings.Index(good, ","):], body, secret, now, nil},
		{"tampered body", good, tampered, secret, now, ErrSignature},
		{"wrong secret", good, body, []byte("another secret"), now, ErrSignature},
		{"replayed: signed 6 minutes ago", old, body, secret, now, ErrTimestamp},
		{"from the future", Sign(secret, body, now.Add(10*time.Minute)), body, secret, now, ErrTimestamp},
		{"no signature", "t=" + strconv.FormatInt(now.Unix(), 10), body, secret, now, ErrMalformed},
		{"garbage", "hello", body, secret, now, ErrMalformed},
		{"empty", "", body, secret, now, ErrMalformed},
	} {
		err := Verify(c.secret, c.header, c.body, c.now, Tolerance)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if snippet := verify(c.secret, c.header, c.body, c.now); snippet != (c.want == nil) {
			t.Errorf("%s: the documented snippet says %t", c.name, snippet)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1,v1=00", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		_ = Verify([]byte("k"), header, body, time.Unix(1, 0), Tolerance)
	})
}
