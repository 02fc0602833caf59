package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// reconcileInvoker is the service account whose OIDC token the stack's scheduler sends to Reconcile.
func (s *Stack) reconcileInvoker() string {
	return "reconcile-invoker@" + s.Project + ".iam.gserviceaccount.com"
}

// scheduler stands in for Cloud Scheduler: it POSTs the Reconcile function every period with an OIDC token
// of the reconcile invoker from the fake's issuer, as the Terraform's google_cloud_scheduler_job does.
type scheduler struct {
	stop    chan struct{}
	done    chan struct{}
	runs    atomic.Int64
	failed  atomic.Int64
	trigger chan chan error
	once    sync.Once
}

// startScheduler runs the reconciler every period until Stop.
func (s *Stack) startScheduler(period time.Duration) {
	sc := &scheduler{stop: make(chan struct{}), done: make(chan struct{}), trigger: make(chan chan error)}
	s.scheduler = sc
	go func() {
		defer close(sc.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-sc.stop:
				return
			case reply := <-sc.trigger:
				reply <- s.callReconcile()
			case <-t.C:
				if err := s.callReconcile(); err != nil {
					s.opts.Log.Warn("reconcile run failed", "error", err.Error())
				}
			}
		}
	}()
	s.stops = append(s.stops, func() {
		sc.once.Do(func() { close(sc.stop) })
		<-sc.done
	})
}

func (s *Stack) callReconcile() error {
	sc := s.scheduler
	sc.runs.Add(1)
	url := s.Functions["Reconcile"].URL() + "/"
	tok, err := s.Fake.IDToken(s.FakeURL, s.reconcileInvoker(), url)
	if err != nil {
		sc.failed.Add(1)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		sc.failed.Add(1)
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		sc.failed.Add(1)
		return fmt.Errorf("reconcile: %s: %s", resp.Status, body)
	}
	return nil
}

// Reconcile runs the reconciler now (between the scheduler's runs, never at the same time as one) and
// waits for it; it fails when the stack runs no scheduler.
func (s *Stack) Reconcile() error {
	if s.scheduler == nil {
		return fmt.Errorf("the stack runs no reconciler (Options.ReconcileEvery < 0)")
	}
	reply := make(chan error, 1)
	select {
	case s.scheduler.trigger <- reply:
	case <-s.scheduler.done:
		return fmt.Errorf("the scheduler has stopped")
	}
	return <-reply
}

// ReconcileRuns counts the reconciler runs so far and those that failed.
func (s *Stack) ReconcileRuns() (runs, failed int64) {
	if s.scheduler == nil {
		return 0, 0
	}
	return s.scheduler.runs.Load(), s.scheduler.failed.Load()
}
