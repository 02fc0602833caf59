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
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Load1 is the 1-minute load average, 0 where it cannot be read.
func Load1() float64 {
	v, _ := strconv.ParseFloat(strings.Fields(LoadAverage() + " ")[0], 64)
	return v
}
