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

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/portability-pipeline/pipeline/shared/events"
	"github.com/portability-pipeline/pipeline/shared/handler"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/messages"
	"github.com/portability-pipeline/pipeline/shared/setup"
	"github.com/portability-pipeline/pipeline/shared/webhooksig"
)

// Env is built on first use from the environment; tests set Env.Override.
var Env = setup.NewLazy(setup.Needs{})

// Client posts the events (tests replace it).
var Client = &http.Client{Timeout: 30 * time.Second}

// Now is the signing clock (tests replace it).
var Now = time.Now

func init() {
	functions.HTTP("Webhook", handler.Push(Env, "webhook", deliver))
}

// deliver handles one push of an export event.
func deliver(ctx context.Context, env *setup.Env, p messages.Push) error {
	log := logging.FromContext(ctx)
	if err := env.Config.RequireWebhook(); err != nil {
		log.Error("configuration", "error", err.Error())
		return err
	}
	ev, err := events.Decode(p.Data)
	log = log.With("event", ev.Type, "eventId", ev.ID, "user", ev.User)
	if err != nil {
		log.Error("not an export event; it will be dead-lettered", "error", err.Error())
		return err
	}
	return Deliver(logging.WithLogger(ctx, log), env.Config.Webhook.URL, []byte(env.Config.Webhook.Secret), p.Data, ev)
}

// Deliver POSTs one event body, signed; an error means "deliver again".
func Deliver(ctx context.Context, url string, secret, body []byte, ev events.Event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooksig.Header, webhooksig.Sign(secret, body, Now()))
	req.Header.Set("X-Portability-Event-Id", ev.ID)
	req.Header.Set("X-Portability-Event-Type", ev.Type)
	resp, err := Client.Do(req)
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
