package fakeportability

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
)

// Domains of the ErrorInfo details, as Google sends them.
const (
	domainPortability = "dataportability.googleapis.com"
	domainGoogleAPIs  = "googleapis.com"
)

// apiError is a google.rpc.Status answer. With a reason it carries one google.rpc.ErrorInfo detail, which
// github.com/googleapis/gax-go/v2/apierror exposes as Reason() and Metadata().
type apiError struct {
	code     int    // HTTP status
	status   string // google.rpc.Code name
	message  string
	reason   string // ErrorInfo.reason; empty: no detail
	domain   string // ErrorInfo.domain; default dataportability.googleapis.com
	metadata map[string]string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.code, e.status, e.message) }

func errInvalidArgument(format string, args ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, status: "INVALID_ARGUMENT", message: fmt.Sprintf(format, args...)}
}

func errFailedPrecondition(reason, format string, args ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, status: "FAILED_PRECONDITION", message: fmt.Sprintf(format, args...), reason: reason}
}

func errNotFound(format string, args ...any) *apiError {
	return &apiError{code: http.StatusNotFound, status: "NOT_FOUND", message: fmt.Sprintf(format, args...)}
}

func errPermissionDenied() *apiError {
	return &apiError{code: http.StatusForbidden, status: "PERMISSION_DENIED",
		message: "The requested resources are not authorized by the OAuth token."}
}

func errUnauthenticated(reason string) *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "UNAUTHENTICATED",
		message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
		reason:  reason, domain: domainGoogleAPIs}
}

// injectedStatus is the canonical status Google APIs pair with each HTTP code a status fault can answer
// (google.rpc.Code's HTTP mapping); a code not listed is UNKNOWN.
var injectedStatus = map[int]string{
	http.StatusTooManyRequests:     "RESOURCE_EXHAUSTED",
	http.StatusServiceUnavailable:  "UNAVAILABLE",
	http.StatusInternalServerError: "INTERNAL",
	http.StatusGatewayTimeout:      "DEADLINE_EXCEEDED",
	http.StatusBadRequest:          "INVALID_ARGUMENT",
	http.StatusForbidden:           "PERMISSION_DENIED",
	http.StatusUnauthorized:        "UNAUTHENTICATED",
	http.StatusNotFound:            "NOT_FOUND",
	http.StatusConflict:            "ALREADY_EXISTS",
}

// errInjected is the answer of a status fault (a burst of 429/500/503...).
func errInjected(code int) *apiError {
	e := &apiError{code: code, message: fmt.Sprintf("injected fault: HTTP %d", code), status: "UNKNOWN"}
	if s, ok := injectedStatus[code]; ok {
		e.status = s
	}
	if code == http.StatusTooManyRequests {
		e.reason, e.domain = "RATE_LIMIT_EXCEEDED", domainGoogleAPIs
	}
	return e
}

type errorInfoJSON struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type statusJSON struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Status  string          `json:"status"`
	Details []errorInfoJSON `json:"details,omitempty"`
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	s := statusJSON{Code: e.code, Message: e.message, Status: e.status}
	if e.reason != "" {
		domain := e.domain
		if domain == "" {
			domain = domainPortability
		}
		s.Details = []errorInfoJSON{{Type: "type.googleapis.com/google.rpc.ErrorInfo", Reason: e.reason, Domain: domain, Metadata: e.metadata}}
	}
	if e.code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
	}
	writeJSON(w, e.code, map[string]statusJSON{"error": s})
}

// answer ends an API call: its error e when there is one, else 200 with resp.
func answer(w http.ResponseWriter, resp any, e *apiError) {
	if e != nil {
		writeAPIError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// storageError is a Cloud Storage XML error, as signed URL downloads get them: Code, Message, then
// ParameterName and Details when given (the shape of Google's MalformedSecurityHeader answers).
type storageError struct {
	code                    int
	xmlCode, message, param string
	details                 string
}

func writeStorageError(w http.ResponseWriter, e storageError) {
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	w.WriteHeader(e.code)
	fmt.Fprint(w, "<?xml version='1.0' encoding='UTF-8'?><Error>")
	if e.xmlCode != "" {
		fmt.Fprintf(w, "<Code>%s</Code>", html.EscapeString(e.xmlCode))
	}
	fmt.Fprintf(w, "<Message>%s</Message>", html.EscapeString(e.message))
	if e.param != "" {
		fmt.Fprintf(w, "<ParameterName>%s</ParameterName>", e.param)
	}
	if e.details != "" {
		fmt.Fprintf(w, "<Details>%s</Details>", html.EscapeString(e.details))
	}
	fmt.Fprint(w, "</Error>")
}
