package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/portability-pipeline/pipeline/shared/config"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/webhooksig"
)

const secret = "0123456789abcdef0123456789abcdef-webhook"

// push pushes one message carrying data to the step's push handler and reports whether it was
// acknowledged.
func push(env *setup.Env, s *Step, data []byte) bool {
	body := messages.PushBody("projects/p/subscriptions/export-events-webhook", "m1", data, map[string]string{"type": "round.completed"})
	w := httptest.NewRecorder()
	handler.Push(env, "webhook", s.Deliver)(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	return w.Code == http.StatusNoContent
}

// TestHandleSignsAndRetries posts a signed event, verified by the receiver with webhook.Verify; a 503
// answer and a tampered or replayed request are refused.
func TestHandleSignsAndRetries(t *testing.T) {
	body := []byte(`{"schema_version":1,"id":"e1","type":"round.completed","occurred_at":"2026-05-01T12:00:00Z","user":"ana","stage":2}`)
	var status atomic.Int32
	status.Store(http.StatusNoContent)
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := webhooksig.Verify([]byte(secret), r.Header.Get(webhooksig.Header), b, time.Now(), webhooksig.Tolerance); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got.Store(string(b))
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	cfg, err := config.LoadFrom(context.Background(), envconfig.MapLookuper(map[string]string{"PROJECT_ID": "p", "WEBHOOK_URL": srv.URL, "WEBHOOK_SECRET": secret}))
	if err != nil {
		t.Fatal(err)
	}
	env := &setup.Env{Config: cfg, Log: logging.New(io.Discard, "DEBUG")}
	var signedAt atomic.Int64 // how long ago the signing clock says it is
	step, err := New(env, Options{Now: func() time.Time { return time.Now().Add(-time.Duration(signedAt.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	handle := func(data []byte) bool { return push(env, step, data) }
	if _, err := New(&setup.Env{Config: &config.Config{}, Log: env.Log}, Options{}); err == nil {
		t.Error("a step without WEBHOOK_URL and WEBHOOK_SECRET was built")
	}

	if !handle(body) {
		t.Fatal("delivery not acknowledged")
	}
	if got.Load() != string(body) {
		t.Errorf("received %v", got.Load())
	}
	status.Store(http.StatusServiceUnavailable)
	if handle(body) {
		t.Error("a 503 answer was taken as delivered")
	}
	// A receiver refuses a replay of an old request and a tampered body.
	status.Store(http.StatusOK)
	signedAt.Store(int64(10 * time.Minute))
	if handle(body) {
		t.Error("a request signed 10 minutes ago was accepted")
	}
	signedAt.Store(0)
	sig := webhooksig.Sign([]byte(secret), body, time.Now())
	tampered := []byte(`{"schema_version":1,"id":"e1","type":"round.completed","user":"eve","stage":2}`)
	if err := webhooksig.Verify([]byte(secret), sig, tampered, time.Now(), webhooksig.Tolerance); err == nil {
		t.Error("a tampered body verified")
	}
	// Not an event: refused (dead-lettered after the attempts).
	if handle([]byte(`{"v":1}`)) {
		t.Error("a message that is not an event was delivered")
	}
}
