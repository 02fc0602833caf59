package oauthcallback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/startlink"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// refreshSeconds is how often the status page reloads itself while work runs. The page refreshes with
// <meta http-equiv="refresh">, not a script: the CSP stays default-src 'none' (no script hash to keep in
// step), it works with JavaScript off, and the page is rendered whole by the server anyway. The page
// offers a link that stops the reloading (WCAG 2.2.1) and stops by itself once nothing is running.
const refreshSeconds = 5

// shownRounds is how many rounds the status page lists (newest first); older ones are counted.
const shownRounds = 5

// paramRefresh=off on the status page turns the reloading off; it is not signed, and only changes that.
const paramRefresh = "refresh"

// verifyStatus checks a status link; on failure it writes the refusal page and returns false.
func (h *Handler) verifyStatus(w http.ResponseWriter, r *http.Request, v url.Values) (startlink.Link, bool) {
	return h.verified(w, r, v, startlink.PurposeStatus, h.cfg.OAuth.StatusLinkTTL, pageStatusExpired)
}

// hasLink reports whether a query carries any parameter of a signed link.
func hasLink(q url.Values) bool {
	for _, p := range startlink.Params {
		if q.Has(p) {
			return true
		}
	}
	return false
}

type statusPage struct {
	Title     string
	Refresh   int // seconds; 0: the page does not reload
	Running   bool
	Finishing bool // every resource finished, the round's wrap-up not recorded yet
	Paused    bool // reloading turned off by the person
	Access    string
	Rounds    []roundView
	Earlier   int // rounds not listed
	Next      *timeView
	GrantEnds *timeView
	Closed    bool
	SelfURL   string
	PauseURL  string
	Delete    string
	Hidden    map[string]string // the delete form's CSRF token
}

type timeView struct{ ISO, Text string }

func newTime(t time.Time) *timeView {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &timeView{ISO: t.Format(time.RFC3339), Text: t.Format("Monday 2 January 2006, 15:04 UTC")}
}

type roundView struct {
	ID        string
	Number    int
	Heading   string
	Started   *timeView
	Summary   string
	Resources []resourceView
}

type resourceView struct {
	Name   string
	State  string // words shown
	Class  string // state-* class for colour (the words carry the meaning)
	Detail string
	// Transfer progress (only while transferring).
	Progress  bool
	Done      int64
	Total     int64
	DoneText  string
	TotalText string
	Percent   int
}

// status shows one person's rounds to the browser holding their status session. A signed status link
// (from the app) is spent on first use and exchanged for that session, then the browser is sent to
// /status without the signature: a link copied from a request log is dead.
func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if hasLink(q) {
		h.exchangeStatusLink(w, r, q)
		return
	}
	user, browser, ok := h.session(r)
	if !ok {
		h.show(w, pageNoSession)
		return
	}
	ctx := logging.With(r.Context(), "user", user)
	page, found := h.storedStatus(ctx, w, user, pageNoExport)
	if !found {
		return
	}
	self := h.base + "/status"
	page.SelfURL, page.PauseURL = self, self+"?"+paramRefresh+"=off"
	page.Delete, page.Hidden = h.base+"/delete", map[string]string{fieldCSRF: h.csrfToken("delete:"+user, browser)}
	page.Paused = q.Get(paramRefresh) == "off"
	if (page.Running || page.Finishing) && !page.Paused {
		page.Refresh = refreshSeconds
	}
	render(w, http.StatusOK, "status", page)
}

// exchangeStatusLink spends a status link and opens the status session in this browser.
func (h *Handler) exchangeStatusLink(w http.ResponseWriter, r *http.Request, q url.Values) {
	l, ok := h.verifyStatus(w, r, q)
	if !ok {
		return
	}
	ctx := logging.With(r.Context(), "user", l.User)
	err := h.env.Store.UseLink(ctx, startlink.ID(startlink.PurposeStatus, q), store.UsedLink{Purpose: startlink.PurposeStatus, ExpiresAt: l.Expires})
	if !h.spent(ctx, w, startlink.PurposeStatus, "record used status link", err) {
		return
	}
	browser := h.ensureBrowser(w, r)
	h.startSession(w, l.User, browser)
	logger(ctx).Info("status session opened", "key", l.KeyID)
	http.Redirect(w, r, h.base+"/status", http.StatusSeeOther)
}

// storedStatus reads the user's status page and reports whether it found one. Without one it has
// answered the request: with the page none when nothing is stored, the unavailable page when the store
// failed.
func (h *Handler) storedStatus(ctx context.Context, w http.ResponseWriter, user string, none message) (statusPage, bool) {
	page, found, err := h.statusOf(ctx, user)
	if err != nil {
		h.unavailable(ctx, w, "read status", err)
		return page, false
	}
	if !found {
		h.show(w, none)
	}
	return page, found
}

// statusOf reads the user's grant and rounds into a page; found is false when nothing is stored.
func (h *Handler) statusOf(ctx context.Context, user string) (statusPage, bool, error) {
	st := h.env.Store
	p := statusPage{Title: "Your export"}
	u, err := st.GetUser(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		u = nil
	} else if err != nil {
		return p, false, err
	}
	rounds, err := st.UserRounds(ctx, user)
	if err != nil {
		return p, false, err
	}
	if u == nil && len(rounds) == 0 {
		return p, false, nil
	}
	if u != nil {
		p.Access = u.Access
		p.Closed = u.State != "active"
		if u.Access == store.AccessTimeBased && !p.Closed && !u.GrantStart.IsZero() {
			p.GrantEnds = newTime(u.GrantStart.Add(h.cfg.Export.TimeBasedHorizon))
		}
	}
	var listed []store.Round
	for _, rd := range rounds {
		if rd.State == store.RoundScheduled {
			if p.Next == nil || rd.NotBefore.Before(parseISO(p.Next.ISO)) {
				p.Next = newTime(rd.NotBefore)
			}
			continue
		}
		listed = append(listed, rd)
	}
	if p.Next == nil && !p.Closed && len(listed) > 0 && !listed[0].NextRoundAt.IsZero() {
		p.Next = newTime(listed[0].NextRoundAt)
	}
	if len(listed) > shownRounds {
		p.Earlier = len(listed) - shownRounds
		listed = listed[:shownRounds]
	}
	for _, rd := range listed {
		rv, running, err := h.roundOf(ctx, rd)
		if err != nil {
			return p, false, err
		}
		// A round whose resources are all finished but that is not closed is being wrapped up (marked
		// complete, then the grant reset or the next round scheduled): the page keeps reloading until that is
		// recorded too, so it ends on the final state and never stops on a "finished" that is not final.
		p.Finishing = p.Finishing || !running && rd.State != store.RoundClosed
		p.Running = p.Running || running
		p.Rounds = append(p.Rounds, rv)
	}
	return p, true, nil
}

func parseISO(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }

// roundOf describes one round; running is true while one of its resources is not finished.
func (h *Handler) roundOf(ctx context.Context, rd store.Round) (roundView, bool, error) {
	rv := roundView{ID: rd.ID, Number: rd.Number, Started: newTime(rd.CreatedAt)}
	rv.Heading = "Export"
	if rd.Access == store.AccessTimeBased {
		rv.Heading = fmt.Sprintf("Export %d", rd.Number)
	}
	list, err := h.env.Store.ListResources(ctx, rd.ID)
	if err != nil {
		return rv, false, err
	}
	running, done, failed := rd.State == store.RoundExporting && len(list) == 0, 0, 0
	for _, res := range list {
		v := resourceView{Name: res.Name}
		switch res.State {
		case store.ResPending, store.ResInitiating:
			v.State, v.Class, v.Detail = "Waiting", "wait", "Waiting for its turn to be asked from Google."
		case store.ResCooldown:
			v.State, v.Class, v.Detail = "Waiting", "wait", "Google asked to wait before the next copy."
			if t := newTime(res.NotBefore); t != nil {
				v.Detail = "Google asked to wait before the next copy; it starts after " + t.Text + "."
			}
		case store.ResExporting:
			v.State, v.Class, v.Detail = "Exporting", "work", "Google is preparing the archive. This can take from minutes to a few days."
		case store.ResRetrying:
			v.State, v.Class, v.Detail = "Exporting", "work", "Google had a problem preparing the archive and is trying again."
		case store.ResTransferring:
			v.State, v.Class = "Transferring", "work"
			pr, err := h.env.Store.TransferProgress(ctx, rd.ID, res.Name)
			if err != nil {
				return rv, false, err
			}
			v.Progress, v.Done, v.Total = true, pr.BytesDone, max(pr.Bytes, 1)
			v.DoneText, v.TotalText = humanBytes(pr.BytesDone), humanBytes(pr.Bytes)
			v.Percent = int(pr.BytesDone * 100 / v.Total)
			v.Detail = fmt.Sprintf("Copying %s into the app's storage: %s of %s (%d%%).", files(pr.Files), v.DoneText, v.TotalText, v.Percent)
		case store.ResDone:
			v.State, v.Class = "Done", "ok"
			v.Detail = fmt.Sprintf("%s, %s, copied and checked.", strings.ToUpper(files(res.Objects)[:1])+files(res.Objects)[1:], humanBytes(res.Bytes))
			if r := rangeText(res); r != "" {
				v.Detail += " " + r
			}
			done++
		case store.ResNotGranted:
			v.State, v.Class, v.Detail = "Not granted", "off", "You did not allow this on Google's consent page, so it was not exported."
		case store.ResExhausted:
			v.State, v.Class, v.Detail = "Not exported", "off", plainReason(res.Reason, "Google allows no more copies of this data with this permission.")
			failed++
		case store.ResCancelled:
			v.State, v.Class, v.Detail = "Cancelled", "off", plainReason(res.Reason, "The export was cancelled.")
			failed++
		default: // failed, or a state this page does not know
			v.State, v.Class, v.Detail = "Failed", "bad", plainReason(res.Reason, "The export of this data did not succeed.")
			failed++
		}
		if !store.Terminal(res.State) {
			running = true
		}
		rv.Resources = append(rv.Resources, v)
	}
	switch {
	case running:
		rv.Summary = "In progress."
	case failed == 0:
		rv.Summary = "Finished: everything you allowed was copied."
	case done == 0:
		rv.Summary = "Finished, but nothing could be copied."
	default:
		rv.Summary = "Finished, with problems: see below."
	}
	return rv, running, nil
}

// rangeText says which span of activity an export holds ("" when the export time is unknown).
func rangeText(res store.Resource) string {
	end := newTime(res.ExportTime)
	if end == nil {
		return ""
	}
	switch {
	case !res.StartTime.IsZero():
		return "Activity from " + newTime(res.StartTime).Text + " to " + end.Text + "."
	case res.TimeFilter == store.TimeFilterUnsupported:
		return "Activity from the beginning to " + end.Text + " (Google cannot limit this data to new activity, so every copy holds all of it)."
	}
	return "Activity from the beginning to " + end.Text + "."
}

// plainReason keeps the plain first sentence of a recorded reason: the steps record sentences for people,
// sometimes followed by ": " and a technical detail, which the page leaves out.
func plainReason(reason, fallback string) string {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return fallback
	}
	if i := strings.Index(reason, ": "); i > 0 {
		reason = reason[:i]
	}
	reason = strings.ToUpper(reason[:1]) + reason[1:]
	if !strings.HasSuffix(reason, ".") {
		reason += "."
	}
	return reason
}

func files(n int) string {
	if n == 1 {
		return "one file"
	}
	return fmt.Sprintf("%d files", n)
}

// humanBytes writes a size the way people read it (decimal units).
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, u := float64(n), ""
	for _, x := range []string{"kB", "MB", "GB", "TB"} {
		v /= unit
		u = x
		if v < unit {
			break
		}
	}
	return fmt.Sprintf("%.1f %s", v, u)
}
