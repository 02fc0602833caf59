package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrUsage means the command line does not name a known command with its arguments.
var ErrUsage = errors.New("usage")

// Run runs one portctl command (args[0]) and writes its output: a table, or JSON with asJSON.
func Run(ctx context.Context, o *Operator, w io.Writer, asJSON bool, args []string) error {
	if len(args) == 0 {
		return ErrUsage
	}
	need := func(n int) error {
		if len(args)-1 != n {
			return fmt.Errorf("%w: %s takes %d argument(s)", ErrUsage, args[0], n)
		}
		return nil
	}
	out := func(v any, table func() error) error {
		if asJSON {
			return JSON(w, v)
		}
		return table()
	}
	switch args[0] {
	case "users":
		if err := need(0); err != nil {
			return err
		}
		rows, err := o.Users(ctx)
		if err != nil {
			return err
		}
		return out(rows, func() error { return PrintUsers(w, rows) })
	case "show":
		if err := need(1); err != nil {
			return err
		}
		d, err := o.Show(ctx, args[1])
		if err != nil {
			return err
		}
		return out(d, func() error { return PrintUser(w, d, o.now()) })
	case "retry":
		if err := need(2); err != nil {
			return err
		}
		round, err := o.Retry(ctx, args[1], args[2])
		if err != nil {
			return err
		}
		return out(map[string]string{"user": args[1], "resource": args[2], "round": round, "state": "pending"}, func() error {
			_, err := fmt.Fprintf(w, "%s of %s is pending again in round %s; initiate request published\n", args[2], args[1], round)
			return err
		})
	case "cancel":
		if err := need(2); err != nil {
			return err
		}
		job, err := o.Cancel(ctx, args[1], args[2])
		if err != nil {
			return err
		}
		return out(map[string]string{"user": args[1], "resource": args[2], "job": job, "state": "cancelled"}, func() error {
			_, err := fmt.Fprintf(w, "job %s of %s cancelled; %s recorded cancelled\n", job, args[1], args[2])
			return err
		})
	case "reset":
		if err := need(1); err != nil {
			return err
		}
		r, err := o.Reset(ctx, args[1])
		if err != nil {
			return err
		}
		return out(r, func() error {
			_, err := fmt.Fprintf(w, "grant of %s: %s %s; token destroyed; round %s closed\n", r.User, r.Grant, r.Error, r.Round)
			return err
		})
	case "purge":
		if err := need(1); err != nil {
			return err
		}
		r, err := o.Purge(ctx, args[1])
		if err != nil {
			return err
		}
		return out(r, func() error { return PrintPurge(w, r) })
	case "stuck":
		if err := need(0); err != nil {
			return err
		}
		r, err := o.Stuck(ctx)
		if err != nil {
			return err
		}
		return out(r, func() error { return PrintStuck(w, r) })
	case "replay-dead-letters":
		rs, err := o.ReplayDeadLetters(ctx, args[1:]...)
		if err != nil {
			return err
		}
		return out(rs, func() error { return PrintReplayed(w, rs) })
	case "replay-initiate":
		if err := need(2); err != nil {
			return err
		}
		if err := o.ReplayInitiate(ctx, args[1], args[2]); err != nil {
			return err
		}
		return out(map[string]string{"user": args[1], "round": args[2], "published": "initiate-request"}, func() error {
			_, err := fmt.Fprintf(w, "initiate request of round %s published\n", args[2])
			return err
		})
	}
	return fmt.Errorf("%w: unknown command %q", ErrUsage, args[0])
}
