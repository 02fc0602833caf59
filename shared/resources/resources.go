// Package resources knows the Data Portability resource groups and their OAuth scopes.
//
// The list is generated from the discovery document shipped in google.golang.org/api/dataportability/v1
// (go generate ./shared/resources), so it follows the client module's version.
package resources

//go:generate go run ./internal/gen

import (
	"fmt"
	"sort"
	"strings"
)

// ScopePrefix turns a resource group into its scope: ScopePrefix + "myactivity.search".
const ScopePrefix = "https://www.googleapis.com/auth/dataportability."

var known = func() map[string]bool {
	m := make(map[string]bool, len(groups))
	for _, g := range groups {
		m[g] = true
	}
	return m
}()

// All returns every known resource group, sorted.
func All() []string { return append([]string(nil), groups...) }

// Known reports whether name is a resource group of the API.
func Known(name string) bool { return known[name] }

// Scope returns the OAuth scope of a resource group.
func Scope(group string) string { return ScopePrefix + group }

// FromScope returns the resource group of a Data Portability scope; ok is false for any other scope.
func FromScope(scope string) (group string, ok bool) {
	g, ok := strings.CutPrefix(scope, ScopePrefix)
	if !ok || !known[g] {
		return "", false
	}
	return g, true
}

// timeFilterPatterns are the resource groups whose initiate accepts startTime/endTime: a pattern is a group
// name or "prefix.*". The discovery document cannot say it (its startTime/endTime descriptions name no
// groups), so this is the one documented list; every other group answers INVALID_ARGUMENT. Sources:
// the Data Portability release notes of 2025-02-20 ("request a portion of the user's my_activity or
// chrome_history data based on timestamps",
// https://developers.google.com/data-portability/docs/release-notes) and the time-filter guide
// (https://developers.google.com/data-portability/user-guide/time-filter, "apply time filters to the
// supported resources").
var timeFilterPatterns = []string{"myactivity.*", "chrome.history"}

// timeFiltered is timeFilterPatterns expanded over the generated groups.
var timeFiltered = func() map[string]bool {
	m := map[string]bool{}
	for _, g := range groups {
		for _, p := range timeFilterPatterns {
			if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(g, prefix) || g == p {
				m[g] = true
			}
		}
	}
	return m
}()

// SupportsTimeFilter reports whether initiate accepts startTime/endTime for the group (see
// timeFilterPatterns). Every step and the fake ask here; nothing else decides it.
func SupportsTimeFilter(group string) bool { return timeFiltered[group] }

// TimeFiltered returns the groups that accept time filters, sorted.
func TimeFiltered() []string {
	out := make([]string, 0, len(timeFiltered))
	for g := range timeFiltered {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// Validate checks a list of groups: non-empty, known, no duplicates. It returns them sorted.
// A scope URL in place of a group name is a common mistake and gets its own message.
func Validate(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("no resource groups given")
	}
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.TrimSpace(n)
		if strings.HasPrefix(n, ScopePrefix) {
			return nil, fmt.Errorf("resource %q is a scope URL: pass the group name %q", n, strings.TrimPrefix(n, ScopePrefix))
		}
		if !known[n] {
			return nil, fmt.Errorf("unknown resource group %q (revision %s of the API lists %d groups)", n, DiscoveryRevision, len(groups))
		}
		if seen[n] {
			return nil, fmt.Errorf("resource group %q given twice", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}
