package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrUsage means the command line does not name a known command with its arguments.
var ErrUsage = errors.New("usage")

// command is one portctl command: the number of arguments it takes (anyArgs: any), and what it does.
// do returns what the command found or did (written as JSON with -json) and how to write it as a table.
type command struct {
	args int
	do   func(ctx context.Context, o *Operator, w io.Writer, args []string) (result any, table func() error, err error)
}

const anyArgs = -1

// commands are portctl's commands by name; args of do are the command's own (its name left out).
func commands() map[string]command {
	return map[string]command{
		"users": {0, func(ctx context.Context, o *Operator, w io.Writer, _ []string) (any, func() error, error) {
			rows, err := o.Users(ctx)
			return rows, func() error { return PrintUsers(w, rows) }, err
		}},
		"show": {1, func(ctx context.Context, o *Operator, w io.Writer, a []string) (any, func() error, error) {
			d, err := o.Show(ctx, a[0])
			return d, func() error { return PrintUser(w, d, o.now()) }, err
		}},
		"retry": {2, func(ctx context.Context, o *Operator, w io.Writer, a []string) (any, func() error, error) {
			round, err := o.Retry(ctx, a[0], a[1])
			return map[string]string{"user": a[0], "resource": a[1], "round": round, "state": "pending"},
				line(w, "%s of %s is pending again in round %s; initiate request published\n", a[1], a[0], round), err
		}},
		"cancel": {2, func(ctx context.Context, o *Operator, w io.Writer, a []string) (any, func() error, error) {
			job, err := o.Cancel(ctx, a[0], a[1])
			return map[string]string{"user": a[0], "resource": a[1], "job": job, "state": "cancelled"},
				line(w, "job %s of %s cancelled; %s recorded cancelled\n", job, a[0], a[1]), err
		}},
		"reset": {1, func(ctx context.Context, o *Operator, w io.Writer, a []string) (any, func() error, error) {
			r, err := o.Reset(ctx, a[0])
			if err != nil {
				return nil, nil, err
			}
			return r, line(w, "grant of %s: %s %s; token destroyed; round %s closed\n", r.User, r.Grant, r.Error, r.Round), nil
		}},
		"purge": {1, func(ctx context.Context, o *Operator, w io.Writer, a []string) (any, func() error, error) {
			r, err := o.Purge(ctx, a[0])
			return r, func() error { return PrintPurge(w, r) }, err
		}},
		"stuck": {0, func(ctx context.Context, o *Operator, w io.Writer, _ []string) (any, func() error, error) {
			r, err := o.Stuck(ctx)
			return r, func() error { return PrintStuck(w, r) }, err
		}},
		"replay-dead-letters": {anyArgs, func(ctx context.Context, o *Operator, w io.Writer, a []string) (any, func() error, error) {
			rs, err := o.ReplayDeadLetters(ctx, a...)
			return rs, func() error { return PrintReplayed(w, rs) }, err
		}},
		"replay-initiate": {2, func(ctx context.Context, o *Operator, w io.Writer, a []string) (any, func() error, error) {
			err := o.ReplayInitiate(ctx, a[0], a[1])
			return map[string]string{"user": a[0], "round": a[1], "published": "initiate-request"},
				line(w, "initiate request of round %s published\n", a[1]), err
		}},
	}
}

// line is a table that is one formatted line.
func line(w io.Writer, format string, args ...any) func() error {
	return func() error {
		_, err := fmt.Fprintf(w, format, args...)
		return err
	}
}

// Run runs one portctl command (args[0]) and writes its output: a table, or JSON with asJSON.
func Run(ctx context.Context, o *Operator, w io.Writer, asJSON bool, args []string) error {
	if len(args) == 0 {
		return ErrUsage
	}
	c, ok := commands()[args[0]]
	if !ok {
		return fmt.Errorf("%w: unknown command %q", ErrUsage, args[0])
	}
	if c.args != anyArgs && len(args)-1 != c.args {
		return fmt.Errorf("%w: %s takes %d argument(s)", ErrUsage, args[0], c.args)
	}
	result, table, err := c.do(ctx, o, w, args[1:])
	if err != nil {
		return err
	}
	if asJSON {
		return JSON(w, result)
	}
	return table()
}
