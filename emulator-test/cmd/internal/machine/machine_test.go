package machine

import "testing"

func TestLoadAverages(t *testing.T) {
	for _, tc := range []struct {
		content, averages string
		load1             float64
	}{
		{"2.46 0.93 0.35 3/412 9876\n", "2.46 0.93 0.35", 2.46},
		{"0.00 0.02 0.43 1/100 1", "0.00 0.02 0.43", 0},
		{"0.17 0.12", "?", 0},
		{"", "?", 0},
	} {
		got := loadAverages(tc.content)
		if got != tc.averages {
			t.Errorf("loadAverages(%q) = %q, want %q", tc.content, got, tc.averages)
		}
		if l := firstLoad(got); l != tc.load1 {
			t.Errorf("firstLoad(%q) = %v, want %v", got, l, tc.load1)
		}
	}
}
