package operator

import (
	"context"
	"fmt"
	"io"

	"github.com/portability-pipeline/pipeline/functions/reconcile"
)

// Stuck lists what the reconciler would repair now, and the closed rounds it would delete for retention,
// without doing any of it (the reconciler's own queries, in a dry run).
func (o *Operator) Stuck(ctx context.Context) (reconcile.Report, error) {
	rec, err := reconcile.New(o.Env, reconcile.Options{DryRun: true, Now: o.Now})
	if err != nil {
		return reconcile.Report{}, err
	}
	return rec.Run(o.context(ctx, "stuck"))
}

// PrintStuck writes the repairs a reconciler run would make.
func PrintStuck(w io.Writer, r reconcile.Report) error {
	t := table(w)
	fmt.Fprintln(t, "KIND\tUSER\tROUND\tRESOURCE\tJOB\tSTATE\tOVERDUE\tREPAIR")
	for _, rp := range r.Repairs {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rp.Kind, rp.User, rp.Round, dash(rp.Resource), dash(rp.Job), rp.State,
			age(rp.Overdue), rp.Action)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d to repair, %d closed round(s) past retention", len(r.Repairs), len(r.Expired))
	if r.OldestOpenRound != "" {
		fmt.Fprintf(w, "; oldest open round %s, %s old", r.OldestOpenRound, age(r.OldestOpenRoundAge))
	}
	if r.Truncated {
		fmt.Fprint(w, "; more left unread (page limit or time budget)")
	}
	_, err := fmt.Fprintln(w)
	return err
}
