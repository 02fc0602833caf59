package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/html"
)

// Consent is what a person does on the Google consent page.
type Consent struct {
	// Account is the Google account that signs in (the fake's user).
	Account string
	// Tick lists the resources left ticked; nil keeps every requested one.
	Tick []string
	// Access is one-time, time-based-30d or time-based-180d.
	Access string
	// Deny presses Deny instead of Allow.
	Deny bool
}

// Page is an HTML page the browser ended on.
type Page struct {
	URL    string
	Status int
	Body   string
}

// Browser is an HTTP client with its own cookie jar that follows no redirect by itself: one person's
// browser, for the flows that need the pipeline's cookies (the consent is bound to the browser that
// opened the start link; the status page shows only in the browser that holds the session).
func Browser() *http.Client {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// SignIn walks a person through the flow as a browser does, without JavaScript, in a new browser: the
// signed start link (start page, which sets the browser cookie), its form to /authorize, the redirect to
// the consent page, the consent form, and the redirect back to the callback. It returns the page the
// callback shows.
func SignIn(ctx context.Context, startURL string, c Consent) (*Page, error) {
	client := Browser()
	consentURL, err := Authorize(ctx, client, startURL)
	if err != nil {
		return nil, err
	}
	return GiveConsent(ctx, client, consentURL, c)
}

// Authorize opens the start link in the browser and presses Continue; it returns the consent URL.
func Authorize(ctx context.Context, client *http.Client, startURL string) (string, error) {
	page, err := get(ctx, client, startURL)
	if err != nil {
		return "", err
	}
	if page.Status != http.StatusOK {
		return "", fmt.Errorf("start page answered %d: %.300s", page.Status, page.Body)
	}
	start, err := firstForm(page)
	if err != nil {
		return "", fmt.Errorf("start page: %w", err)
	}
	return submit(ctx, client, start)
}

// GiveConsent opens a consent URL in the browser, fills Google's consent page, and follows the redirect to
// the callback; it returns the page the callback shows.
func GiveConsent(ctx context.Context, client *http.Client, consentURL string, c Consent) (*Page, error) {
	page, err := get(ctx, client, consentURL)
	if err != nil {
		return nil, err
	}
	if page.Status != http.StatusOK {
		return page, fmt.Errorf("consent page answered %d: %s", page.Status, page.Body)
	}
	form, err := firstForm(page)
	if err != nil {
		return nil, fmt.Errorf("consent page: %w", err)
	}
	form.values.Set("account", c.Account)
	if c.Access != "" {
		form.values.Set("access", c.Access)
	}
	if c.Tick != nil {
		form.values["resource"] = slices.DeleteFunc(form.values["resource"], func(r string) bool { return !slices.Contains(c.Tick, r) })
	}
	form.values.Set("action", "allow")
	if c.Deny {
		form.values.Set("action", "deny")
	}
	callbackURL, err := submit(ctx, client, form)
	if err != nil {
		return nil, err
	}
	return get(ctx, client, callbackURL)
}

func get(ctx context.Context, client *http.Client, u string) (*Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return do(client, req)
}

func do(client *http.Client, req *http.Request) (*Page, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	p := &Page{URL: req.URL.String(), Status: resp.StatusCode, Body: string(b)}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		next, err := req.URL.Parse(loc)
		if err != nil {
			return nil, err
		}
		p.URL = next.String()
	}
	return p, nil
}

type form struct {
	action string
	values url.Values
}

// firstForm reads the first form of a page: its absolute action and the values a browser would send
// (hidden and text inputs, checked boxes and radios, and the first submit button's name left out).
func firstForm(p *Page) (*form, error) {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(p.URL)
	if err != nil {
		return nil, err
	}
	var f *form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch {
			case n.Data == "form" && f == nil:
				action, _ := base.Parse(attr(n, "action"))
				f = &form{action: action.String(), values: url.Values{}}
			case n.Data == "input" && f != nil:
				name, typ := attr(n, "name"), strings.ToLower(attr(n, "type"))
				_, checked := attrOK(n, "checked")
				switch {
				case name == "":
				case typ == "checkbox" || typ == "radio":
					if checked {
						f.values.Add(name, attr(n, "value"))
					}
				case typ == "submit" || typ == "button":
				default:
					f.values.Add(name, attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if f == nil {
		return nil, fmt.Errorf("no form on %s (status %d)", base.Path, p.Status)
	}
	return f, nil
}

// submit posts a form and returns where the answer redirects to.
func submit(ctx context.Context, client *http.Client, f *form) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.action, strings.NewReader(f.values.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	p, err := do(client, req)
	if err != nil {
		return "", err
	}
	if p.URL == f.action {
		return "", fmt.Errorf("form %s answered %d without a redirect: %.300s", req.URL.Path, p.Status, p.Body)
	}
	return p.URL, nil
}

func attrOK(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func attr(n *html.Node, key string) string { v, _ := attrOK(n, key); return v }
