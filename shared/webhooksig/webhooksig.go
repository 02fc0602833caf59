// Package webhooksig signs the events the pipeline POSTs to the operator's HTTPS endpoint (functions/webhook)
// and verifies them on the receiving side.
//
// Every POST carries the event's JSON as its body and the header
//
//	X-Portability-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// A receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares in constant time,
// and refuses timestamps more than five minutes from its clock (a replayed request). Delivery is
// at-least-once: deduplicate by the event's id. Verification in Go, as the receiver would write it:
//
//	body, _ := io.ReadAll(r.Body)
//	if err := webhooksig.Verify(secret, r.Header.Get(webhooksig.Header), body, time.Now(), webhooksig.Tolerance); err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//
// or without this module:
//
//	func verify(secret []byte, header string, body []byte, now time.Time) bool {
//		var ts string
//		var sigs [][]byte
//		for _, kv := range strings.Split(header, ",") {
//			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
//			switch k {
//			case "t":
//				ts = v
//			case "v1":
//				if b, err := hex.DecodeString(v); err == nil {
//					sigs = append(sigs, b)
//				}
//			}
//		}
//		t, err := strconv.ParseInt(ts, 10, 64)
//		if err != nil || now.Sub(time.Unix(t, 0)).Abs() > 5*time.Minute {
//			return false
//		}
//		mac := hmac.New(sha256.New, secret)
//		mac.Write([]byte(ts + "."))
//		mac.Write(body)
//		want := mac.Sum(nil)
//		for _, s := range sigs {
//			if hmac.Equal(s, want) {
//				return true
//			}
//		}
//		return false
//	}
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header carries the signature.
const Header = "X-Portability-Signature"

// Tolerance is how far a signature's timestamp may be from the receiver's clock.
const Tolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrMalformed = errors.New("webhook: malformed signature header")
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance (replayed or clock skew)")
	ErrSignature = errors.New("webhook: signature does not match the body")
)

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the header value for body at time t.
func Sign(secret []byte, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// Verify checks a signature header against body: the timestamp must lie within tolerance of now, and one
// v1 value must be the HMAC of "<t>.<body>" (several v1 values are allowed, for secret rotation).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, kv := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return ErrMalformed
			}
			sigs = append(sigs, b)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrMalformed
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignature
}
