package fakeportability

import (
	"fmt"
	"math/bits"
	"strings"
	"time"
)

// Activity over time. A job with a time filter (startTime and/or endTime) holds only the activity of its
// range [start, exportTime]: each group of a data file has a deterministic stream of bytesPerDay bytes
// for every UTC day of virtual time, and the range takes, for every day it touches, the part of that
// day's stream that falls inside it (by time, proportionally). Two jobs whose ranges meet therefore hold
// adjacent, non-overlapping slices of the same streams: an app joining them gets each day exactly once.
// A job without a time filter holds the fixed History (default 365 days) before its exportTime, laid out
// as before (ArchiveSize bytes per data file), so ArchiveSize stays "the size of a full export" and one
// day is about ArchiveSize/365.

const day = 24 * time.Hour

// DefaultHistory is how much activity an account has: what a job without startTime covers.
const DefaultHistory = 365 * day

// activityRange is the span a filtered job covers: startTime (clamped to the start of the history) to
// exportTime. An unparseable or absent startTime means the start of the history.
func (s *Server) activityRange(startTime string, exportTime time.Time) (from, to time.Time) {
	to = exportTime.UTC()
	from = to.Add(-s.opts.History)
	if startTime != "" {
		if st, err := time.Parse(time.RFC3339Nano, startTime); err == nil && st.After(from) {
			from = st.UTC()
		}
	}
	if from.After(to) {
		from = to
	}
	return from, to
}

// bytesPerDay is the activity one group adds per day to one data file.
func (s *Server) bytesPerDay() int64 {
	return max(scale(s.opts.ArchiveSize, day, s.opts.History), 1)
}

// scale returns n * a / b without overflow (a, b > 0 durations).
func scale(n int64, a, b time.Duration) int64 {
	hi, lo := bits.Mul64(uint64(n), uint64(a))
	if hi >= uint64(b) {
		return n
	}
	q, _ := bits.Div64(hi, lo, uint64(b))
	return int64(q)
}

// activityEntries are the zip entries of data file index of groups over [from, to]: one per group per
// UTC day touched, named after the day, holding that day's slice of the group's stream as JSON.
func activityEntries(groups []string, index int, from, to time.Time, perDay int64) []*zipEntry {
	var out []*zipEntry
	share := max(perDay/int64(len(groups)), 1)
	for _, g := range groups {
		sn, fn := serviceFolder(g)
		for d := from.Truncate(day); d.Before(to); d = d.Add(day) {
			a, b := maxTime(from, d), minTime(to, d.Add(day))
			lo, hi := scale(share, a.Sub(d), day), scale(share, b.Sub(d), day)
			if b.Equal(d.Add(day)) {
				hi = share
			}
			if hi <= lo {
				continue
			}
			date := d.Format(time.DateOnly)
			path := fmt.Sprintf("Portability/%s/%s/%s-%03d-%s.json", sn, fn, strings.ReplaceAll(fn, " ", "_"), index, date)
			head := fmt.Sprintf(`{"day":%q,"from":%q,"to":%q,"offset":%d,"activity":"`, date,
				a.Format(time.RFC3339Nano), b.Format(time.RFC3339Nano), lo)
			tail := "\"}\n"
			n := hi - lo
			content := []segment{
				{off: 0, n: int64(len(head)), lit: []byte(head)},
				{off: int64(len(head)), n: n, seed: seedOf(g, fmt.Sprint(index), date), fillOff: lo},
				{off: int64(len(head)) + n, n: int64(len(tail)), lit: []byte(tail)},
			}
			out = append(out, &zipEntry{path: path, content: content})
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// activityZip is data file index of a filtered job: the activity of groups over [from, to].
func (c *objectCache) activityZip(groups []string, index int, from, to time.Time, perDay int64, withBrowser bool) *object {
	key := fmt.Sprintf("activity|%s|%d|%d|%d|%d|%t", strings.Join(groups, ","), index, from.UnixNano(), to.UnixNano(), perDay, withBrowser)
	return c.get(key, func() *object {
		o := &object{kind: "zip", entries: activityEntries(groups, index, from, to, perDay)}
		if withBrowser {
			o.entries = append(o.entries, &zipEntry{path: "Portability/archive_browser.json", content: litContent(archiveBrowser(groups))})
		}
		o.layout()
		return o
	})
}

// activityJSON is a bare JSON data file of a filtered job: the group's activity bytes over [from, to].
func (c *objectCache) activityJSON(group string, index int, from, to time.Time, perDay int64) *object {
	var n int64
	for _, e := range activityEntries([]string{group}, index, from, to, perDay) {
		n += contentSize(e.content)
	}
	return c.bareJSON(group, index, max(n, int64(len(jsonPrefix)+len(jsonSuffix))))
}
