package manifest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The manifest carries the exported range: time_range.start only when the export was limited.
func TestBuildTimeRange(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 5, 2, 12, 0, 0, 0, time.FixedZone("x", 3600))
	start := end.Add(-24 * time.Hour)
	for _, tc := range []struct {
		name   string
		j      Job
		want   string
		absent string
	}{
		{"applied", Job{Job: "j", ExportTime: end, StartTime: start, TimeFilter: "applied"},
			`"time_range":{"start":"2026-05-01T11:00:00Z","end":"2026-05-02T11:00:00Z"},"time_filter":"applied"`, ""},
		{"whole", Job{Job: "j", ExportTime: end, TimeFilter: "unsupported"},
			`"time_range":{"end":"2026-05-02T11:00:00Z"},"time_filter":"unsupported"`, `"start"`},
		{"unknown filter", Job{Job: "j", ExportTime: end}, `"time_range":{"end":"2026-05-02T11:00:00Z"}`, `"time_filter"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Build(context.Background(), tc.j, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(m)
			if !strings.Contains(string(b), tc.want) || tc.absent != "" && strings.Contains(string(b), tc.absent) {
				t.Errorf("manifest %s\nwant %s, without %s", b, tc.want, tc.absent)
			}
		})
	}
}
