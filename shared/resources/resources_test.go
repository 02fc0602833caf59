package resources

import (
	"slices"
	"strings"
	"testing"
)

// The documented list must match real groups: a pattern that matches nothing (a renamed group in a new
// discovery revision) would silently turn incremental rounds into whole-history rounds.
func TestTimeFilterPatternsMatchGroups(t *testing.T) {
	for _, p := range timeFilterPatterns {
		n := 0
		for _, g := range groups {
			if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(g, prefix) || g == p {
				n++
			}
		}
		if n == 0 {
			t.Errorf("pattern %q matches no group of revision %s", p, DiscoveryRevision)
		}
	}
}

func TestSupportsTimeFilter(t *testing.T) {
	for _, tt := range []struct {
		group string
		want  bool
	}{
		{"myactivity.search", true},
		{"myactivity.youtube", true},
		{"chrome.history", true},
		{"chrome.bookmarks", false},
		{"youtube.subscriptions", false},
		{"myactivity", false},
		{"myactivity.unknown", false},
		{"", false},
	} {
		if got := SupportsTimeFilter(tt.group); got != tt.want {
			t.Errorf("SupportsTimeFilter(%q) = %v, want %v", tt.group, got, tt.want)
		}
	}
	list := TimeFiltered()
	if !slices.IsSorted(list) || !slices.Contains(list, "chrome.history") || slices.Contains(list, "chrome.bookmarks") {
		t.Errorf("TimeFiltered() = %v", list)
	}
	for _, g := range list {
		if !Known(g) {
			t.Errorf("TimeFiltered lists unknown group %q", g)
		}
	}
}
