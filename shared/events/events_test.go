package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events/outbox"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// resource.exported and round.completed lines carry the exported range; a failed resource has none.
func TestRenderTimeRange(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	end := start.Add(24 * time.Hour)
	for _, tc := range []struct {
		name   string
		e      outbox.Record
		want   []string
		absent []string
	}{
		{"applied", outbox.Record{Type: outbox.ResourceExported, User: "u", Round: "u~2", Resource: "myactivity.search", Job: "j",
			State: string(store.ResDone), ExportTime: end, StartTime: start, TimeFilter: store.TimeFilterApplied},
			[]string{`"time_range":{"start":"2026-05-01T12:00:00Z","end":"2026-05-02T12:00:00Z"}`, `"time_filter":"applied"`}, nil},
		{"whole", outbox.Record{Type: outbox.ResourceExported, User: "u", Round: "u~2", Resource: "youtube.subscriptions", Job: "j",
			State: string(store.ResDone), ExportTime: end, TimeFilter: store.TimeFilterUnsupported},
			[]string{`"time_range":{"end":"2026-05-02T12:00:00Z"}`, `"time_filter":"unsupported"`}, []string{`"start"`}},
		{"failed", outbox.Record{Type: outbox.ResourceFailed, User: "u", Round: "u~2", Resource: "myactivity.search", State: string(store.ResFailed),
			ExportTime: end, TimeFilter: store.TimeFilterApplied}, nil, []string{`"time_range"`, `"time_filter"`}},
		{"round summary", outbox.Record{Type: outbox.RoundCompleted, User: "u", Round: "u~2", Resources: []outbox.ResourceLine{
			{Name: "myactivity.search", State: string(store.ResDone), StartTime: start, ExportTime: end, TimeFilter: store.TimeFilterApplied},
			{Name: "chrome.history", State: string(store.ResFailed), ExportTime: end}}},
			[]string{`{"resource":"myactivity.search","state":"done","objects":0,"bytes":0,"time_range":{"start":"2026-05-01T12:00:00Z","end":"2026-05-02T12:00:00Z"},"time_filter":"applied"}`,
				`{"resource":"chrome.history","state":"failed","objects":0,"bytes":0}`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(Render(tc.e, "b", "p"))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s\nlacks %s", b, w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(string(b), a) {
					t.Errorf("%s\nhas %s", b, a)
				}
			}
		})
	}
}
