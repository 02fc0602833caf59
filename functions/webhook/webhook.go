// Package webhook delivers export events to the operator's HTTPS endpoint (entry point Webhook, pushed
// by a subscription on export-events): it POSTs the event's JSON to WEBHOOK_URL, signed with
// WEBHOOK_SECRET (header X-Portability-Signature, see shared/webhooksig). A non-2xx answer or a network error
// returns an error, so Pub/Sub delivers again with the subscription's backoff and, after its maximum
// attempts, moves the message to export-events-dead-letter (the record of what never arrived).
package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/webhooksig"
)

// Needs is what the step uses beyond the configuration and the logger: nothing (it reads no state).
func Needs() setup.Needs { return setup.Needs{} }

// Options are the step's replaceable parts; a zero field takes the production value.
type Options struct {
	// Client posts the events (default: a 30 s timeout).
	Client *http.Client
	// Now is the signing clock (default time.Now).
	Now func() time.Time
}

// Step is the webhook step, built from what it uses.
type Step struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// New builds the step; it refuses an Env without a configuration, a logger, WEBHOOK_URL or WEBHOOK_SECRET.
func New(env *setup.Env, opts Options) (*Step, error) {
	if err := env.Require("webhook", Needs()); err != nil {
		return nil, err
	}
	if err := env.Config.RequireWebhook(); err != nil {
		return nil, err
	}
	s := &Step{url: env.Config.Webhook.URL, secret: []byte(env.Config.Webhook.Secret), client: opts.Client, now: opts.Now}
	if s.client == nil {
		s.client = &http.Client{Timeout: 30 * time.Second}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Deliver handles one push of an export event: it POSTs the event's body, signed; an error means
// "deliver again".
func (s *Step) Deliver(ctx context.Context, p messages.Push) error {
	log := logging.FromContext(ctx)
	ev, err := events.Decode(p.Data)
	log = log.With("event", ev.Type, "eventId", ev.ID, "user", ev.User)
	if err != nil {
		log.Error("not an export event; it will be dead-lettered", "error", err.Error())
		return err
	}
	return s.post(logging.WithLogger(ctx, log), p.Data, ev)
}

func (s *Step) post(ctx context.Context, body []byte, ev events.Event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooksig.Header, webhooksig.Sign(s.secret, body, s.now()))
	req.Header.Set("X-Portability-Event-Id", ev.ID)
	req.Header.Set("X-Portability-Event-Type", ev.Type)
	resp, err := s.client.Do(req)
	log := logging.FromContext(ctx)
	if err != nil {
		log.Warn("webhook unreachable; Pub/Sub will deliver again", "error", err.Error())
		return fmt.Errorf("post event %s: %w", ev.ID, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // drained for the connection's reuse only
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		log.Warn("webhook refused the event; Pub/Sub will deliver again", "status", resp.StatusCode)
		return fmt.Errorf("post event %s: status %d", ev.ID, resp.StatusCode)
	}
	log.Info("event delivered to the webhook", "status", resp.StatusCode)
	return nil
}
