package oauthcallback

import (
	"bytes"
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
code{font-size:.95em}
.button{display:inline-block;font:inherit;font-weight:600;color:#fff;background:#0b57d0;border:0;border-radius:.4rem;padding:.7rem 1.2rem;text-decoration:none;cursor:pointer}
.button:focus-visible{outline:3px solid #1f1f1f;outline-offset:2px}
.note{color:#444}
@media (prefers-color-scheme:dark){body{color:#e3e3e3;background:#131314}.note{color:#c4c7c5}.button{background:#a8c7fa;color:#062e6f}}
`

const layoutHead = `{{define "head"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>` + pageCSS + `</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{end}}{{define "foot"}}</main>
</body>
</html>
{{end}}`

var pages = template.Must(template.New("pages").Parse(layoutHead + `
{{define "message"}}{{template "head" .}}
{{range .Lines}}<p>{{.}}</p>
{{end}}{{template "foot" .}}{{end}}

{{define "start"}}{{template "head" .}}
<p>The app asks to export a copy of this data from your Google Account into its storage:</p>
<ul>
{{range .Resources}}<li><code>{{.}}</code></li>
{{end}}</ul>
<h2>What happens next</h2>
<ol>
<li>Google shows its own consent page. There you choose which of these to allow, and whether the app gets
<strong>one-time access</strong> (one copy) or <strong>time-based access</strong> (a copy every day or so, for 30 or 180 days).</li>
<li>Google sends you back here, and the export starts. It can take from minutes to a few days; the app will have the data when it is done.</li>
</ol>
<p class="note">This link is personal and works for a short time only. You can withdraw access at any time in your Google Account.</p>
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
{{if .Remaining}}<h2>More to export</h2>
<p>Google's consent page could not ask for everything at once. These {{len .Remaining}} more need a second consent, which you can give once this export has finished:</p>
<ul>
{{range .Remaining}}<li><code>{{.}}</code></li>
{{end}}</ul>
<p><a class="button" href="{{.RemainingURL}}">Continue with the remaining {{len .Remaining}} resources</a></p>
<p class="note">This link works for one hour. Afterwards, ask the app for a new one.</p>{{end}}
{{template "foot" .}}{{end}}
`))

// message is a page of a few lines with a status code.
type message struct {
	Status int
	Title  string
	Lines  []string
}

var (
	pageNotFound      = message{http.StatusNotFound, "Page not found", []string{"There is nothing here. Start from the app."}}
	pageUnavailable   = message{http.StatusServiceUnavailable, "Please try again", []string{"Something went wrong on our side. Please try again in a minute."}}
	pageLinkExpired   = message{http.StatusForbidden, "This link has expired", []string{"Start links work for a short time only. Go back to the app for a new one. Nothing was stored."}}
	pageLinkInvalid   = message{http.StatusForbidden, "This link is not valid", []string{"The link was changed or is incomplete, so it cannot be used. Go back to the app for a new one. Nothing was stored."}}
	pageRunning       = message{http.StatusConflict, "An export is already running", []string{"An export for your account has not finished yet. You can start another one when it is done. Nothing was changed."}}
	pageStateInvalid  = message{http.StatusBadRequest, "This sign-in link is not valid", []string{"This sign-in link is not valid. Start again from the app. Nothing was stored."}}
	pageStateUsed     = message{http.StatusBadRequest, "This sign-in link cannot be used", []string{"This sign-in link was already used or has expired. Start again from the app."}}
	pageDenied        = message{http.StatusOK, "Nothing was exported", []string{"You did not allow access. Nothing was exported."}}
	pageNoneGranted   = message{http.StatusOK, "Nothing was exported", []string{"You did not allow access to any of the requested data. Nothing was exported."}}
	pageConsentError  = message{http.StatusBadRequest, "Google did not give access", []string{"Google ended the sign-in with an error. Nothing was exported. Start again from the app."}}
	pageCodeRefused   = message{http.StatusBadRequest, "Google did not accept this sign-in", []string{"The sign-in could not be completed (it may have expired or been used already). Nothing was stored. Start again from the app."}}
	pageWrongScopes   = message{http.StatusBadRequest, "This sign-in cannot be used", []string{"Google granted access that this app did not ask for, so the sign-in was refused. Nothing was stored. Start again from the app."}}
	pageGoogleDown    = message{http.StatusBadGateway, "Google could not be reached", []string{"We could not complete the sign-in with Google. Nothing was exported. Please start again from the app in a few minutes."}}
	pageFailedNothing = message{http.StatusServiceUnavailable, "Please start again", []string{"Something went wrong on our side while recording your permission. Nothing was exported. Please start again from the app in a few minutes."}}
	pageNotStarted    = message{http.StatusInternalServerError, "Your permission was recorded", []string{"Your permission was recorded, but the export could not be started right away. The operator has been alerted and will start it; you do not need to do anything. You can close this page."}}
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

// show writes a message page with its status code.
func show(w http.ResponseWriter, m message) { render(w, m.Status, "message", m) }

type startPage struct {
	Title     string
	Resources []string
	Action    string
	Hidden    map[string]string
}

type donePage struct {
	Title        string
	Access       string
	TimeBased    bool
	Granted      []string
	NotGranted   []string
	Remaining    []string
	RemainingURL string
}
