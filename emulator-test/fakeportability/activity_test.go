package fakeportability

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	dataportability "google.golang.org/api/dataportability/v1"
)

// activity is one day entry of a filtered archive.
type activity struct {
	Day, From, To string
	Offset        int64
	Activity      string
}

// filteredJob runs a one-time job of user over myactivity.search with the given time filter and returns
// its state and the day entries of its data zip, by day.
func (e *env) filteredJob(user, start, end string) (*dataportability.PortabilityArchiveState, map[string]activity, int64) {
	e.t.Helper()
	svc, _ := e.grant(user, "one-time", "myactivity.search")
	resp, err := svc.PortabilityArchive.Initiate(&dataportability.InitiatePortabilityArchiveRequest{
		Resources: []string{"myactivity.search"}, StartTime: start, EndTime: end}).Context(e.ctx).Do()
	if err != nil {
		e.t.Fatal(err)
	}
	e.finish()
	st := e.mustState(svc, resp.ArchiveJobId)
	if st.State != StateComplete || len(st.Urls) != 2 {
		e.t.Fatalf("state = %+v", st)
	}
	_, body := get(e.t, st.Urls[0])
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		e.t.Fatal(err)
	}
	days := map[string]activity{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			e.t.Fatal(err)
		}
		var a activity
		if err := json.NewDecoder(rc).Decode(&a); err != nil {
			e.t.Fatalf("%s: %v", f.Name, err)
		}
		rc.Close()
		if !strings.HasSuffix(f.Name, a.Day+".json") {
			e.t.Fatalf("entry %s holds day %s", f.Name, a.Day)
		}
		days[a.Day] = a
	}
	return st, days, int64(len(body))
}

func TestTimeFilteredArchiveCoversItsRange(t *testing.T) {
	t.Parallel()
	const size = 365 * 1000 // 1000 bytes of activity per day
	e := newEnv(t, Options{ArchiveSize: size})
	// Without a filter: the fixed history, ArchiveSize bytes, no startTime in the state.
	_, whole := e.completedJob("full", "myactivity.search")
	_, wholeBody := get(t, whole[0])
	if int64(len(wholeBody)) != size {
		t.Fatalf("unfiltered data file is %d bytes, want %d", len(wholeBody), size)
	}

	t0 := e.srv.Clock().Now().Add(-3 * day).UTC()
	t1, t2 := t0.Add(30*time.Hour+17*time.Minute), t0.Add(50*time.Hour)
	f := func(t time.Time) string { return t.Format(time.RFC3339Nano) }

	st, oneDay, oneDaySize := e.filteredJob("day", f(t0), f(t0.Add(day)))
	if st.StartTime != f(t0) {
		t.Fatalf("startTime echoed as %q, want %q", st.StartTime, f(t0))
	}
	var n int64
	for _, a := range oneDay {
		n += int64(len(a.Activity))
	}
	if n < 990 || n > 1010 || oneDaySize*20 > size {
		t.Fatalf("one day holds %d activity bytes in a %d-byte zip; want about 1000, far below a year (%d)", n, oneDaySize, size)
	}

	// Two jobs that meet at t1 hold the same days as one job over both ranges, with no byte twice.
	_, a, _ := e.filteredJob("a", f(t0), f(t1))
	_, b, _ := e.filteredJob("b", f(t1), f(t2))
	_, both, _ := e.filteredJob("both", f(t0), f(t2))
	for d, want := range both {
		got := a[d].Activity + b[d].Activity
		if a[d].Activity != "" && b[d].Activity != "" && a[d].Offset+int64(len(a[d].Activity)) != b[d].Offset {
			t.Fatalf("day %s: first part ends at %d, second starts at %d", d, a[d].Offset+int64(len(a[d].Activity)), b[d].Offset)
		}
		if got != want.Activity {
			t.Fatalf("day %s: joined parts (%d+%d bytes) differ from the single export (%d bytes)", d, len(a[d].Activity), len(b[d].Activity), len(want.Activity))
		}
	}
	if len(both) < 3 {
		t.Fatalf("50 hours from %s touch %d days, want 3", t0, len(both))
	}
	for d := range a {
		if _, ok := both[d]; !ok {
			t.Fatalf("day %s only in the first part", d)
		}
	}
}

func TestTimeFilterStartBeforeHistoryIsClamped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ArchiveSize: 365 * 100, History: 10 * day})
	_, days, _ := e.filteredJob("old", "2001-01-01T00:00:00Z", "")
	if len(days) < 10 || len(days) > 11 {
		t.Fatalf("a start before the history gives %d days, want the 10-day history", len(days))
	}
}
