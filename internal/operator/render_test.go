package operator

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/store"
)

// portctl show says which span of activity each export holds.
func TestPrintUserShowsRanges(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	t2 := t1.Add(24 * time.Hour)
	since := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	res := func(name string, r store.Resource) ResourceDetail {
		r.Name, r.State = name, store.ResDone
		return ResourceDetail{Resource: r, Name: name}
	}
	d := &UserDetail{User: store.User{ID: "ana", State: "active", Access: store.AccessTimeBased, Rounds: 2}, Rounds: []RoundDetail{
		{ID: "ana~2", Round: store.Round{Since: since, State: store.RoundComplete}, Resources: []ResourceDetail{
			res("myactivity.search", store.Resource{StartTime: t1, ExportTime: t2, TimeFilter: store.TimeFilterApplied}),
			res("youtube.subscriptions", store.Resource{ExportTime: t2, TimeFilter: store.TimeFilterUnsupported}),
		}},
		{ID: "ana~1", Round: store.Round{State: store.RoundClosed}, Resources: []ResourceDetail{
			res("myactivity.search", store.Resource{ExportTime: t1, TimeFilter: store.TimeFilterNone}),
		}},
	}}
	var b bytes.Buffer
	if err := PrintUser(&b, d, t2); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"from 2026-05-01T12:00:00Z to 2026-05-02T12:00:00Z",
		"from the beginning to 2026-05-02T12:00:00Z (whole: no time filter)",
		"from the beginning to 2026-05-01T12:00:00Z",
		"since 2026-04-01T00:00:00Z",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("portctl show lacks %q:\n%s", want, out)
		}
	}
}
