package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/startlink"
)

func TestRun(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("x", 32)
	now := time.Now()
	link, err := run("k2:"+secret+",k1:"+strings.Repeat("y", 32), "alice", "Alice M", "myactivity.search", "https://fn.example/", startlink.PurposeStart, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(link)
	if err != nil || u.Path != "/start" {
		t.Fatalf("link %q", link)
	}
	ks, _ := startlink.ParseKeyset("k2:" + secret)
	l, err := startlink.Verify(ks, startlink.PurposeStart, u.Query(), now, startlink.MaxStartTTL)
	if err != nil || l.KeyID != "k2" || l.Name != "Alice M" || time.Until(l.Expires) < 59*time.Minute {
		t.Errorf("link %+v, %v", l, err)
	}
	status, err := run("k2:"+secret, "alice", "", "", "https://fn.example", startlink.PurposeStatus, 0, now)
	if err != nil || !strings.HasPrefix(status, "https://fn.example/status?") {
		t.Fatalf("status link %q, %v", status, err)
	}
	if _, err := run(secret, "alice", "", "myactivity.search", "https://fn.example", startlink.PurposeStart, 0, now); err == nil ||
		!strings.Contains(err.Error(), "key ID") || strings.Contains(err.Error(), secret) {
		t.Errorf("a keyset without ID: %v", err)
	}
}
