package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/emulators"
	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/internal/pipelinetest"
)

// PollRow is the polling cost of one job duration.
type PollRow struct {
	Job            string  `json:"jobDuration"`
	Ladder         string  `json:"ladder"`
	SimCalls       int     `json:"simulatedStateCalls"`
	SimDelay       string  `json:"simulatedDetectionDelay"`
	SimInterval    string  `json:"intervalBeforeDetection"`
	HarnessCalls   int     `json:"harnessStateCalls"`
	HarnessDelay   string  `json:"harnessDetectionDelay"`
	MinutesPerCall float64 `json:"jobMinutesPerStateCall"`
	// StepsMatch: every poll task the pipeline enqueued in the harness run was scheduled ladder[min(k,
	// last)] after the previous check (At - EnqueuedAt, both real time), and polling stopped at the first
	// COMPLETE: the simulation's model.
	StepsMatch   bool   `json:"harnessStepsMatchLadder"`
	HarnessError string `json:"harnessError,omitempty"`
}

const defaultLadder = "5m,10m,20m,40m,60m"

// simulate walks the ladder: check k comes ladder[min(k, last)] after the previous one (the first after
// the job started), and the first check at or after the job's end sees it complete.
func simulate(ladder []time.Duration, job time.Duration) (calls int, delay, interval time.Duration) {
	var t time.Duration
	for k := 0; ; k++ {
		step := ladder[min(k, len(ladder)-1)]
		t += step
		calls++
		if t >= job {
			return calls, t - job, step
		}
	}
}

func pollingCost(ctx context.Context) ([]PollRow, error) {
	var ladder []time.Duration
	for _, s := range strings.Split(defaultLadder, ",") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, err
		}
		ladder = append(ladder, d)
	}
	// The harness needs a Firestore emulator of its own (the stack's, if any, is stopped by now).
	fs, err := emulators.StartFirestore(ctx, emulators.Options{})
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	os.Setenv("FIRESTORE_EMULATOR_HOST", fs.Host())
	var rows []PollRow
	for _, d := range []time.Duration{10 * time.Minute, 2 * time.Hour, 48 * time.Hour} {
		calls, delay, interval := simulate(ladder, d)
		row := PollRow{Job: fmtDur(d), Ladder: defaultLadder, SimCalls: calls, SimDelay: fmtDur(delay), SimInterval: fmtDur(interval),
			MinutesPerCall: d.Minutes() / float64(calls)}
		hc, hd, steps, err := harnessRun(d)
		if err != nil {
			row.HarnessError = err.Error()
		} else {
			row.HarnessCalls, row.HarnessDelay = hc, fmtDur(hd)
			row.StepsMatch = len(steps) == hc
			for k, st := range steps {
				if (st - ladder[min(k, len(ladder)-1)]).Abs() > time.Second {
					row.StepsMatch = false
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// harnessRun runs one user with one resource through the in-process pipeline (internal/pipelinetest)
// with the default ladder and a job of duration d; the harness advances the fake's clock to each task.
func harnessRun(d time.Duration) (calls int, delay time.Duration, steps []time.Duration, err error) {
	t := &fakeTB{name: "poll-" + strings.ReplaceAll(fmtDur(d), " ", "")}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("harness: %v", r)
		}
		t.cleanup()
	}()
	h := pipelinetest.New(t, pipelinetest.Options{
		Fake: fakeportability.Options{JobDuration: d, URLsPerJob: 1, ArchiveSize: 4096},
		Env:  map[string]string{"POLL_LADDER": defaultLadder},
	})
	var last time.Time
	h.BeforeDeliver = func(dl *pipelinetest.Delivery) {
		if dl.Task != nil && dl.Task.URL == pipelinetest.PollURL {
			last = h.Fake.Clock().Now()
		}
	}
	h.Consent("u", []string{"myactivity.search"}, "one-time")
	h.Run(5000)
	jobs := h.Fake.Jobs("u")
	if len(jobs) != 1 {
		return 0, 0, nil, fmt.Errorf("%d jobs", len(jobs))
	}
	for _, tk := range h.Bus.Tasks() {
		if tk.URL == pipelinetest.PollURL {
			steps = append(steps, tk.At.Sub(tk.EnqueuedAt))
		}
	}
	return h.UserCalls("u")["getState"], last.Sub(jobs[0].CreatedAt.Add(d)), steps, nil
}

// fakeTB lets the test harness run in a command: failures panic and are recovered by harnessRun.
type fakeTB struct {
	testing.TB
	name     string
	cleanups []func()
}

func (t *fakeTB) Helper()                      {}
func (t *fakeTB) Name() string                 { return t.name }
func (t *fakeTB) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }
func (t *fakeTB) Fatal(args ...any)            { panic(fmt.Sprint(args...)) }
func (t *fakeTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (t *fakeTB) Errorf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (t *fakeTB) Logf(string, ...any)          {}
func (t *fakeTB) Log(...any)                   {}
func (t *fakeTB) Failed() bool                 { return false }
func (t *fakeTB) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d d", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	return fmt.Sprintf("%.1f min", d.Minutes())
}

func printPolling(rows []PollRow) {
	fmt.Printf("\n== polling cost per job, POLL_LADDER %s (last step repeats) ==\n", defaultLadder)
	fmt.Printf("%-10s %12s %14s %14s %12s %14s %16s %12s\n", "job", "state calls", "job min/call", "detect delay", "interval", "harness calls", "harness delay", "steps=ladder")
	for _, r := range rows {
		hc, hd := fmt.Sprint(r.HarnessCalls), r.HarnessDelay
		if r.HarnessError != "" {
			hc, hd = "error", r.HarnessError
		}
		fmt.Printf("%-10s %12d %14.1f %14s %12s %14s %16s %12v\n", r.Job, r.SimCalls, r.MinutesPerCall, r.SimDelay, r.SimInterval, hc, hd, r.StepsMatch)
	}
	fmt.Println("targets: <= 1 state call per 5 min of job time (job min/call >= 5); a completed job noticed within its poll interval (delay < interval)")
	fmt.Println("state calls, detection delay: the ladder simulated on one clock (as in production, where the pipeline's and Google's clocks agree).")
	fmt.Println("harness: the pipeline in process with the fake; its checks follow the ladder (steps=ladder, from the tasks it enqueued) and stop at")
	fmt.Println("the first COMPLETE, but the harness jumps the fake's clock by min(fake, real) gaps while the pipeline schedules by the real clock,")
	fmt.Println("so later steps are shorter in the fake's time: its call counts are an upper bound and its delays a lower one.")
}
