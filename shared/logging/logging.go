// Package logging writes structured JSON logs that Cloud Logging understands (a "severity" key, the
// message in "message", trace correlation) and carries a logger in the context.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
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
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv, ReplaceAttr: cloudLogging}))
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
