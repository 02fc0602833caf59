// Package machine reads what the benchmark commands report about the machine they ran on: figures of
// a 2-core machine shared with other work mean little without the load beside them.
package machine

import (
	"os"
	"strconv"
	"strings"
)

// LoadAverage is the 1, 5 and 15-minute load averages as /proc/loadavg has them ("0.17 0.12 0.05"), or
// "?" where there is no such file.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return loadAverages(string(b))
}

// Load1 is the 1-minute load average, 0 where it cannot be read.
func Load1() float64 { return firstLoad(LoadAverage()) }

// loadAverages is the first three fields of /proc/loadavg's content, "?" if it has fewer.
func loadAverages(content string) string {
	f := strings.Fields(content)
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// firstLoad is the first figure of a LoadAverage, 0 for "?".
func firstLoad(averages string) float64 {
	v, _ := strconv.ParseFloat(strings.Fields(averages + " ")[0], 64)
	return v
}
