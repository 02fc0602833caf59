package pipelinetest_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/purge"
)

// TestPurgeMidRound purges a person at several moments of a round delivered twice (copies out of order,
// so messages of the purged round keep arriving afterwards), lets the pipeline finish, and shows that
// nothing of that person is left in Firestore or the bucket while another person's round is untouched.
func TestPurgeMidRound(t *testing.T) {
	t.Parallel()
	for _, at := range []struct {
		name string
		when func(d *pipelinetest.Delivery, h *pipelinetest.Harness) bool
	}{
		{"first poll check", func(d *pipelinetest.Delivery, h *pipelinetest.Harness) bool {
			return d.Task != nil && d.Task.URL == pipelinetest.PollURL
		}},
		{"first transfer", func(d *pipelinetest.Delivery, h *pipelinetest.Harness) bool {
			return d.Topic == h.Env.Config.Topics.Transfer
		}},
		{"reset request", func(d *pipelinetest.Delivery, h *pipelinetest.Harness) bool {
			return d.Topic == h.Env.Config.Topics.Reset
		}},
	} {
		t.Run(at.name, func(t *testing.T) {
			t.Parallel()
			h := pipelinetest.New(t, pipelinetest.Options{Deliveries: 2,
				Fake: fakeportability.Options{URLsPerJob: 2, ArchiveSize: 2<<20 + 7}})
			h.Consent("bob", three, "one-time")
			h.Consent("alice", three, "one-time")
			var rep *purge.Report
			h.BeforeDeliver = func(d *pipelinetest.Delivery) {
				if rep != nil || userOf(d) != "alice" || !at.when(d, h) {
					return
				}
				r, err := purge.Purge(h.Ctx, h.Env, "alice")
				if err != nil {
					t.Fatalf("purge: %v", err)
				}
				rep = &r
			}
			h.Run(3000)
			if rep == nil {
				t.Fatal("the purge never ran")
			}
			if rep.Grant != purge.GrantReset && rep.Grant != purge.GrantNoToken {
				t.Errorf("grant %q (%s)", rep.Grant, rep.GrantError)
			}
			h.ExpectNothingOf("alice")
			if n := h.VerifyExports("bob"); n != 2*len(three) {
				t.Errorf("bob: %d files verified, want %d", n, 2*len(three))
			}
			if _, err := purge.Purge(h.Ctx, h.Env, "alice"); !errors.Is(err, purge.ErrNothingToPurge) {
				t.Errorf("second purge: %v, want ErrNothingToPurge", err)
			}
			t.Logf("purge at %s: %+v", at.name, *rep)
		})
	}
}

func TestPurgeUnknownUser(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{})
	if _, err := purge.Purge(h.Ctx, h.Env, "nobody"); !errors.Is(err, purge.ErrNothingToPurge) {
		t.Errorf("purge of an unknown user: %v, want ErrNothingToPurge", err)
	}
	if _, err := purge.Purge(h.Ctx, h.Env, "../x"); err == nil || errors.Is(err, purge.ErrNothingToPurge) {
		t.Errorf("purge of an invalid ID: %v, want a refusal", err)
	}
}

// userOf is the user a delivery is about.
func userOf(d *pipelinetest.Delivery) string {
	data, _ := d.Body()
	var m struct{ User string }
	json.Unmarshal(data, &m)
	return m.User
}

// TestPurgeBeforeNextRound purges a person with a time-based grant while the next round's delayed
// initiation is queued in Cloud Tasks (the purge does not delete tasks): when it comes due it must find
// nothing to do, not start a round for a person who asked to be forgotten.
func TestPurgeBeforeNextRound(t *testing.T) {
	t.Parallel()
	h := pipelinetest.New(t, pipelinetest.Options{Env: map[string]string{"TIME_BASED_HORIZON": "72h"}})
	h.Consent("bob", three, "one-time")
	h.Consent("alice", three, "time-based-30d")
	purged := false
	h.BeforeDeliver = func(d *pipelinetest.Delivery) {
		if purged || d.Task == nil || d.Task.URL != pipelinetest.InitiateURL || userOf(d) != "alice" {
			return
		}
		if _, err := purge.Purge(h.Ctx, h.Env, "alice"); err != nil {
			t.Fatalf("purge: %v", err)
		}
		purged = true
	}
	h.Run(3000)
	if !purged {
		t.Fatal("no next-round initiation was queued")
	}
	h.ExpectNothingOf("alice")
	if jobs := h.Fake.Jobs("alice"); len(jobs) != len(three) {
		t.Errorf("alice has %d jobs at Google, want %d (round 1 only)", len(jobs), len(three))
	}
}
