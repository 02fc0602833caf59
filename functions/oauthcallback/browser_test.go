package oauthcallback

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
)

// browser is one person's browser in front of the handler: it keeps the cookies the pages set (a real
// cookie jar, so Secure, Path and expiry apply) and sends them back, as Chromium does.
type browser struct {
	f   *fixture
	jar *cookiejar.Jar
}

func (f *fixture) newBrowser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &browser{f: f, jar: jar}
}

// do serves one request with the browser's cookies and keeps the cookies of the answer.
func (b *browser) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	b.f.t.Helper()
	u, err := url.Parse(b.f.publicURL() + target)
	if err != nil {
		b.f.t.Fatal(err)
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range b.jar.Cookies(u) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.f.h.ServeHTTP(rec, req)
	b.jar.SetCookies(u, rec.Result().Cookies())
	return rec
}

// cookies returns the cookies the browser would send to the function.
func (b *browser) cookies() []*http.Cookie {
	u, _ := url.Parse(b.f.publicURL() + "/")
	return b.jar.Cookies(u)
}

var (
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// form returns the path and the hidden fields of the first form of a page.
func (b *browser) form(page string) (string, url.Values) {
	b.f.t.Helper()
	m := formAction.FindStringSubmatch(page)
	if m == nil {
		b.f.t.Fatalf("no form on the page:\n%s", page)
	}
	action := strings.TrimPrefix(html.UnescapeString(m[1]), b.f.publicURL())
	v := url.Values{}
	for _, f := range hiddenField.FindAllStringSubmatch(page[strings.Index(page, m[0]):], -1) {
		v.Add(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	return action, v
}

// open loads the start page of a link and returns its form.
func (b *browser) open(link url.Values) (string, url.Values) {
	b.f.t.Helper()
	rec := b.do(http.MethodGet, "/start?"+link.Encode(), nil)
	if rec.Code != http.StatusOK {
		b.f.t.Fatalf("start page: %d %s", rec.Code, rec.Body)
	}
	return b.form(rec.Body.String())
}

// authorize opens the start page of a link, presses Continue, and returns the consent URL.
func (b *browser) authorize(link url.Values) *url.URL {
	b.f.t.Helper()
	action, v := b.open(link)
	rec := b.do(http.MethodPost, action, v)
	if rec.Code != http.StatusSeeOther {
		b.f.t.Fatalf("authorize: %d %s", rec.Code, rec.Body)
	}
	u, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		b.f.t.Fatal(err)
	}
	return u
}

func urlCopy(v url.Values) (url.Values, error) { return url.ParseQuery(v.Encode()) }
