// Package logging writes structured JSON logs that Cloud Logging understands (a "severity" key, the
// message in "message", trace correlation fields added by shared/trace, and on ERROR lines the source
// location) and carries a logger in the context.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
)

type ctxKey struct{}

// New returns a JSON logger writing to w at the given level name (DEBUG, INFO, WARNING, ERROR).
func New(w io.Writer, level string) *slog.Logger {
	var lv slog.Level
	switch strings.ToUpper(level) {
	case "DEBUG":
		lv = slog.LevelDebug
	case "WARN", "WARNING":
		lv = slog.LevelWarn
	case "ERROR":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	return slog.New(&unique{inner: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv, ReplaceAttr: cloudLogging})})
}

// unique keeps one value per key on a line (the latest: a step that narrows "resource" replaces the
// message's empty one), so every line is JSON with distinct keys.
type unique struct {
	inner slog.Handler
	attrs []slog.Attr
}

func (u *unique) Enabled(ctx context.Context, l slog.Level) bool { return u.inner.Enabled(ctx, l) }

func (u *unique) WithAttrs(as []slog.Attr) slog.Handler {
	return &unique{inner: u.inner, attrs: merge(u.attrs, as)}
}

func (u *unique) WithGroup(name string) slog.Handler {
	return u.inner.WithAttrs(u.attrs).WithGroup(name)
}

func (u *unique) Handle(ctx context.Context, r slog.Record) error {
	own := make([]slog.Attr, 0, r.NumAttrs()+1)
	r.Attrs(func(a slog.Attr) bool { own = append(own, a); return true })
	if r.Level >= slog.LevelError && r.PC != 0 {
		own = append(own, sourceLocation(r.PC))
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(merge(u.attrs, own)...)
	return u.inner.Handle(ctx, out)
}

// KeySourceLocation is Cloud Logging's field for the code that wrote a line (LogEntrySourceLocation).
const KeySourceLocation = "logging.googleapis.com/sourceLocation"

// sourceLocation names the caller that logged at pc: Error Reporting and the log viewer link an error
// line to its code through it. The line is a string, as Cloud Logging's structured-logging example has it
// (the field is an int64, which proto3 JSON writes as a string).
func sourceLocation(pc uintptr) slog.Attr {
	f, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	return slog.Group(KeySourceLocation, "file", f.File, "line", strconv.Itoa(f.Line), "function", f.Function)
}

// merge appends as to base, a key already present taking the new value in its place.
func merge(base, as []slog.Attr) []slog.Attr {
	out := append(make([]slog.Attr, 0, len(base)+len(as)), base...)
	for _, a := range as {
		replaced := false
		for i := range out {
			if out[i].Key == a.Key {
				out[i], replaced = a, true
				break
			}
		}
		if !replaced {
			out = append(out, a)
		}
	}
	return out
}

// Default is the process logger: JSON on stderr at LOG_LEVEL.
func Default() *slog.Logger { return New(os.Stderr, os.Getenv("LOG_LEVEL")) }

// cloudLogging renames slog's keys to Cloud Logging's structured-log fields.
func cloudLogging(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		a.Key = "severity"
		switch lv := a.Value.Any().(slog.Level); {
		case lv >= slog.LevelError:
			a.Value = slog.StringValue("ERROR")
		case lv >= slog.LevelWarn:
			a.Value = slog.StringValue("WARNING")
		case lv >= slog.LevelInfo:
			a.Value = slog.StringValue("INFO")
		default:
			a.Value = slog.StringValue("DEBUG")
		}
	case slog.MessageKey:
		a.Key = "message"
	case slog.TimeKey:
		a.Key = "time"
	}
	return a
}

// WithLogger returns a context carrying l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// FromContext returns the context's logger, or the default one.
func FromContext(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return Default()
}

// With adds attributes to the context's logger (user, round, resource, job...).
func With(ctx context.Context, args ...any) context.Context {
	return WithLogger(ctx, FromContext(ctx).With(args...))
}
