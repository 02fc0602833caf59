package signedurl_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
	"github.com/portability-pipeline/pipeline/shared/signedurl"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	policy, err := copyengine.NewURLPolicy(copyengine.DefaultURLHosts)
	if err != nil {
		t.Fatal(err)
	}
	u := func(name, sig string) string {
		return "https://storage.googleapis.com/takeout/" + name + "?X-Goog-Date=20261201T000000Z&X-Goog-Signature=" + sig
	}
	planned := []string{"/takeout/a.zip", "/takeout/b.zip", "/takeout/c.json"}
	// Another order: matched by path.
	got, err := signedurl.Match([]string{u("c.json", "3"), u("a.zip", "1"), u("b.zip", "2")}, planned, policy)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{u("a.zip", "1"), u("b.zip", "2"), u("c.json", "3")} {
		if got[i] != want {
			t.Errorf("file %d got %s, want %s", i, got[i], want)
		}
	}
	// A file planned before paths were recorded keeps its position.
	if got, err := signedurl.Match([]string{u("x.zip", "9"), u("b.zip", "2")}, []string{"", "/takeout/b.zip"}, policy); err != nil || got[0] != u("x.zip", "9") {
		t.Errorf("legacy position: %v %v", got, err)
	}
	for name, fresh := range map[string][]string{
		"fewer files":  {u("a.zip", "1"), u("b.zip", "2")},
		"more files":   {u("a.zip", "1"), u("b.zip", "2"), u("c.json", "3"), u("d.zip", "4")},
		"unknown file": {u("a.zip", "1"), u("b.zip", "2"), u("z.json", "3")},
		"a file twice": {u("a.zip", "1"), u("a.zip", "5"), u("c.json", "3")},
	} {
		_, err := signedurl.Match(fresh, planned, policy)
		if !errors.Is(err, signedurl.ErrMismatch) {
			t.Errorf("%s: %v, want ErrMismatch", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "X-Goog-Signature") {
			t.Errorf("%s: the error quotes a signed query: %v", name, err)
		}
	}
	// A fresh URL on another host is refused, not matched.
	_, err = signedurl.Match([]string{u("a.zip", "1"), u("b.zip", "2"), "https://evil.example/takeout/c.json?X-Goog-Signature=3"}, planned, policy)
	if !errors.Is(err, copyengine.ErrURLRefused) {
		t.Errorf("fresh URL on another host: %v, want ErrURLRefused", err)
	}
}
