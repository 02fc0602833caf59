package oauthcallback

import (
	"bytes"
	"context"
	"html/template"
	"log/slog"
	"net/http"
)

// pageCSS is the only style of the pages; the CSP admits it by hash, so it must stay static.
const pageCSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5;color:#1f1f1f;background:#fff;margin:0}
main{max-width:40rem;margin:0 auto;padding:2rem 1.25rem}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
ul{padding-left:1.25rem}
code{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.95em}
.button{display:inline-block;font:inherit;font-weight:600;color:#fff;background:#0b57d0;border:0;border-radius:.4rem;padding:.7rem 1.2rem;text-decoration:none;cursor:pointer}
.button:focus-visible{outline:3px solid #1f1f1f;outline-offset:2px}
.note{color:#444}
a{color:#0b57d0}
.lead{font-size:1.1rem}
.round{border-top:1px solid #c4c7c5;margin-top:1.5rem}
.resources{list-style:none;padding:0;margin:0}
.resources li{padding:.75rem 0;border-bottom:1px solid #e3e3e3}
.resources li:last-child{border-bottom:0}
.row{display:flex;flex-wrap:wrap;gap:.25rem 1rem;justify-content:space-between;align-items:baseline}
.state{font-weight:600;border-radius:1rem;padding:.05rem .7rem;font-size:.95rem}
.state-wait{background:#e8eaed;color:#1f1f1f}
.state-work{background:#d3e3fd;color:#041e49}
.state-ok{background:#c4eed0;color:#072711}
.state-bad{background:#ffdad6;color:#410002}
.state-off{background:#f1f3f4;color:#444}
.detail{margin:.25rem 0 0;color:#444}
progress{width:100%;height:.9rem;margin-top:.4rem;accent-color:#0b57d0}
.danger{background:#b3261e}
.actions{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;margin-top:1rem}
.secondary{font-weight:600}
dl.counts{display:grid;grid-template-columns:max-content auto;gap:.25rem 1rem}
dl.counts dt{font-weight:600}
dl.counts dd{margin:0}
@media (prefers-color-scheme:dark){body{color:#e3e3e3;background:#131314}.note,.detail{color:#c4c7c5}.button{background:#a8c7fa;color:#062e6f}
a{color:#a8c7fa}.resources li{border-color:#444746}.round{border-color:#5e5e5e}.danger{background:#ffb4ab;color:#690005}
.state-wait{background:#444746;color:#e3e3e3}.state-work{background:#0842a0;color:#d3e3fd}.state-ok{background:#0f5223;color:#c4eed0}
.state-bad{background:#8c1d18;color:#ffdad6}.state-off{background:#303030;color:#c4c7c5}}
`

const layoutHead = `{{define "head"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
{{with refreshOf .}}<meta http-equiv="refresh" content="{{.}}">
{{end}}<title>{{.Title}}</title>
<style>` + pageCSS + `</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{end}}{{define "foot"}}</main>
</body>
</html>
{{end}}`

var pages = template.Must(template.New("pages").Funcs(template.FuncMap{"refreshOf": refreshOf}).Parse(layoutHead + `
{{define "message"}}{{template "head" .}}
{{range .Lines}}<p>{{.}}</p>
{{end}}{{with .Back}}<p><a class="button" href="{{.}}">Back to the app</a></p>
{{end}}{{template "foot" .}}{{end}}

{{define "start"}}{{template "head" .}}
<p class="lead">The app asks to copy this data from your Google Account into its own storage, for the app account <strong>{{.Account}}</strong>:</p>
<ul>
{{range .Resources}}<li><code>{{.}}</code></li>
{{end}}</ul>
{{with .Since}}<p>Only activity from <time datetime="{{.ISO}}">{{.Text}}</time> on is copied, where Google can limit it by time (activity and history); other data is copied whole.</p>{{end}}
<h2>What happens next</h2>
<ol>
<li>Google shows its own consent page. There you choose which of these to allow, and whether the app gets
<strong>one-time access</strong> (one copy) or <strong>time-based access</strong> (a new copy about once a day, for 30 or 180 days).</li>
<li>Google sends you back here and the export starts. Google prepares each archive, which can take from minutes to a few days; then it is copied into the app's storage and checked.</li>
<li>In this browser you can then see how far it is, and stop the export and delete the copied data at any time.</li>
</ol>
<p>The copy goes to the app account <strong>{{.Account}}</strong>{{if .ShowID}} (<code>{{.User}}</code>){{end}}. If that is not your account, do not continue: close this page.</p>
<p class="note">This link is personal, works once and for a short time only. You can withdraw access at any time in your Google Account.</p>
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<button class="button" type="submit">Continue to Google</button>
</form>
{{template "foot" .}}{{end}}

{{define "done"}}{{template "head" .}}
{{if .Granted}}<p>You allowed <strong>{{.Access}}</strong> access to:</p>
<ul>
{{range .Granted}}<li><code>{{.}}</code></li>
{{end}}</ul>{{end}}
{{if .NotGranted}}<p>You did not allow (these will not be exported):</p>
<ul>
{{range .NotGranted}}<li><code>{{.}}</code></li>
{{end}}</ul>{{end}}
<h2>What happens next</h2>
<p>The export has started. It can take from minutes to a few days; the app will have the data when it is done. You can close this page.</p>
{{if .TimeBased}}<p>With time-based access a new copy is made about once a day until the access ends.</p>{{end}}
{{if .StatusURL}}<p><a class="button" href="{{.StatusURL}}">See how your export is going</a></p>
<p class="note">The status page shows each part of the export as it goes, and lets you stop it and delete the copied data. It opens in this browser only; to come back later, open it from the app.</p>{{end}}
{{if .Remaining}}<h2>More to export</h2>
<p>Google's consent page could not ask for everything at once. These {{len .Remaining}} more need a second consent, which you can give once this export has finished:</p>
<ul>
{{range .Remaining}}<li><code>{{.}}</code></li>
{{end}}</ul>
<p><a class="button" href="{{.RemainingURL}}">Continue with the remaining {{len .Remaining}} resources</a></p>
<p class="note">This link works once, for one hour. Afterwards, ask the app for a new one.</p>{{end}}
{{template "foot" .}}{{end}}

{{define "status"}}{{template "head" .}}
{{if or .Running .Finishing}}<p class="lead" role="status">{{if .Running}}Your export is running.{{else}}Every copy is done; the export is being wrapped up.{{end}}{{if .Refresh}} This page updates itself every {{.Refresh}} seconds.{{end}}</p>
<p class="note">{{if .Paused}}Automatic updates are off. <a href="{{.SelfURL}}">Turn them on again</a>.{{else}}<a href="{{.PauseURL}}">Stop updating this page</a>.{{end}}</p>
{{else if .Next}}<p class="lead">Everything so far is finished. The next copy is made after <time datetime="{{.Next.ISO}}">{{.Next.Text}}</time>.</p>
{{else}}<p class="lead">Your export is finished.{{if .Closed}} The app's access to your Google data has ended.{{end}}</p>{{end}}
{{if eq .Access "time-based"}}<p>You gave <strong>time-based access</strong>: a new copy about once a day{{with .GrantEnds}}, until <time datetime="{{.ISO}}">{{.Text}}</time>{{end}}.</p>
{{else if eq .Access "one-time"}}<p>You gave <strong>one-time access</strong>: one copy of each.</p>{{end}}
{{range .Rounds}}<section class="round" aria-labelledby="round-{{.Number}}">
<h2 id="round-{{.Number}}">{{.Heading}}{{with .Started}}, started <time datetime="{{.ISO}}">{{.Text}}</time>{{end}}</h2>
<p>{{.Summary}}</p>
<ul class="resources">
{{range .Resources}}<li>
<div class="row"><code>{{.Name}}</code> <span class="state state-{{.Class}}">{{.State}}</span></div>
{{if .Progress}}<progress max="{{.Total}}" value="{{.Done}}" aria-label="{{.Name}}: copied">{{.Percent}}%</progress>
{{end}}<p class="detail">{{.Detail}}</p>
</li>
{{end}}</ul>
</section>
{{end}}{{if .Earlier}}<p class="note">{{.Earlier}} earlier {{if eq .Earlier 1}}copy is{{else}}copies are{{end}} not listed.</p>{{end}}
{{if and .Next .Running}}<h2>Next copy</h2>
<p>The next copy is made after <time datetime="{{.Next.ISO}}">{{.Next.Text}}</time>.</p>{{end}}
<section class="round" aria-labelledby="delete">
<h2 id="delete">Stop and delete</h2>
<p>You can stop the export at any time and delete everything the app copied or recorded about it. You will be asked to confirm.</p>
<form method="post" action="{{.Delete}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<button class="button danger" type="submit">Stop and delete my data</button>
</form>
</section>
{{template "foot" .}}{{end}}

{{define "confirmDelete"}}{{template "head" .}}
<p class="lead">If you continue, the app will:</p>
<ul>
<li>stop any export that is still running, and make no further copies;</li>
<li>withdraw its access to your Google data;</li>
<li>delete every copy of your data in its storage, and its records of your exports.</li>
</ul>
<p><strong>This cannot be undone.</strong> Your data in your Google Account is not affected.</p>
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<input type="hidden" name="confirm" value="yes">
<div class="actions"><button class="button danger" type="submit">Yes, stop and delete my data</button>
<a class="secondary" href="{{.BackURL}}">No, keep my data</a></div>
</form>
{{template "foot" .}}{{end}}

{{define "deleted"}}{{template "head" .}}
<p class="lead" role="status">Everything the app held of your exports was deleted.</p>
{{with .Report}}<dl class="counts">
<dt>Exports</dt><dd>{{.Rounds}}</dd>
<dt>Files deleted from storage</dt><dd>{{.Objects}}</dd>
<dt>Records deleted</dt><dd>{{.Documents}}</dd>
</dl>{{end}}
<p>{{.GrantWords}}</p>
{{if .NotCancelled}}<p>Google did not let the app cancel {{.NotCancelled}} export{{if ne .NotCancelled 1}}s{{end}} it was preparing; whatever it prepares is no longer collected.</p>{{end}}
<p>Your data in your Google Account is not affected. You can close this page.</p>
{{template "foot" .}}{{end}}
`))

// refreshOf returns the reload interval of a page (only the status page has one).
func refreshOf(data any) int {
	if p, ok := data.(statusPage); ok {
		return p.Refresh
	}
	return 0
}

// message is a page of a few lines with a status code.
type message struct {
	Status int
	Title  string
	Lines  []string
}

// messagePage is a message with the way back to the app (RETURN_URL), when one is configured.
type messagePage struct {
	message
	Back string
}

var (
	pageNotFound         = message{http.StatusNotFound, "Page not found", []string{"There is nothing here. Start from the app."}}
	pageUnavailable      = message{http.StatusServiceUnavailable, "Please try again", []string{"Something went wrong on our side. Please try again in a minute."}}
	pageLinkExpired      = message{http.StatusForbidden, "This link has expired", []string{"Start links work for a short time only. Go back to the app for a new one. Nothing was stored."}}
	pageSinceInvalid     = message{http.StatusBadRequest, "This link asks for an impossible start date", []string{"The link limits the export to activity since a date that is in the future or not a date at all, so it cannot be used. Go back to the app for a new one. Nothing was stored."}}
	pageLinkInvalid      = message{http.StatusForbidden, "This link is not valid", []string{"The link was changed or is incomplete, so it cannot be used. Go back to the app for a new one. Nothing was stored."}}
	pageRunning          = message{http.StatusConflict, "An export is already running", []string{"An export for your account has not finished yet. You can start another one when it is done. Nothing was changed."}}
	pageStateInvalid     = message{http.StatusBadRequest, "This sign-in link is not valid", []string{"This sign-in link is not valid. Start again from the app. Nothing was stored."}}
	pageStateUsed        = message{http.StatusBadRequest, "This sign-in link cannot be used", []string{"This sign-in link was already used or has expired. Start again from the app."}}
	pageDenied           = message{http.StatusOK, "Nothing was exported", []string{"You did not allow access. Nothing was exported."}}
	pageNoneGranted      = message{http.StatusOK, "Nothing was exported", []string{"You did not allow access to any of the requested data. Nothing was exported."}}
	pageConsentError     = message{http.StatusBadRequest, "Google did not give access", []string{"Google ended the sign-in with an error. Nothing was exported. Start again from the app."}}
	pageCodeRefused      = message{http.StatusBadRequest, "Google did not accept this sign-in", []string{"The sign-in could not be completed (it may have expired or been used already). Nothing was stored. Start again from the app."}}
	pageWrongScopes      = message{http.StatusBadRequest, "This sign-in cannot be used", []string{"Google granted access that this app did not ask for, so the sign-in was refused. Nothing was stored. Start again from the app."}}
	pageGoogleDown       = message{http.StatusBadGateway, "Google could not be reached", []string{"We could not complete the sign-in with Google. Nothing was exported. Please start again from the app in a few minutes."}}
	pageFailedNothing    = message{http.StatusServiceUnavailable, "Please start again", []string{"Something went wrong on our side while recording your permission. Nothing was exported. Please start again from the app in a few minutes."}}
	pageStatusExpired    = message{http.StatusForbidden, "This link has expired", []string{"Status links work for a limited time. Go back to the app for a new one."}}
	pageNoExport         = message{http.StatusOK, "No export to show", []string{"There is no export for you here: none was started, or its data was deleted. To export your data, start from the app."}}
	pageNothingToDelete  = message{http.StatusOK, "Nothing to delete", []string{"There is nothing stored for you here: no export was started, or its data was deleted already. Nothing else needs doing."}}
	pageDeleteFailed     = message{http.StatusServiceUnavailable, "Your data could not be deleted yet", []string{"Something went wrong while deleting your data; part of it may be deleted already. Please go back to the status page and try again in a few minutes. If it keeps failing, contact the app."}}
	pageMethodNotAllowed = message{http.StatusMethodNotAllowed, "Start from the app", []string{"This address is opened by the button of the start page. Go back to the app and open the link it gives you. Nothing was stored."}}
	pageLinkUsed         = message{http.StatusForbidden, "This link was already used", []string{"Each link from the app works once. Go back to the app for a new one. Nothing was changed."}}
	pageUserRefused      = message{http.StatusForbidden, "This link cannot be used", []string{"The app's link names an account ID that cannot be used here, so nothing can be exported for it. Nothing was stored. Please tell the app's support."}}
	pageNoCookie         = message{http.StatusForbidden, "Please allow cookies for this page", []string{"Your browser did not send back the cookie this page set, so the export cannot go on. Allow cookies for this site, then open the link from the app again. Nothing was stored."}}
	pageFormInvalid      = message{http.StatusForbidden, "This form cannot be used", []string{"The form was not sent by this page in this browser. Go back to the app and start again. Nothing was changed."}}
	pageOtherBrowser     = message{http.StatusForbidden, "This sign-in was started in another browser", []string{
		"For your safety, a sign-in can only be finished in the browser where it was started from the app. Nothing was stored and nobody got access to your data.",
		"If you started it, go back to the app and start again in this browser. If someone sent you this link, do not use it."}}
	pageNoSession  = message{http.StatusForbidden, "Open your status page from the app", []string{"The status of an export shows only in the browser where it was opened from the app, for a limited time. Go back to the app and open it from there."}}
	pageNotStarted = message{http.StatusInternalServerError, "Your permission was recorded", []string{"Your permission was recorded, but the export could not be started right away. The operator has been alerted and will start it; you do not need to do anything. You can close this page."}}
)

func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		slog.Error("render page", "page", name, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// show writes a message page with its status code, and the way back to the app when one is configured.
func (h *Handler) show(w http.ResponseWriter, m message) {
	render(w, m.Status, "message", messagePage{m, h.cfg.OAuth.ReturnURL})
}

// unavailable answers a request the function could not serve for a failure of its own (the store, the key
// service): the failure is logged as an error, with what was being done, and the person is asked to try
// again (nothing was spent, so a reload may work).
func (h *Handler) unavailable(ctx context.Context, w http.ResponseWriter, doing string, err error) {
	logger(ctx).Error(doing, "error", err.Error())
	h.show(w, pageUnavailable)
}

type startPage struct {
	Title     string
	Resources []string
	Action    string
	Hidden    map[string]string
	Since     *timeView // the link's since, nil without
	// Account names the app account that receives the data: the link's display name, else its user ID.
	Account string
	User    string
	ShowID  bool // the display name is shown, and the ID beside it
}

type donePage struct {
	Title        string
	Access       string
	TimeBased    bool
	Granted      []string
	NotGranted   []string
	Remaining    []string
	RemainingURL string
	StatusURL    string
}
