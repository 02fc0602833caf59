// Command fakeportability serves the local Data Portability API and Google sign-in stand-in.
//
//	go run ./emulator-test/cmd/fakeportability -addr 127.0.0.1:8090
//
// Logs are JSON lines on stderr with a Cloud Logging severity; tokens, codes and signed URLs are never logged.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
)

func main() {
	if err := run(); err != nil {
		slog.Error("fakeportability", "error", err.Error())
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func run() error {
	var (
		addr          = flag.String("addr", "127.0.0.1:8090", "listen address HOST:PORT")
		baseURL       = flag.String("base-url", "", "external base URL (OIDC issuer, signed URL host); default http://ADDR")
		jobDuration   = flag.Duration("job-duration", 3*time.Second, "virtual time until a job completes")
		archiveSize   = flag.Int64("archive-size", 1<<20, "bytes per data file")
		history       = flag.Duration("history", fakeportability.DefaultHistory, "activity an account has: what a job without startTime covers (a filtered job holds archive-size*range/history)")
		urlsPerJob    = flag.Int("urls-per-job", 2, "files (signed URLs) per COMPLETE job; the last holds archive_browser.json when >1")
		entrySize     = flag.Int64("entry-size", 512<<20, "maximum bytes per zip entry")
		bareJSON      = flag.String("bare-json-resources", "", "comma list of groups whose single-resource jobs give bare JSON files")
		expired403    = flag.Bool("expired-url-403", false, "answer an expired signed URL with 403 ExpiredToken instead of Cloud Storage's 400")
		failedPrecond = flag.Bool("time-based-failed-precondition", false, "answer a time-based initiate inside 24 h with 400 FAILED_PRECONDITION instead of 429")
		tokenTTL      = flag.Duration("access-token-ttl", time.Hour, "access token lifetime (virtual clock)")
		urlTTL        = flag.Duration("url-ttl", 6*time.Hour, "signed URL lifetime (virtual clock)")
		retention     = flag.Duration("retention", 14*24*time.Hour, "how long archives stay downloadable (virtual clock)")
		bandwidth     = flag.Int64("bandwidth", 0, "cap per download in bytes/s (0: none)")
		md5Max        = flag.Int64("md5-max-size", 0, "omit md5 from x-goog-hash above this size (0: always)")
		clientID      = flag.String("client-id", "fake-client-id", "OAuth client ID")
		clientSecret  = flag.String("client-secret", "fake-client-secret", "OAuth client secret")
		redirectURIs  = flag.String("redirect-uris", "", "comma list of allowed redirect URIs (empty: any http(s) URI)")
		logLevel      = flag.String("log-level", "INFO", "DEBUG, INFO, WARN or ERROR")
	)
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.LevelKey:
				a.Key = "severity"
				if a.Value.String() == "WARN" {
					a.Value = slog.StringValue("WARNING")
				}
			case slog.MessageKey:
				a.Key = "message"
			}
			return a
		}}))
	slog.SetDefault(logger)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := *baseURL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	srv := fakeportability.New(fakeportability.Options{
		BaseURL:                     base,
		Clients:                     []fakeportability.Client{{ID: *clientID, Secret: *clientSecret, RedirectURIs: splitList(*redirectURIs)}},
		JobDuration:                 *jobDuration,
		ArchiveSize:                 *archiveSize,
		History:                     *history,
		URLsPerJob:                  *urlsPerJob,
		EntrySize:                   *entrySize,
		BareJSONResources:           splitList(*bareJSON),
		TimeBasedFailedPrecondition: *failedPrecond,
		ExpiredURL403:               *expired403,
		AccessTokenTTL:              *tokenTTL,
		URLTTL:                      *urlTTL,
		Retention:                   *retention,
		BandwidthLimit:              *bandwidth,
		MD5MaxSize:                  *md5Max,
		Logger:                      logger,
	})
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
	}()
	logger.Info("serving", "addr", ln.Addr().String(), "baseURL", base, "api", base+"/v1/", "auth", base+"/o/oauth2/v2/auth")
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
