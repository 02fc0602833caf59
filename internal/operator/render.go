package operator

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portability-pipeline/pipeline/shared/purge"
	"github.com/portability-pipeline/pipeline/shared/store"
)

// JSON writes v as indented JSON (the -json output for scripts).
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func age(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return d.Round(time.Second).String()
	}
}

// PrintUsers writes the users table.
func PrintUsers(w io.Writer, rows []UserRow) error {
	t := table(w)
	fmt.Fprintln(t, "USER\tACCESS\tSTATE\tROUNDS\tROUND\tROUND STATE\tRESOURCES DONE\tAGE")
	for _, r := range rows {
		fmt.Fprintf(t, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.User, dash(r.Access), dash(r.State), r.Rounds, dash(r.Round),
			dash(string(r.RoundState)), dash(r.Resources), age(r.Age))
	}
	return t.Flush()
}

// PrintUser writes one user's rounds, resources and archive files.
func PrintUser(w io.Writer, d *UserDetail, now time.Time) error {
	u := d.User
	fmt.Fprintf(w, "user %s: %s, %s access, %d round(s), current %s, token %s, since %s\n\n", u.ID, dash(u.State), dash(u.Access),
		u.Rounds, dash(u.CurrentRound), map[bool]string{true: "stored", false: "none"}[d.HasToken], u.CreatedAt.Format(time.RFC3339))
	for _, r := range d.Rounds {
		fmt.Fprintf(w, "round %s: %s (%s), created %s ago", r.ID, r.State, r.Access, age(now.Sub(r.CreatedAt)))
		if r.Outcome != "" {
			fmt.Fprintf(w, ", outcome %q", r.Outcome)
		}
		if !r.NextRoundAt.IsZero() {
			fmt.Fprintf(w, ", next round at %s", r.NextRoundAt.Format(time.RFC3339))
		}
		fmt.Fprintln(w)
		t := table(w)
		if !r.Since.IsZero() {
			fmt.Fprintf(w, "  since %s (the start link's: round 1 of time-filtered resources starts there)\n", r.Since.UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(t, "  RESOURCE\tSTATE\tJOB\tJOBS\tRETRIES\tFILES\tPARTS DONE\tBYTES\tACTIVITY\tREASON")
		for _, res := range r.Resources {
			parts, done := 0, 0
			for _, o := range res.Objects {
				parts += o.Parts
				done += o.PartsDone
			}
			files := "-"
			if len(res.Objects) > 0 {
				verified := 0
				for _, o := range res.Objects {
					if o.State == "verified" {
						verified++
					}
				}
				files = fmt.Sprintf("%d/%d", verified, len(res.Objects))
			}
			fmt.Fprintf(t, "  %s\t%s\t%s\t%d\t%d\t%s\t%d/%d\t%d\t%s\t%s\n", res.Name, res.State, dash(res.Job), len(res.Jobs), res.Retries,
				files, done, parts, res.Bytes, Activity(res.StartTime, res.ExportTime, res.TimeFilter), dash(res.Reason))
		}
		t.Flush()
		var errs []string
		for _, res := range r.Resources {
			for _, o := range res.Objects {
				if o.Reason != "" {
					errs = append(errs, fmt.Sprintf("  %s file %d (%s): %s, attempt %d: %s", res.Name, o.Index, o.Source, o.State, o.Attempt, o.Reason))
				}
			}
		}
		if len(errs) > 0 {
			fmt.Fprintln(w, "  errors:")
			fmt.Fprintln(w, strings.Join(errs, "\n"))
		}
		fmt.Fprintln(w)
	}
	return nil
}

// PrintPurge writes a purge report.
func PrintPurge(w io.Writer, r purge.Report) error {
	t := table(w)
	fmt.Fprintf(t, "user\t%s\n", r.User)
	fmt.Fprintf(t, "grant\t%s %s\n", r.Grant, r.GrantError)
	fmt.Fprintf(t, "jobs cancelled\t%d (not cancelled: %d)\n", len(r.Cancelled), len(r.NotCancelled))
	fmt.Fprintf(t, "rounds\t%d\n", r.Rounds)
	fmt.Fprintf(t, "documents deleted\t%d\n", r.Documents)
	fmt.Fprintf(t, "objects deleted\t%d\n", r.Objects)
	return t.Flush()
}

// PrintReplayed writes what a dead-letter replay moved.
func PrintReplayed(w io.Writer, rs []Replayed) error {
	t := table(w)
	fmt.Fprintln(t, "TOPIC\tREPUBLISHED")
	for _, r := range rs {
		fmt.Fprintf(t, "%s\t%d\n", r.Topic, r.Messages)
	}
	return t.Flush()
}

// Activity is the span an export holds, from the export's start (zero: the beginning) to its end (zero:
// still running), with its time filter: "from START to END", "from the beginning to END" (with why, when
// the group takes no time filter), "from START (exporting)" while the export runs, or "-". portctl show,
// the demo consumer's event lines and the devstack summary all say it so.
func Activity(start, end time.Time, timeFilter string) string {
	from := "the beginning"
	if !start.IsZero() {
		from = start.UTC().Format(time.RFC3339)
	}
	switch {
	case !end.IsZero() && timeFilter == store.TimeFilterUnsupported:
		return "from the beginning to " + end.UTC().Format(time.RFC3339) + " (whole: no time filter)"
	case !end.IsZero():
		return "from " + from + " to " + end.UTC().Format(time.RFC3339)
	case timeFilter != "":
		return "from " + from + " (exporting)"
	}
	return "-"
}
