package faults

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"cloud.google.com/go/firestore"

	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
)

// SecretsInLogs reads every function log of the stack and returns what FindSecrets finds there: the
// fake's issued secrets, the secret shapes, the OAuth client secret and the start link key. logBytes is
// how much was scanned.
func SecretsInLogs(st *stack.Stack) (found []string, logBytes int, err error) {
	logs, err := st.Logs()
	if err != nil {
		return nil, 0, err
	}
	return FindSecrets(logs, st.Fake.IssuedSecrets(), map[string]string{
		"OAuth client secret": "fake-client-secret", "start link key": string(st.StartLinkKey)}), len(logs), nil
}

// LogsClean reports on stderr, after name, any secret SecretsInLogs finds (or a log it cannot read), and
// then returns false: what a suite's TestMain checks last, whatever its tests did.
func LogsClean(st *stack.Stack, name string) bool {
	found, _, err := SecretsInLogs(st)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, name+": read the function logs:", err)
	case len(found) > 0:
		fmt.Fprintln(os.Stderr, name+": secrets in the function logs:", strings.Join(found, "; "))
	default:
		return true
	}
	return false
}

// secretCore is the longest run of [A-Za-z0-9_-] in a secret: the random part of a token or code, the
// signature of a signed URL or a JWT. A scan looks for these runs whole in the text.
func secretCore(s string) string {
	best := ""
	for _, run := range runs(s) {
		if len(run) > len(best) {
			best = run
		}
	}
	return best
}

var runRE = regexp.MustCompile(`[A-Za-z0-9_-]{16,}`)

func runs(s string) []string { return runRE.FindAllString(s, -1) }

// Patterns that never belong in a log line or a stored document, whoever issued them.
var secretPatterns = map[string]*regexp.Regexp{
	"Google access token":   regexp.MustCompile(`ya29\.[A-Za-z0-9_-]{8,}`),
	"Google refresh token":  regexp.MustCompile(`1//[A-Za-z0-9_-]{8,}`),
	"authorization code":    regexp.MustCompile(`\b4/(0A|fake-)[A-Za-z0-9_-]{8,}`),
	"signed URL signature":  regexp.MustCompile(`[?&](sig|X-Goog-Signature|Signature)=[A-Za-z0-9_%-]{8,}`),
	"JWT":                   regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.`),
	"Authorization header":  regexp.MustCompile(`(?i)bearer [A-Za-z0-9._-]{16,}`),
	"PKCE verifier or code": regexp.MustCompile(`code_verifier=`),
}

// FindSecrets returns one line per secret found in text: every secret in issued (kind by value, as the
// fake records them) found whole, and every match of a pattern no log or document may hold. extra adds
// literal secrets (the client secret, the start link key).
func FindSecrets(text string, issued map[string]string, extra map[string]string) []string {
	cores := map[string]string{}
	for v, kind := range issued {
		if c := secretCore(v); len(c) >= 16 {
			cores[c] = kind
		}
	}
	var found []string
	seen := map[string]bool{}
	for _, run := range runs(text) {
		if kind, ok := cores[run]; ok && !seen[run] {
			seen[run] = true
			found = append(found, fmt.Sprintf("%s issued by the fake (%.8s...)", kind, run))
		}
	}
	for kind, re := range secretPatterns {
		if m := re.FindString(text); m != "" {
			found = append(found, fmt.Sprintf("%s pattern (%.12s...)", kind, m))
		}
	}
	for kind, v := range extra {
		if v != "" && strings.Contains(text, v) {
			found = append(found, kind)
		}
	}
	return found
}

// DumpFirestore returns every document of every collection (subcollections included) as text: the raw
// field values as Firestore holds them, bytes as Go prints them (quoted, so plaintext shows).
func DumpFirestore(ctx context.Context, fs *firestore.Client) (string, int, error) {
	var b strings.Builder
	docs := 0
	err := scenario.WalkDocuments(ctx, fs, func(ref *firestore.DocumentRef, snap *firestore.DocumentSnapshot) error {
		if snap == nil {
			return nil // a parent of subcollections only
		}
		docs++
		fmt.Fprintf(&b, "%s: ", ref.Path)
		for k, v := range snap.Data() {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "%s=%q ", k, v)
			default:
				fmt.Fprintf(&b, "%s=%v ", k, v)
			}
		}
		b.WriteString("\n")
		return nil
	})
	return b.String(), docs, err
}
