// Command chaos runs the pipeline on one local stack through randomized rounds, each mixing faults for a
// few users (see emulator-test/faults), asserts the invariants after each round, and prints a table:
// scenarios run, faults injected by kind, archives and bytes verified, invariant checks and violations.
// It exits 1 if any invariant was violated.
//
//	go run ./emulator-test/cmd/chaos -seed 7 -rounds 20
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/faults"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
)

func main() {
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()%100000), "random seed (printed; reuse it to replay the same mix)")
	rounds := flag.Int("rounds", 20, "randomized rounds (scenarios) to run")
	parallel := flag.Int("parallel", 3, "rounds in flight at once (a Pub/Sub restart runs alone)")
	pubsub := flag.Bool("pubsub-restarts", true, "include Pub/Sub emulator restarts (each runs alone)")
	settle := flag.Duration("settle", 4*time.Minute, "longest wait for a round's grants to close")
	keep := flag.Bool("keep", false, "keep the stack's directory (function logs) after the run")
	verbose := flag.Bool("v", false, "print each round as it ends")
	markdown := flag.Bool("markdown", false, "print the table as Markdown")
	flag.Parse()

	ctx := context.Background()
	start := time.Now()
	fmt.Fprintf(os.Stderr, "chaos: seed %d, %d rounds, %d in flight; starting the stack\n", *seed, *rounds, *parallel)
	opts := faults.StackOptions(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	opts.Keep = *keep
	st, err := stack.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: the local stack did not start:", err)
		os.Exit(2)
	}
	defer st.Stop()
	stackUp := time.Since(start)

	t := faults.NewTally()
	dl := faults.NewDeadLetterBook()
	var printMu sync.Mutex
	logf := func(format string, args ...any) {
		if *verbose {
			printMu.Lock()
			fmt.Fprintf(os.Stderr, "  "+format+"\n", args...)
			printMu.Unlock()
		}
	}
	env := &faults.Env{St: st, T: t, DL: dl, Log: logf, Exclusive: &sync.RWMutex{}, CloseWithin: *settle}
	rng := rand.New(rand.NewPCG(*seed, 0x5eed))
	scenarios := make([]faults.Scenario, *rounds)
	for i := range scenarios {
		scenarios[i] = faults.Random(rng, i+1, *pubsub)
	}
	tasksFailed := faults.TasksFailed(st)

	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		failures []string
		done     int
		secrets  []string
	)
	work := make(chan faults.Scenario)
	for range max(*parallel, 1) {
		wg.Go(func() {
			for sc := range work {
				t0 := time.Now()
				err := faults.Run(ctx, env, sc)
				errMu.Lock()
				done++
				n := done
				if err != nil {
					failures = append(failures, err.Error())
				}
				errMu.Unlock()
				kinds := describe(sc)
				logf("round %d/%d %s (%d users; %s) %s %v", n, *rounds, sc.Name, len(sc.Users), kinds, time.Since(t0).Round(time.Second), errOK(err))
				if !*verbose && n%10 == 0 {
					fmt.Fprintf(os.Stderr, "chaos: %d/%d rounds, %d violations so far (%s)\n", n, *rounds, t.ViolationCount(), time.Since(start).Round(time.Second))
				}
				// Every 25 rounds, while other rounds run: the raw Firestore documents hold no secret.
				if n%25 == 0 {
					if found := scanFirestore(ctx, st); len(found) > 0 {
						errMu.Lock()
						secrets = append(secrets, found...)
						errMu.Unlock()
					}
				}
			}
		})
	}
	for _, sc := range scenarios {
		work <- sc
	}
	close(work)
	wg.Wait()

	// Every poison message dead-lettered exactly once, nothing else; no task given up.
	if err := dl.WaitAllDeadLettered(ctx, st, t, 2*time.Minute); err != nil {
		failures = append(failures, "dead letters: "+err.Error())
	}
	faults.CheckTasks(st, tasksFailed, t)
	// No issued secret in any function log or stored document.
	found, logBytes, err := faults.SecretsInLogs(st)
	if err != nil {
		failures = append(failures, "logs: "+err.Error())
	}
	for _, f := range found {
		secrets = append(secrets, "function logs: "+f)
	}
	secrets = append(secrets, scanFirestore(ctx, st)...)
	for _, s := range secrets {
		t.Violations = append(t.Violations, "secret found: "+s)
	}
	t.Invariants[faults.InvTokens] += 2 // the log scan and the last Firestore scan

	repairs, err := faults.Repairs(st)
	if err != nil {
		failures = append(failures, "reconciler log: "+err.Error())
	}
	runs, runsFailed := st.ReconcileRuns()
	report(os.Stdout, *markdown, *seed, *rounds, stackUp, time.Since(start), logBytes, len(st.Fake.IssuedSecrets()), t, failures)
	reportHeals(os.Stdout, *markdown, t, repairs, runs, runsFailed)
	if len(t.Violations) > 0 || len(failures) > 0 {
		if *keep {
			fmt.Fprintln(os.Stderr, "chaos: function logs are in", st.Dir)
		}
		st.Stop() // os.Exit skips the deferred Stop
		os.Exit(1)
	}
}

// reportHeals prints, per lost hand-off kind, how many were lost and healed and the longest time to heal
// (from the loss to the close of the user's grant), and the reconciler's repairs by kind.
func reportHeals(w io.Writer, markdown bool, t *faults.Tally, repairs map[string]int, runs, runsFailed int64) {
	healed, longest := t.Heals()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(cells ...any) {
		if markdown {
			fmt.Fprint(tw, "|")
			for _, c := range cells {
				fmt.Fprintf(tw, " %v |", c)
			}
			fmt.Fprintln(tw)
			return
		}
		fmt.Fprint(tw, " ")
		for _, c := range cells {
			fmt.Fprintf(tw, " %v\t", c)
		}
		fmt.Fprintln(tw)
	}
	if markdown {
		fmt.Fprint(tw, "\n| lost hand-off | lost | healed | longest time to heal |\n|---|---|---|---|\n")
	} else {
		fmt.Fprint(tw, "\nLOST HAND-OFF\tLOST\tHEALED\tLONGEST TIME TO HEAL\n")
	}
	var worst time.Duration
	for _, k := range faults.LostKinds {
		line(k, t.Faults[k], healed[k], longest[k].Round(time.Second))
		worst = max(worst, longest[k])
	}
	line("longest time to heal (loss to the grant's close)", "", "", worst.Round(time.Second))
	if markdown {
		fmt.Fprint(tw, "\n| reconciler repair | count |\n|---|---|\n")
	} else {
		fmt.Fprint(tw, "\nRECONCILER REPAIR\tCOUNT\n")
	}
	total := 0
	for _, k := range slices.Sorted(maps.Keys(repairs)) {
		line(k, repairs[k])
		total += repairs[k]
	}
	line("repairs made", total)
	line("reconciler runs (failed)", fmt.Sprintf("%d (%d)", runs, runsFailed))
	tw.Flush()
}

func scanFirestore(ctx context.Context, st *stack.Stack) []string {
	dump, _, err := faults.DumpFirestore(ctx, st.FirestoreClient)
	if err != nil {
		return []string{"firestore dump: " + err.Error()}
	}
	var out []string
	for _, f := range faults.FindSecrets(dump, st.Fake.IssuedSecrets(), nil) {
		out = append(out, "Firestore documents: "+f)
	}
	return out
}

func errOK(err error) string {
	if err != nil {
		return "ERROR " + err.Error()
	}
	return "ok"
}

func describe(sc faults.Scenario) string {
	var parts []string
	if sc.Copies > 1 {
		parts = append(parts, fmt.Sprintf("x%d deliveries", sc.Copies))
	}
	parts = append(parts, fmt.Sprintf("%d+%d fault steps", len(sc.Before), len(sc.After)))
	return strings.Join(parts, ", ")
}

func report(w io.Writer, markdown bool, seed uint64, rounds int, stackUp, total time.Duration, logBytes, issued int, t *faults.Tally, failures []string) {
	row := func(tw io.Writer, a, b any) {
		if markdown {
			fmt.Fprintf(tw, "| %v | %v |\n", a, b)
		} else {
			fmt.Fprintf(tw, "  %v\t%v\n", a, b)
		}
	}
	head := func(tw io.Writer, a, b string) {
		if markdown {
			fmt.Fprintf(tw, "\n| %s | %s |\n|---|---|\n", a, b)
		} else {
			fmt.Fprintf(tw, "\n%s\t%s\n", strings.ToUpper(a), strings.ToUpper(b))
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head(tw, "run", "")
	row(tw, "seed", seed)
	row(tw, "scenarios (randomized rounds) run", fmt.Sprintf("%d of %d", t.Scenarios, rounds))
	row(tw, "users", t.Users)
	row(tw, "wall time", fmt.Sprintf("%s (stack start %s)", total.Round(time.Second), stackUp.Round(time.Second)))
	head(tw, "fault injected", "times")
	injected := 0
	for _, k := range faults.Kinds {
		row(tw, k, t.Faults[k])
		injected += t.Faults[k]
	}
	row(tw, "total", injected)
	head(tw, "outcome", "count")
	row(tw, "archives verified (size and CRC32C of the stored bytes = source)", t.Archives)
	row(tw, "bytes verified", fmt.Sprintf("%d (%.1f MiB)", t.Bytes, float64(t.Bytes)/(1<<20)))
	for _, s := range slices.Sorted(maps.Keys(t.Resources)) {
		row(tw, "resources ended "+s, t.Resources[s])
	}
	row(tw, "job retries", t.Retries)
	row(tw, "authorization resets", t.Resets)
	row(tw, "dead-lettered messages, all accounted for", t.DeadLetters)
	row(tw, "bearer secrets issued by the fake and searched for", issued)
	row(tw, "function log bytes scanned", logBytes)
	head(tw, "invariant", "checks")
	for _, inv := range faults.Invariants {
		row(tw, inv, t.Invariants[inv])
	}
	row(tw, "invariant violations", len(t.Violations))
	row(tw, "rounds that could not be played", len(failures))
	tw.Flush()
	for _, v := range t.Violations {
		fmt.Fprintln(w, "VIOLATION:", v)
	}
	for _, f := range failures {
		fmt.Fprintln(w, "FAILED ROUND:", f)
	}
}
