package browser

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// shot saves a full-page PNG of the tab as name.png.
func shot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(shotDir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// open navigates the tab and expects an HTTP status.
func open(t *testing.T, tab context.Context, url string, want int64) {
	t.Helper()
	resp, err := chromedp.Run(tab, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	if resp.Status != want {
		t.Fatalf("open %s: HTTP %d, want %d:\n%s", url, resp.Status, want, bodyText(t, tab))
	}
}

// click clicks the element and waits for the page it leads to (after redirects).
func click(t *testing.T, tab context.Context, sel string, want int64) {
	t.Helper()
	resp, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	if resp.Status != want {
		t.Fatalf("click %s: HTTP %d at %s, want %d:\n%s", sel, resp.Status, resp.URL, want, bodyText(t, tab))
	}
}

func bodyText(t *testing.T, tab context.Context) string {
	t.Helper()
	s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return s
}

func expectText(t *testing.T, tab context.Context, texts ...string) {
	t.Helper()
	body := bodyText(t, tab)
	for _, s := range texts {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q:\n%s", s, body)
		}
	}
}

// consent goes from the start page through the fake's consent page: it fills the account field, unticks
// the given resources, picks the access and presses Allow (or Deny), and waits for the return page.
func consent(t *testing.T, tab context.Context, user string, resources, untick []string, access string, deny bool, shots string) {
	t.Helper()
	toConsent(t, tab, user, resources, shots)
	fillConsent(t, tab, user, untick, access, deny, shots)
}

// toConsent opens a start link and presses Continue, up to Google's (the fake's) consent page.
func toConsent(t *testing.T, tab context.Context, user string, resources []string, shots string) {
	t.Helper()
	open(t, tab, st.StartLink(user, resources), 200)
	expectText(t, tab, "Export your Google data to the app", "What happens next", "Continue to Google", "for the app account "+user)
	if shots != "" {
		shot(t, tab, shots+"-1-start")
	}
	click(t, tab, "form button[type=submit]", 200)
	expectText(t, tab, "wants to access your Google Account")
}

// fillConsent fills the consent page and presses Allow or Deny, waiting for the page the callback shows.
func fillConsent(t *testing.T, tab context.Context, user string, untick []string, access string, deny bool, shots string, want ...int64) {
	t.Helper()
	acts := []chromedp.Action[chromedp.Void]{
		// Clear the field, then type as a person does.
		chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name=account]').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`input[name=account]`), user+"@example.com"),
	}
	for _, r := range untick {
		acts = append(acts, chromedp.Click(chromedp.CSS(`input[name=resource][value="`+r+`"]`), chromedp.NodeVisible))
	}
	acts = append(acts, chromedp.Click(chromedp.CSS(`input[name=access][value="`+access+`"]`), chromedp.NodeVisible))
	if err := chromedp.Do(tab, acts...); err != nil {
		t.Fatalf("fill the consent form: %v", err)
	}
	for _, r := range untick {
		if on, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.querySelector('input[name=resource][value="`+r+`"]').checked`)); err != nil || on {
			t.Fatalf("%s still ticked (%v)", r, err)
		}
	}
	if shots != "" {
		shot(t, tab, shots+"-2-consent")
	}
	button := `button[value=allow]`
	if deny {
		button = `button[value=deny]`
	}
	status := int64(200)
	if len(want) > 0 {
		status = want[0]
	}
	click(t, tab, button, status)
}

// refreshing reports whether the page carries a meta refresh (the status page while work runs).
func refreshing(tab context.Context) (bool, error) {
	return chromedp.Run(tab, chromedp.Evaluate[bool](`document.querySelector('meta[http-equiv="refresh"]') !== null`))
}

// watchStatus follows the status page as it reloads itself, saving a screenshot the first time each of
// the states in shots is seen, until the page stops reloading and shows done.
func watchStatus(t *testing.T, tab context.Context, done string, shots map[string]string) string {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		body, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("main")))
		if err != nil { // the page is reloading: try again
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for word, name := range shots {
			if !seen[word] && strings.Contains(body, word) {
				seen[word] = true
				shot(t, tab, name)
			}
		}
		r, err := refreshing(tab)
		if err == nil && !r && strings.Contains(body, done) {
			return body
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the status page did not reach %q:\n%s", done, bodyText(t, tab))
	return ""
}

// TestJourney: start page, consent with one resource unticked and time-based access, the return page,
// its status link, and the status page until the first copy is done and the next one is announced.
func TestJourney(t *testing.T) {
	ctx, tab := begin(t)
	const user = "ada"
	consent(t, tab, user, scenario.Three(), []string{scenario.YouTube}, "time-based-30d", false, "01-journey")
	expectText(t, tab, "Your export has started", "time-based", scenario.Search, scenario.Subscriptions, "You did not allow", scenario.YouTube, "See how your export is going")
	shot(t, tab, "01-journey-3-return")

	// The return page holds no signed link: its status link works in this browser only (the session).
	if html, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); err != nil || strings.Contains(html, "sig=") {
		t.Errorf("the return page holds a signed link (%v)", err)
	}
	click(t, tab, `a[href$="/status"]`, 200)
	if r, err := refreshing(tab); err != nil || !r {
		t.Errorf("the status page of a running export does not reload itself (%v)", err)
	}
	body := watchStatus(t, tab, "Everything so far is finished", map[string]string{
		"Exporting":    "01-journey-4-status-exporting",
		"Transferring": "01-journey-5-status-transferring",
	})
	shot(t, tab, "01-journey-6-status-done")
	for _, s := range []string{"Done", "Not granted", "The next copy is made after", "time-based access", "Stop and delete my data"} {
		if !strings.Contains(body, s) {
			t.Errorf("final status page lacks %q:\n%s", s, body)
		}
	}
	// The page said what the store holds.
	list, err := st.Store().ListResources(ctx, store.RoundID(user, 1))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.ResourceState{}
	for _, r := range list {
		got[r.Name] = r.State
	}
	if got[scenario.Search] != store.ResDone || got[scenario.Subscriptions] != store.ResDone || got[scenario.YouTube] != store.ResNotGranted {
		t.Errorf("round 1 resources %v", got)
	}
}

// TestDeniedConsent: Deny on the consent page stores nothing.
func TestDeniedConsent(t *testing.T) {
	ctx, tab := begin(t)
	const user = "dan"
	consent(t, tab, user, scenario.Three(), nil, "one-time", true, "")
	expectText(t, tab, "Nothing was exported", "You did not allow access")
	shot(t, tab, "02-denied")
	expectNothingStored(t, ctx, user)
}

// TestDelete: a person stops and deletes a running export from the status page.
func TestDelete(t *testing.T) {
	ctx, tab := begin(t)
	const user = "eve"
	consent(t, tab, user, scenario.Three(), nil, "one-time", false, "")
	click(t, tab, `a[href$="/status"]`, 200)
	// Wait until some data is in the bucket, so there is something to delete.
	watchUntil(t, tab, "Transferring")

	click(t, tab, `form[action$="/delete"] button`, 200)
	expectText(t, tab, "Stop and delete your data?", "This cannot be undone", "No, keep my data")
	shot(t, tab, "03-delete-1-confirm")
	click(t, tab, `button.danger`, 200)
	expectText(t, tab, "Your data was deleted", "Files deleted from storage", "withdrawn")
	shot(t, tab, "03-delete-2-deleted")

	// Messages in flight when the data was deleted must not bring anything back.
	deadline := time.Now().Add(30 * time.Second)
	for !nothingStored(t, ctx, user) {
		if time.Now().After(deadline) {
			expectNothingStored(t, ctx, user)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	expectNothingStored(t, ctx, user)

	// A status link from the app now says so politely.
	open(t, tab, st.StatusLink(user, 5*time.Minute), 200)
	expectText(t, tab, "No export to show")
	shot(t, tab, "03-delete-3-status-after")
}

// TestForwardedConsent is the attacker's view: Mallory opens her own start link and continues to
// Google's consent page, then sends that URL to a victim, who opens it in another browser (a separate
// browser context: its own cookies) and allows it. The callback refuses it, and nothing is stored or
// exported; Mallory's browser cannot finish it afterwards either. Mallory's start link, used again in
// the victim's browser, is refused too.
func TestForwardedConsent(t *testing.T) {
	ctx, mallory := begin(t)
	const user = "mallory"
	link := st.StartLink(user, scenario.Three())
	open(t, mallory, link, 200)
	expectText(t, mallory, "for the app account mallory")
	click(t, mallory, "form button[type=submit]", 200)
	expectText(t, mallory, "wants to access your Google Account")
	consentURL, err := chromedp.Run(mallory, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}

	victim, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	defer cancel()
	victim, cancelTimeout := context.WithTimeout(victim, 2*time.Minute)
	defer cancelTimeout()
	open(t, victim, consentURL, 200)
	fillConsent(t, victim, "victim", nil, "one-time", false, "", 403)
	expectText(t, victim, "This sign-in was started in another browser", "nobody got access")
	shot(t, victim, "04-forwarded-consent-refused")
	victimURL, err := chromedp.Run(victim, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	open(t, victim, link, 403)
	expectText(t, victim, "This link was already used")

	// The callback URL the victim's browser was sent to, in Mallory's browser: the state is spent.
	open(t, mallory, victimURL, 400)
	expectText(t, mallory, "already used or has expired")
	time.Sleep(2 * time.Second)
	expectNothingStored(t, ctx, user)
	if jobs := st.Fake.Jobs("victim@example.com"); len(jobs) != 0 {
		t.Errorf("the fake has %d jobs of the victim's account", len(jobs))
	}
}

// watchUntil reloads nothing itself: it waits while the status page reloads until text shows.
func watchUntil(t *testing.T, tab context.Context, text string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if body, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("main"))); err == nil && strings.Contains(body, text) {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("the status page never showed %q:\n%s", text, bodyText(t, tab))
}

// nothingStored reports whether Firestore and the bucket hold nothing of user.
func nothingStored(t *testing.T, ctx context.Context, user string) bool {
	t.Helper()
	left, err := scenario.Leftovers(ctx, st.View(), user)
	if err != nil {
		t.Fatal(err)
	}
	return len(left.Paths) == 0
}

func expectNothingStored(t *testing.T, ctx context.Context, user string) {
	t.Helper()
	scenario.ExpectNothingOf(t, ctx, st.View(), user, false)
}
