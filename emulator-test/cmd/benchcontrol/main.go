// Command benchcontrol measures the control plane on the local stack (emulators, fakes, the seven
// functions in their own processes): N users sign in through the consent page over HTTP, each granting 3
// resources one-time; every job lasts -job-duration of the fake's clock, so all are initiated first; then
// the clock is advanced once and every job completes at once. It reports users per minute end to end,
// Firestore document reads/writes/deletes (counted by a gRPC proxy in front of the emulator), Pub/Sub
// pushes (counted at the stack's push proxies), Cloud Tasks operations, function invocations per user and
// the cost per 1,000 users at list prices. With -polling it also computes the state calls per job of the
// poll ladder for long jobs (a simulation, validated against the in-process harness).
//
//	go run ./emulator-test/cmd/benchcontrol -users 100
//	go run ./emulator-test/cmd/benchcontrol -users 1000 -json control.json
//	go run ./emulator-test/cmd/benchcontrol -users 0 -polling
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"

	"github.com/portability-pipeline/pipeline/emulator-test/cmd/internal/machine"
	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/faketasks"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/shared/resources"
)

// Report is the -json output.
type Report struct {
	Date        string                     `json:"date"`
	CPUs        int                        `json:"cpus"`
	LoadStart   string                     `json:"loadAverageStart"`
	LoadEnd     string                     `json:"loadAverageEnd"`
	Users       int                        `json:"users"`
	Resources   []string                   `json:"resources"`
	Settings    map[string]string          `json:"settings"`
	Seconds     map[string]float64         `json:"seconds"` // stack start, sign-in, initiated, completed, end to end
	UsersPerMin float64                    `json:"usersPerMinute"`
	Firestore   fsCounts                   `json:"firestore"`
	Pushes      map[string]stack.PushCount `json:"pushes"`
	Tasks       faketasks.Stats            `json:"tasks"`
	Invocations map[string]int64           `json:"invocations"`
	APICalls    map[string]int             `json:"portabilityApiCalls"`
	Closed      int                        `json:"usersClosed"`
	Cost        []CostLine                 `json:"costPer1000Users"`
	CostTotal   float64                    `json:"costPer1000UsersTotal"`
	Polling     []PollRow                  `json:"polling,omitempty"`
}

func main() {
	users := flag.Int("users", 100, "users to sign in (0: skip the control-plane run)")
	resList := flag.String("resources", "myactivity.search,myactivity.youtube,youtube.subscriptions", "resource groups each user grants")
	archive := flag.Int64("archive-size", 4096, "bytes per archive (one signed URL per job)")
	jobDuration := flag.Duration("job-duration", 30*time.Minute, "virtual duration of every job; the clock is advanced past it once all are initiated")
	ladder := flag.String("poll-ladder", "5m,10m,20m,40m,60m", "POLL_LADDER of the functions (the production default)")
	maxConc := flag.Int("tasks-concurrency", 32, "Cloud Tasks stand-in: tasks dispatched at once")
	workers := flag.Int("signin-workers", 8, "sign-ins through the consent page at once")
	polling := flag.Bool("polling", false, "also compute the poll ladder's state calls for 10 min, 2 h and 2 day jobs")
	jsonOut := flag.String("json", "", "write the report as JSON to this file")
	timeout := flag.Duration("timeout", 40*time.Minute, "give up after this long")
	logLevel := flag.String("log-level", "WARNING", "LOG_LEVEL of the functions")
	keep := flag.String("keep", "", "keep the stack's logs in this directory")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, *timeout)
	defer stop()
	groups, err := resources.Validate(strings.Split(*resList, ","))
	if err != nil {
		fail("-resources: %v", err)
	}
	rep := &Report{Date: time.Now().UTC().Format("2006-01-02"), CPUs: runtime.NumCPU(), LoadStart: machine.LoadAverage(),
		Users: *users, Resources: groups, Seconds: map[string]float64{}}
	fmt.Printf("benchcontrol: %d CPUs, load average %s, %s\n", rep.CPUs, rep.LoadStart, rep.Date)
	if *users > 0 {
		if err := controlPlane(ctx, rep, *users, groups, *archive, *jobDuration, *ladder, *maxConc, *workers, *logLevel, *keep); err != nil {
			fail("%v", err)
		}
	}
	if *polling {
		rows, err := pollingCost(ctx)
		if err != nil {
			fail("polling: %v", err)
		}
		rep.Polling = rows
		printPolling(rows)
	}
	rep.LoadEnd = machine.LoadAverage()
	fmt.Printf("\nload average at the end: %s\n", rep.LoadEnd)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fail("%v", err)
		}
	}
	if *users > 0 && rep.Closed != *users {
		os.Exit(1)
	}
}

func controlPlane(ctx context.Context, rep *Report, n int, groups []string, archive int64, jobDuration time.Duration, ladder string, maxConc, workers int, logLevel, keep string) error {
	fsc, err := startFirestoreCounter()
	if err != nil {
		return err
	}
	defer fsc.Close()
	rep.Settings = map[string]string{
		"POLL_LADDER":             ladder,
		"FIRESTORE_EMULATOR_HOST": "the counting proxy (functions only)",
		"fake.JobDuration":        jobDuration.String(),
		"fake.ArchiveSize":        fmt.Sprint(archive),
		"fake.URLsPerJob":         "1",
		"faketasks.MaxConcurrent": fmt.Sprint(maxConc),
		"sign-in":                 fmt.Sprintf("consent page over HTTP (stack.SignIn), %d at once", workers),
		"access":                  "one-time",
		"other function env":      "the stack's defaults (PART_SIZE 4 MiB, INITIATE_LEASE 30s)",
	}
	began := time.Now()
	st, err := stack.Start(ctx, stack.Options{
		Fake:  fakeportability.Options{ArchiveSize: archive, URLsPerJob: 1, JobDuration: jobDuration, MD5MaxSize: 1 << 20},
		Tasks: faketasks.Options{MaxConcurrent: maxConc},
		Env:   map[string]string{"POLL_LADDER": ladder, "FIRESTORE_EMULATOR_HOST": fsc.Addr(), "LOG_LEVEL": logLevel},
		Log:   slog.New(slog.DiscardHandler),
		Dir:   keep,
		Keep:  keep != "",
	})
	if err != nil {
		return fmt.Errorf("start the stack: %w", err)
	}
	defer st.Stop()
	if err := fsc.SetUpstream(st.Firestore.Host()); err != nil {
		return err
	}
	rep.Seconds["stackStart"] = time.Since(began).Seconds()
	fmt.Printf("stack up in %.1f s; %d users x %d resources, jobs of %s (virtual), POLL_LADDER %s\n", rep.Seconds["stackStart"], n, len(groups), jobDuration, ladder)

	// Phase 1: sign-ins through the consent page.
	t0 := time.Now()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-user-%04d", i+1)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				page, err := stack.SignIn(ctx, st.StartLink(names[i], groups), stack.Consent{Account: names[i] + "@example.com", Access: "one-time"})
				if err == nil && page.Status != 200 {
					err = fmt.Errorf("callback answered %d", page.Status)
				}
				if err != nil {
					errs <- fmt.Errorf("sign in %s: %w", names[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	rep.Seconds["signIn"] = time.Since(t0).Seconds()
	fmt.Printf("%d users signed in through the consent page in %.1f s (load %s)\n", n, rep.Seconds["signIn"], machine.LoadAverage())

	// Phase 2: every job initiated and its first check scheduled.
	want := n * len(groups)
	lastJobs, moved, shownAt := -1, time.Now(), time.Now()
	for {
		jobs, pending := len(st.Fake.Jobs("")), st.Tasks.Pending()
		if jobs >= want && pending >= want {
			break
		}
		if jobs+pending != lastJobs {
			lastJobs, moved = jobs+pending, time.Now()
		}
		if time.Since(shownAt) > 10*time.Second {
			shownAt = time.Now()
			fmt.Printf("  %d of %d jobs at the fake, %d checks scheduled, initiate calls %v, pushes %v (load %s)\n", jobs, want, pending, st.Fake.Calls()["initiate"], st.PushCounts(), machine.LoadAverage())
		}
		if time.Since(moved) > time.Minute {
			fmt.Printf("  no progress for a minute: going on with %d jobs and %d checks scheduled\n", jobs, pending)
			break
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return fmt.Errorf("%d of %d jobs initiated, %d tasks pending: %w", jobs, want, pending, err)
		}
	}
	rep.Seconds["initiated"] = time.Since(t0).Seconds()
	fmt.Printf("%d jobs initiated and their first checks scheduled at %.1f s (load %s); advancing the clock by %s\n",
		want, rep.Seconds["initiated"], machine.LoadAverage(), jobDuration+time.Minute)

	// Phase 3: all jobs complete at once.
	st.Fake.Clock().Advance(jobDuration + time.Minute)
	t1 := time.Now()
	lastClosed, lastMove := -1, time.Now()
	lastShown, shown := -1, time.Time{}
	for {
		closed, err := countClosed(ctx, st.FirestoreClient)
		if err != nil {
			return err
		}
		if closed != lastClosed {
			lastClosed, lastMove = closed, time.Now()
		}
		if closed != lastShown && (time.Since(shown) > 5*time.Second || closed >= n) {
			lastShown, shown = closed, time.Now()
			fmt.Printf("%d of %d users closed after %.0f s (load %s); tasks %+v; firestore %d reads %d writes\n", closed, n, time.Since(t1).Seconds(), machine.LoadAverage(), st.Tasks.Stats(), fsc.reads.Load(), fsc.writes.Load())
		}
		if closed >= n {
			break
		}
		// Nothing moves: something waits for the clock (a retry, a later check): jump to it.
		if time.Since(lastMove) > 10*time.Second && !st.Tasks.Busy() {
			if d, ok := st.Tasks.NextDue(); ok {
				if wait := d.Sub(st.Fake.Clock().Now()); wait > 0 {
					st.Fake.Clock().Advance(wait + time.Second)
					fmt.Printf("\nclock advanced by %s to the next task\n", wait+time.Second)
				}
			}
			lastMove = time.Now()
		}
		if err := sleep(ctx, time.Second); err != nil {
			return fmt.Errorf("%d of %d users closed: %w", closed, n, err)
		}
	}
	fmt.Println()
	rep.Closed = lastClosed
	rep.Seconds["completed"] = time.Since(t1).Seconds()
	rep.Seconds["endToEnd"] = time.Since(t0).Seconds()
	rep.UsersPerMin = float64(n) / (rep.Seconds["endToEnd"] / 60)
	// Let trailing deliveries (events, cleanup) finish before counting.
	quietUntil := time.Now().Add(20 * time.Second)
	for time.Now().Before(quietUntil) && (st.Tasks.Busy() || pushesInFlight(st)) {
		sleep(ctx, 500*time.Millisecond)
	}
	sleep(ctx, 2*time.Second)

	rep.Firestore = fsc.Counts()
	rep.Pushes = st.PushCounts()
	rep.Tasks = st.Tasks.Stats()
	rep.APICalls = map[string]int{}
	for k, v := range st.Fake.Calls() {
		if c, ok := v.(int); ok {
			rep.APICalls[k] = c
		}
	}
	rep.Invocations = map[string]int64{"OAuthCallback": int64(3 * n)} // start page, /authorize, /callback per sign-in
	for entry, pc := range rep.Pushes {
		rep.Invocations[entry] += pc.Pushes
	}
	// Task attempts reach PollTask or InitiateTask (the stand-in does not say which; InitiateTask is used by
	// time-based grants and cooldowns only, so with one-time grants they are PollTask's).
	rep.Invocations["PollTask+InitiateTask (task attempts)"] = rep.Tasks.Attempts
	rep.Cost, rep.CostTotal = costs(rep)
	printControl(rep)
	return nil
}

func pushesInFlight(st *stack.Stack) bool {
	a := st.PushCounts()
	time.Sleep(300 * time.Millisecond)
	b := st.PushCounts()
	for k := range b {
		if a[k] != b[k] {
			return true
		}
	}
	return false
}

// countClosed counts closed users with one aggregation query on the emulator (not through the counter).
func countClosed(ctx context.Context, fs *firestore.Client) (int, error) {
	q := fs.Collection("users").Where("state", "==", "closed")
	res, err := q.NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		return 0, fmt.Errorf("count closed users: %w", err)
	}
	v, ok := res["n"]
	if !ok {
		return 0, nil
	}
	switch c := v.(type) {
	case *firestorepb.Value:
		return int(c.GetIntegerValue()), nil
	case int64:
		return int(c), nil
	}
	return 0, fmt.Errorf("count closed users: result %T", v)
}

func printControl(rep *Report) {
	n := float64(rep.Users)
	fmt.Printf("\n== control plane: %d users x %d resources (one-time), date %s, load average at start %s ==\n", rep.Users, len(rep.Resources), rep.Date, rep.LoadStart)
	fmt.Printf("%-44s %10s\n", "phase", "seconds")
	for _, k := range []string{"stackStart", "signIn", "initiated", "completed", "endToEnd"} {
		fmt.Printf("%-44s %10.1f\n", k, rep.Seconds[k])
	}
	fmt.Printf("%-44s %10.1f\n", "users per minute (sign-in to closed)", rep.UsersPerMin)
	fmt.Printf("\n%-44s %10s %10s\n", "count", "total", "per user")
	line := func(name string, v float64) { fmt.Printf("%-44s %10.0f %10.2f\n", name, v, v/n) }
	line("Firestore document reads", float64(rep.Firestore.Reads))
	line("Firestore document writes", float64(rep.Firestore.Writes))
	line("Firestore document deletes", float64(rep.Firestore.Deletes))
	var calls []string
	for k := range rep.Firestore.Calls {
		calls = append(calls, k)
	}
	sort.Strings(calls)
	for _, k := range calls {
		line("  Firestore RPC "+k, float64(rep.Firestore.Calls[k]))
	}
	var pushes, refused int64
	var entries []string
	for k := range rep.Pushes {
		entries = append(entries, k)
	}
	sort.Strings(entries)
	for _, e := range entries {
		p := rep.Pushes[e]
		pushes += p.Pushes
		refused += p.Refused
		line("  Pub/Sub pushes to "+e, float64(p.Pushes))
	}
	line("Pub/Sub pushes (deliveries)", float64(pushes))
	line("  of which refused (redelivered)", float64(refused))
	line("Cloud Tasks created", float64(rep.Tasks.Created))
	line("Cloud Tasks attempts", float64(rep.Tasks.Attempts))
	line("Cloud Tasks deleted", float64(rep.Tasks.Deleted))
	var inv int64
	var ik []string
	for k := range rep.Invocations {
		ik = append(ik, k)
	}
	sort.Strings(ik)
	for _, k := range ik {
		inv += rep.Invocations[k]
		line("  invocations "+k, float64(rep.Invocations[k]))
	}
	line("function invocations", float64(inv))
	var ak []string
	for k := range rep.APICalls {
		ak = append(ak, k)
	}
	sort.Strings(ak)
	for _, k := range ak {
		line("  Data Portability API "+k, float64(rep.APICalls[k]))
	}
	fmt.Printf("\n== cost per 1,000 users at list prices (as known; run date %s) ==\n", rep.Date)
	for _, c := range rep.Cost {
		fmt.Printf("%-34s %12.0f x %-28s = $%8.4f   %s\n", c.Item, c.Quantity, c.Price, c.USD, c.Source)
	}
	fmt.Printf("%-34s %57s $%8.4f\n", "total", "", rep.CostTotal)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchcontrol: "+format+"\n", args...)
	os.Exit(2)
}
