// Command devstack runs the whole pipeline locally: it starts the emulators, the fakes and the seven
// functions, signs demo users in through the consent flow as a browser would, shows progress while the
// jobs run and the archives stream, verifies every object in the bucket against the fake's checksums,
// prints a summary and exits 0 only if everything verified.
//
//	go run ./emulator-test/cmd/devstack
//	go run ./emulator-test/cmd/devstack -users 5 -access time-based-30d -archive-size 64MiB
//	go run ./emulator-test/cmd/devstack -keep-running
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"

	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
	"github.com/portability-pipeline/pipeline/internal/operator"
	"github.com/portability-pipeline/pipeline/shared/resources"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// Summary is written by -summary.
type Summary struct {
	Users              int      `json:"users"`
	Jobs               int      `json:"jobs"`
	Objects            int      `json:"objects"`
	Bytes              int64    `json:"bytes"`
	Verified           int      `json:"verified"`
	Resets             int      `json:"resets"`
	DuplicateInitiates int      `json:"duplicateInitiates"`
	Problems           []string `json:"problems,omitempty"`
	Seconds            float64  `json:"seconds"`
	// Rounds lists every round of every user with the range each resource's export covers.
	Rounds []RoundSummary `json:"rounds"`
}

// RoundSummary is one round of one user.
type RoundSummary struct {
	User      string            `json:"user"`
	Number    int               `json:"number"`
	Resources []ResourceSummary `json:"resources"`
}

// ResourceSummary is one resource of a round: its state and the span of activity it holds
// (startTime omitted when the export holds everything from the beginning).
type ResourceSummary struct {
	Resource   string `json:"resource"`
	State      string `json:"state"`
	StartTime  string `json:"startTime,omitempty"`
	ExportTime string `json:"exportTime,omitempty"`
	TimeFilter string `json:"timeFilter,omitempty"`
	Objects    int    `json:"objects"`
	Bytes      int64  `json:"bytes"`
	// Activity says the span as portctl show does.
	Activity string `json:"activity"`
}

// roundsOf reads the rounds of a user from the store, oldest first.
func roundsOf(ctx context.Context, st *store.Store, user string) ([]RoundSummary, error) {
	_, rounds, err := scenario.Rounds(ctx, st, user)
	if err != nil {
		return nil, err
	}
	var out []RoundSummary
	for _, round := range rounds {
		rs := RoundSummary{User: user, Number: round.Number, Resources: []ResourceSummary{}}
		for _, r := range round.Resources {
			line := ResourceSummary{Resource: r.Name, State: string(r.State), TimeFilter: r.TimeFilter, Objects: r.Objects, Bytes: r.Bytes,
				Activity: operator.Activity(r.StartTime, r.ExportTime, r.TimeFilter)}
			if !r.StartTime.IsZero() {
				line.StartTime = r.StartTime.UTC().Format(time.RFC3339Nano)
			}
			if !r.ExportTime.IsZero() {
				line.ExportTime = r.ExportTime.UTC().Format(time.RFC3339Nano)
			}
			rs.Resources = append(rs.Resources, line)
		}
		out = append(out, rs)
	}
	return out, nil
}

func main() {
	users := flag.Int("users", 2, "demo users to sign in")
	resList := flag.String("resources", "myactivity.search,myactivity.youtube,youtube.subscriptions", "resource groups each user grants")
	access := flag.String("access", "one-time", "access each user grants: one-time, time-based-30d or time-based-180d")
	size := flag.String("archive-size", "3MiB", "size of each data file of a job (e.g. 512KiB, 64MiB, 2GiB)")
	urls := flag.Int("urls-per-job", 2, "files (signed URLs) per job")
	horizon := flag.Duration("horizon", 72*time.Hour, "how long time-based grants keep exporting (a round a day)")
	keep := flag.Bool("keep-running", false, "stay up after the run and print the URLs to try by hand")
	summaryFile := flag.String("summary", "", "write the summary as JSON to this file")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	verbose := flag.Bool("v", false, "log the stack's progress")
	flag.Parse()

	groups, err := resources.Validate(strings.Split(*resList, ","))
	if err != nil {
		fail("-resources: %v", err)
	}
	archiveSize, err := parseSize(*size)
	if err != nil {
		fail("-archive-size: %v", err)
	}
	switch *access {
	case "one-time", "time-based-30d", "time-based-180d":
	default:
		fail("-access must be one-time, time-based-30d or time-based-180d")
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	logw := io.Discard
	if *verbose {
		logw = os.Stderr
	}
	began := time.Now()
	fmt.Fprintf(os.Stderr, "starting the stack (Firestore and Pub/Sub emulators, storage, tasks, Data Portability fake, 7 functions)...\n")
	s, err := stack.Start(ctx, stack.Options{
		Fake: fakeportability.Options{ArchiveSize: archiveSize, URLsPerJob: *urls, MD5MaxSize: 64 << 20},
		Env:  map[string]string{"TIME_BASED_HORIZON": horizon.String()},
		Log:  slog.New(slog.NewTextHandler(logw, nil)),
		Keep: *keep,
	})
	if err != nil {
		fail("start the stack: %v", err)
	}
	defer s.Stop()
	fmt.Fprintf(os.Stderr, "stack up in %.1fs; logs in %s\n", time.Since(began).Seconds(), s.Dir)

	names := make([]string, *users)
	for i := range names {
		names[i] = fmt.Sprintf("demo-user-%d", i+1)
		page, err := stack.SignIn(ctx, s.StartLink(names[i], groups), stack.Consent{Account: stack.Account(names[i]), Access: *access})
		if err != nil {
			fail("sign in %s: %v", names[i], err)
		}
		if page.Status != 200 {
			fail("sign in %s: callback answered %d", names[i], page.Status)
		}
	}
	fmt.Fprintf(os.Stderr, "%d users signed in through the consent page (%s, %s)\n", *users, *access, strings.Join(groups, ", "))

	runCtx, stop := context.WithTimeout(ctx, *timeout)
	defer stop()
	bars := newProgress(s, names, len(groups))
	if err := s.WaitClosed(runCtx, names, bars.draw); err != nil {
		bars.draw()
		fail("%v", err)
	}
	// The last events (grant.ended) follow the close: give the demo consumer a moment to show them.
	evCtx, evStop := context.WithTimeout(ctx, 10*time.Second)
	s.WaitEvents(evCtx, func(list []scenario.Event) bool {
		ended := 0
		for _, e := range list {
			if e.Type == "grant.ended" {
				ended++
			}
		}
		return ended >= len(names)
	})
	evStop()
	bars.draw()
	bars.done()

	sum := Summary{Users: *users}
	for _, u := range names {
		rep, err := scenario.VerifyExports(ctx, s.View(), u)
		if err != nil {
			fail("verify %s: %v", u, err)
		}
		sum.Jobs += rep.Jobs
		sum.Objects += rep.Objects
		sum.Bytes += rep.Bytes
		sum.Verified += rep.Verified
		sum.Problems = append(sum.Problems, rep.Mismatches()...)
		sum.DuplicateInitiates += duplicates(s, stack.Account(u), rep.Rounds)
		rounds, err := roundsOf(ctx, s.Store(), u)
		if err != nil {
			fail("read the rounds of %s: %v", u, err)
		}
		sum.Rounds = append(sum.Rounds, rounds...)
	}
	sum.Resets = totalCalls(s, "reset")
	sum.Seconds = time.Since(began).Seconds()
	printSummary(sum)
	if *summaryFile != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(*summaryFile, append(b, '\n'), 0o644); err != nil {
			fail("write summary: %v", err)
		}
	}
	ok := len(sum.Problems) == 0 && sum.Verified == sum.Objects && sum.Objects > 0 && sum.DuplicateInitiates == 0 && sum.Resets == *users
	if *keep {
		keepRunning(ctx, s, groups, names)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "FAILED: not every archive verified, or an initiate or reset was repeated")
		s.Stop()
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "OK: every archive verified, one initiate per resource per round, one reset per user")
}

// duplicates counts initiates of a resource beyond one per round.
func duplicates(s *stack.Stack, account string, rounds int) int {
	n := 0
	_, by := scenario.Calls(s.Fake, account)
	if len(by) == 0 {
		return -1 // the fake saw no initiate at all: something is wrong, and the run must fail
	}
	for _, c := range by {
		if c > rounds {
			n += c - rounds
		}
	}
	return n
}

func totalCalls(s *stack.Stack, method string) int {
	n, _ := s.Fake.Calls()[method].(int)
	return n
}

func printSummary(sum Summary) {
	fmt.Printf("\n%-22s %12s\n", "summary", "")
	rows := [][2]string{
		{"users", fmt.Sprint(sum.Users)},
		{"jobs exported", fmt.Sprint(sum.Jobs)},
		{"objects in the bucket", fmt.Sprint(sum.Objects)},
		{"bytes", fmt.Sprintf("%d (%s)", sum.Bytes, human(sum.Bytes))},
		{"objects verified", fmt.Sprintf("%d of %d", sum.Verified, sum.Objects)},
		{"authorization resets", fmt.Sprint(sum.Resets)},
		{"duplicate initiates", fmt.Sprint(sum.DuplicateInitiates)},
		{"wall time", fmt.Sprintf("%.1fs", sum.Seconds)},
	}
	for _, r := range rows {
		fmt.Printf("  %-22s %s\n", r[0], r[1])
	}
	for _, p := range sum.Problems {
		fmt.Printf("  problem: %s\n", p)
	}
	if len(sum.Rounds) > 0 {
		fmt.Printf("\n  %-12s %5s  %-24s %-8s %7s %10s  %s\n", "user", "round", "resource", "state", "objects", "bytes", "activity")
	}
	for _, r := range sum.Rounds {
		for _, x := range r.Resources {
			fmt.Printf("  %-12s %5d  %-24s %-8s %7d %10d  %s\n", r.User, r.Number, x.Resource, x.State, x.Objects, x.Bytes, x.Activity)
		}
	}
}

// keepRunning prints what to try by hand and waits for Ctrl-C.
func keepRunning(ctx context.Context, s *stack.Stack, groups, users []string) {
	fmt.Println("\nThe stack stays up. Try it by hand (Ctrl-C stops everything):")
	// Links work once, in the browser that opens them first; status links for 10 minutes (STATUS_LINK_TTL).
	fmt.Printf("  start link of a new demo user: %s\n", s.StartLink("hand-user", groups))
	fmt.Printf("  its status link (after consent): %s\n", s.StatusLink("hand-user", 10*time.Minute))
	for _, u := range users {
		fmt.Printf("  status link of %-16s %s\n", u+":", s.StatusLink(u, 10*time.Minute))
	}
	fmt.Printf("  (each link works once, status links for 10 minutes; more: START_LINK_KEY=%s:... go run ./cmd/startlink, key in FunctionEnv)\n", stack.LinkKeyID)
	fmt.Printf("  Data Portability fake:         %s/fake/v1/calls  (control endpoints: see emulator-test/fakeportability/README.md)\n", s.FakeURL)
	fmt.Printf("  Firestore emulator:            %s\n", s.Firestore.Host())
	fmt.Printf("  Pub/Sub emulator:              %s\n", s.PubSub.Host())
	fmt.Printf("  Storage emulator:              %s (bucket %s)\n", s.GCS.Host(), s.Bucket)
	fmt.Printf("  function logs:                 %s\n", s.Dir)
	fmt.Println("\nPoint portctl (or any tool built on setup.New) at this stack:")
	for _, kv := range s.FunctionEnv() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Printf("export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	fmt.Println("# then: go run ./cmd/portctl users")
	<-ctx.Done()
}

// progress draws one bar per user: resources finished in the current round and bytes verified.
type progress struct {
	s         *stack.Stack
	users     []string
	resources int
	tty       bool
	lines     int
	last      string
	shown     int // events printed so far
}

func newProgress(s *stack.Stack, users []string, resources int) *progress {
	fi, _ := os.Stderr.Stat()
	return &progress{s: s, users: users, resources: resources, tty: fi != nil && fi.Mode()&os.ModeCharDevice != 0}
}

func (p *progress) draw() {
	ctx := context.Background()
	st := p.s.Store()
	var b strings.Builder
	for _, u := range p.users {
		usr, err := st.GetUser(ctx, u)
		if err != nil {
			fmt.Fprintf(&b, "  %-12s waiting for consent\n", u)
			continue
		}
		list, _ := st.ListResources(ctx, usr.CurrentRound)
		finished, states := 0, map[string]int{}
		var bytes int64
		for _, r := range list {
			states[string(r.State)]++
			if store.Terminal(r.State) {
				finished++
			}
			if objs, err := st.ListObjects(ctx, usr.CurrentRound, r.Name); err == nil {
				for _, o := range objs {
					if o.State == store.ObjVerified {
						bytes += o.Size
					}
				}
			}
		}
		width := 24
		fill := 0
		if len(list) > 0 {
			fill = width * finished / len(list)
		}
		state := "round " + fmt.Sprint(usr.Rounds)
		if usr.State == "closed" {
			state = "closed"
		}
		fmt.Fprintf(&b, "  %-12s [%s%s] %d/%d resources  %9s verified  %-9s %s\n", u, strings.Repeat("#", fill), strings.Repeat(".", width-fill),
			finished, len(list), human(bytes), state, describe(states))
	}
	out := b.String()
	// The demo consumer: export events as they arrive, one line each, above the bars.
	evs, _ := p.s.Events(ctx)
	fresh := evs[min(p.shown, len(evs)):]
	if out == p.last && len(fresh) == 0 {
		return
	}
	p.last = out
	if p.tty && p.lines > 0 {
		fmt.Fprintf(os.Stderr, "\033[%dA\033[J", p.lines)
	}
	for _, e := range fresh {
		fmt.Fprintln(os.Stderr, "  event "+scenario.Line(e))
	}
	p.shown = len(evs)
	fmt.Fprint(os.Stderr, out)
	p.lines = strings.Count(out, "\n")
	if !p.tty {
		p.lines = 0
		fmt.Fprintln(os.Stderr)
	}
}

func (p *progress) done() {}

func describe(states map[string]int) string {
	keys := make([]string, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, states[k])
	}
	return strings.Join(parts, " ")
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			var f float64
			if _, err := fmt.Sscan(num, &f); err != nil || f < 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return int64(f * float64(u.mult)), nil
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0, fmt.Errorf("bad size %q (use e.g. 512KiB, 64MiB)", s)
	}
	return n, nil
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "devstack: "+format+"\n", args...)
	os.Exit(1)
}
