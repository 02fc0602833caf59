package pipelinetest_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/portability-pipeline/pipeline"
	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// TestStepsRefuseAnotherUsersRound sends each step, at the moment it first acts on Alice's round, a copy of
// its message that names Mallory as the user (a crossed or forged message). Mallory has a stored token of
// her own. The step must acknowledge it with a reason and do nothing: no call to the API with Mallory's
// token, no file of Alice's under Mallory's prefix, no change to Alice's round (not even a claim) — and
// Alice's own round must still finish as if the message had never come.
func TestStepsRefuseAnotherUsersRound(t *testing.T) {
	t.Parallel()
	// Each step by its entry point in the routing table, which names the topic or task URL reaching it.
	for _, entry := range []string{"Initiate", "PollTask", "PollStart", "Transfer", "Reset"} {
		step, ok := pipeline.RouteOf(entry)
		if !ok {
			t.Fatalf("no route %s", entry)
		}
		t.Run(entry, func(t *testing.T) {
			t.Parallel()
			h := pipelinetest.New(t, pipelinetest.Options{Fake: fakeportability.Options{URLsPerJob: 1, ArchiveSize: 1<<20 + 99}})
			ctx := logging.WithLogger(h.Ctx, h.Env.Log)
			giveToken(t, h, "mallory")
			round := h.Consent("alice", three, "one-time")
			forged := false
			h.BeforeDeliver = func(d *pipelinetest.Delivery) {
				if forged || d.At() != step.Name(h.Env.Config) || userOf(d) != "alice" {
					return
				}
				forged = true
				before := snapshot(t, h, round)
				err := h.Step(d.At())(ctx, naming(t, d, "mallory"))
				if !errors.Is(err, handler.ErrDrop) || !strings.Contains(err.Error(), "another user") {
					t.Errorf("message naming mallory for alice's round: %v, want it dropped as another user's", err)
				}
				if after := snapshot(t, h, round); !reflect.DeepEqual(before, after) {
					t.Errorf("the forged message changed something:\nbefore %+v\nafter  %+v", before, after)
				}
			}
			h.Run(500)
			if !forged {
				t.Fatal("the step never ran for alice")
			}
			if n := h.VerifyExports("alice"); n != len(three) {
				t.Errorf("alice: %d files verified, want %d", n, len(three))
			}
			r, err := h.Env.Store.GetRound(h.Ctx, round)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != store.RoundClosed {
				t.Errorf("alice's round is %s, want closed", r.State)
			}
			for call, n := range h.UserCalls("mallory") {
				if n != 0 {
					t.Errorf("the API was called with mallory's token: %s %d times", call, n)
				}
			}
			if objs := h.Objects(""); len(objs) > 0 {
				for _, o := range objs {
					if strings.Contains(o.Name, "mallory") || o.Metadata["user"] == "mallory" {
						t.Errorf("object %s is filed under mallory", o.Name)
					}
				}
			}
		})
	}
}

// naming is the body of d's message with user in its "user" field: a crossed or forged copy.
func naming(t *testing.T, d *pipelinetest.Delivery, user string) []byte {
	t.Helper()
	body, err := d.Body()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["user"]; !ok {
		t.Fatalf("message without a user: %s", body)
	}
	m["user"], _ = json.Marshal(user)
	forged, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return forged
}

// giveToken stores a valid token for user at the fake and in the token store, without any round.
func giveToken(t *testing.T, h *pipelinetest.Harness, user string) {
	t.Helper()
	tok, err := h.Fake.Grant(fakeportability.GrantRequest{User: user, Resources: three, Access: "one-time"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Env.Tokens.Save(h.Ctx, user, &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		TokenType: "Bearer", Expiry: time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)}); err != nil {
		t.Fatal(err)
	}
}

// state is what a forged message must not change: the round, its resources, their objects and parts,
// mallory's calls at the fake, and the bucket's object names.
type state struct {
	Round     store.Round
	Resources []store.Resource
	Objects   map[string][]store.Object
	Parts     []store.Part
	Calls     map[string]int
	Names     []string
	Pending   int
}

func snapshot(t *testing.T, h *pipelinetest.Harness, round string) state {
	t.Helper()
	r, err := h.Env.Store.GetRound(h.Ctx, round)
	if err != nil {
		t.Fatal(err)
	}
	list, err := h.Env.Store.ListResources(h.Ctx, round)
	if err != nil {
		t.Fatal(err)
	}
	s := state{Round: *r, Resources: list, Objects: map[string][]store.Object{}, Calls: h.UserCalls("mallory"), Pending: h.Bus.Pending()}
	for _, res := range list {
		for i := range res.Objects {
			o, err := h.Env.Store.GetObject(h.Ctx, round, res.Name, i)
			if err != nil {
				t.Fatal(err)
			}
			s.Objects[res.Name] = append(s.Objects[res.Name], *o)
			parts, err := h.Env.Store.DoneParts(h.Ctx, round, res.Name, i, o.Attempt)
			if err != nil {
				t.Fatal(err)
			}
			s.Parts = append(s.Parts, parts...)
		}
	}
	for _, o := range h.Objects("") {
		s.Names = append(s.Names, o.Name)
	}
	return s
}
