package machine

import (
	"os"
	"strings"
	"testing"
)

func TestLoadAverageHasThreeFigures(t *testing.T) {
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		t.Skip("no /proc/loadavg on this machine")
	}
	got := LoadAverage()
	if f := strings.Fields(got); len(f) != 3 {
		t.Fatalf("LoadAverage() = %q, want three figures", got)
	}
	if Load1() < 0 {
		t.Fatalf("Load1() = %v", Load1())
	}
}
