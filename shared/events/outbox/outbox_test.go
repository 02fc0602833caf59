package outbox

import (
	"slices"
	"testing"
	"time"
)

// Every fact has one ID: the same identifiers give the same ID, any other identifier or type another.
func TestID(t *testing.T) {
	t.Parallel()
	a := ID(ResourceExported, "u~1", "g", "j")
	if a != ExportedID("u~1", "g", "j") || len(a) != 32 {
		t.Fatalf("ID %q", a)
	}
	for _, other := range []string{ID(ResourceFailed, "u~1", "g", "j"), ID(ResourceExported, "u~1", "g", "k"),
		ID(ResourceExported, "u~1", "gj"), ID(ResourceExported, "u~1g", "j")} {
		if other == a {
			t.Errorf("two facts share ID %s", a)
		}
	}
}

func TestResourceRecord(t *testing.T) {
	t.Parallel()
	end := ResourceEnd{User: "u", Round: "u~1", RoundNumber: 1, Resource: "g", Job: "j", State: "done", Reason: "stale",
		Exported: true, Objects: []Object{{Name: "f", Size: 1}}}
	r := ResourceRecord(end)
	if r.Type != ResourceExported || !r.Held || r.Reason != "" || r.ID != ExportedID("u~1", "g", "j") || r.Stage != StageResource {
		t.Errorf("exported %+v", r)
	}
	end.Objects = nil
	if r := ResourceRecord(end); r.Held {
		t.Error("an export without files waits for a manifest")
	}
	end.Exported, end.State = false, "failed"
	if r := ResourceRecord(end); r.Type != ResourceFailed || r.Held || r.Reason != "stale" || r.ID != ID(ResourceFailed, "u~1", "g", "j") {
		t.Errorf("failed %+v", r)
	}
}

func TestRoundRecordSortsLines(t *testing.T) {
	t.Parallel()
	lines := []ResourceLine{{Name: "b"}, {Name: "a"}}
	r := RoundRecord("u", "u~1", 1, "one-time", lines, time.Now())
	if r.Resources[0].Name != "a" || lines[0].Name != "b" || r.ID != ID(RoundCompleted, "u~1") {
		t.Errorf("record %+v, input %+v", r, lines)
	}
}

// Records go out by round, stage, time and ID, and stop at the first held one.
func TestPublishable(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	purge := PurgeRecord("u", "p", 2)
	recs := []Record{
		purge,
		{ID: "grant", RoundNumber: 1, Stage: StageGrant, OccurredAt: t0},
		{ID: "r2", RoundNumber: 2, Stage: StageResource, OccurredAt: t0},
		{ID: "late", RoundNumber: 1, Stage: StageResource, OccurredAt: t0.Add(time.Second)},
		{ID: "b", RoundNumber: 1, Stage: StageResource, OccurredAt: t0},
		{ID: "a", RoundNumber: 1, Stage: StageResource, OccurredAt: t0},
	}
	var ids []string
	for _, r := range Publishable(slices.Clone(recs)) {
		ids = append(ids, r.ID)
	}
	if want := []string{"a", "b", "late", "grant", "r2", purge.ID}; !slices.Equal(ids, want) {
		t.Errorf("order %v, want %v", ids, want)
	}
	recs[3].Held = true
	ids = nil
	for _, r := range Publishable(recs) {
		ids = append(ids, r.ID)
	}
	if want := []string{"a", "b"}; !slices.Equal(ids, want) {
		t.Errorf("with a held record: %v, want %v", ids, want)
	}
}
