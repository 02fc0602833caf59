package copyengine_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
)

func TestURLPolicyCheck(t *testing.T) {
	t.Parallel()
	p, err := copyengine.NewURLPolicy([]string{"storage.googleapis.com", "http://127.0.0.1:8090"})
	if err != nil {
		t.Fatal(err)
	}
	for raw, ok := range map[string]bool{
		"https://storage.googleapis.com/b/o.zip?X-Goog-Signature=ab":          true,
		"https://STORAGE.googleapis.com/b/o.zip":                              true,
		"http://storage.googleapis.com/b/o.zip":                               false, // https required
		"https://storage.googleapis.com.evil.example/b/o.zip":                 false,
		"https://evil.example/storage.googleapis.com/o.zip":                   false,
		"https://user:pw@storage.googleapis.com/b/o.zip":                      false,
		"https://storage.googleapis.com:8443/b/o.zip":                         false, // another port is another host
		"http://127.0.0.1:8090/download/j/f.zip?X-Goog-Signature=ab":          true,
		"https://127.0.0.1:8090/download/j/f.zip":                             false, // only plain http was allowed there
		"http://127.0.0.1:8091/download/j/f.zip":                              false,
		"file:///etc/passwd":                                                  false,
		"gopher://storage.googleapis.com/x":                                   false,
		"://nonsense":                                                         false,
		"http://169.254.169.254/computeMetadata/v1/instance/service-accounts": false,
	} {
		err := p.Check(raw)
		if ok != (err == nil) {
			t.Errorf("Check(%q) = %v, want ok=%v", raw, err, ok)
		}
		if err != nil && (!errors.Is(err, copyengine.ErrURLRefused) || copyengine.Classify(err) != copyengine.Permanent) {
			t.Errorf("Check(%q) error %v is not a permanent ErrURLRefused", raw, err)
		}
		if err != nil && strings.Contains(err.Error(), "Signature") {
			t.Errorf("error quotes the query: %v", err)
		}
	}
	for _, bad := range [][]string{nil, {""}, {"https://h/path"}, {"http://"}, {"h/x"}} {
		if _, err := copyengine.NewURLPolicy(bad); err == nil {
			t.Errorf("NewURLPolicy(%q) accepted", bad)
		}
	}
}

// A signed URL that redirects to another host is refused, not followed: neither the probe nor a ranged
// GET reaches the other host.
func TestURLPolicyRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere++ }))
	defer other.Close()
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/object", http.StatusFound)
		default:
			w.Header().Set("Content-Range", "bytes 0-0/10")
			w.WriteHeader(http.StatusPartialContent)
			w.Write([]byte("x"))
		}
	}))
	defer src.Close()
	host := strings.TrimPrefix(src.URL, "http://")
	p, err := copyengine.NewURLPolicy([]string{"http://" + host, "http://" + strings.TrimPrefix(other.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Client(nil)
	_, err = copyengine.Probe(context.Background(), c, src.URL+"/away?X-Goog-Signature=secret")
	if !errors.Is(err, copyengine.ErrURLRefused) || copyengine.Classify(err) != copyengine.Permanent || !copyengine.IsSourceFault(err) {
		t.Fatalf("probe through a cross-host redirect: %v (class %v)", err, copyengine.Classify(err))
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error quotes the signature: %v", err)
	}
	rs := copyengine.NewURLSource(c, src.URL+"/away", 10, nil)
	if _, err := rs.OpenRange(context.Background(), 0, 5); !errors.Is(err, copyengine.ErrURLRefused) {
		t.Fatalf("ranged GET through a cross-host redirect: %v", err)
	}
	if elsewhere != 0 {
		t.Errorf("the other host was reached %d times", elsewhere)
	}
	// A redirect on the same host is followed.
	if s, err := copyengine.Probe(context.Background(), c, src.URL+"/here"); err != nil || s.Size != 10 {
		t.Errorf("same-host redirect: %+v %v", s, err)
	}
}

func TestObjectPath(t *testing.T) {
	t.Parallel()
	a, _ := copyengine.ObjectPath("https://storage.googleapis.com/b/dir/f%20x.zip?X-Goog-Date=1&X-Goog-Signature=a")
	b, _ := copyengine.ObjectPath("https://storage.googleapis.com/b/dir/f%20x.zip?X-Goog-Date=2&X-Goog-Signature=b")
	if a != b || a != "/b/dir/f%20x.zip" {
		t.Errorf("paths %q %q", a, b)
	}
	if _, err := copyengine.ObjectPath("https://storage.googleapis.com"); err == nil {
		t.Error("a URL without a path has an object path")
	}
}
