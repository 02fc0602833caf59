// Package config reads the pipeline's configuration from the environment (go-envconfig).
//
// Every function uses the same Config; fields a function does not need may stay at their defaults, and
// each function calls the Require* method for the parts it uses, so a missing value is reported once, at
// start-up, with its variable name.
package config

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/portability-pipeline/pipeline/shared/copyengine"
)

// Config is the whole configuration of a pipeline process.
type Config struct {
	ProjectID string `env:"PROJECT_ID"`
	LogLevel  string `env:"LOG_LEVEL, default=INFO"`
	// OTLPEndpoint is where spans go over OTLP/HTTP (shared/trace): Cloud Trace's
	// https://telemetry.googleapis.com in production; empty (local stacks, tests) exports nothing.
	OTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`

	Topics    Topics
	Tasks     Tasks
	OAuth     OAuth
	Tokens    Tokens
	Export    Export
	Webhook   Webhook
	Reconcile Reconcile

	// PortabilityEndpoint is the base URL of the Data Portability API.
	PortabilityEndpoint string `env:"PORTABILITY_ENDPOINT, default=https://dataportability.googleapis.com/"`
	// Bucket receives the archives.
	Bucket string `env:"BUCKET"`
	// ObjectPrefix is the first path element of every archive object.
	ObjectPrefix string `env:"OBJECT_PREFIX, default=exports"`
}

// Topics names the Pub/Sub topics (short names, in PROJECT_ID).
type Topics struct {
	Initiate string `env:"TOPIC_INITIATE, default=initiate-requests"`
	Jobs     string `env:"TOPIC_JOBS, default=archive-jobs"`
	Transfer string `env:"TOPIC_TRANSFER, default=transfer-parts"`
	Reset    string `env:"TOPIC_RESET, default=reset-requests"`
	Events   string `env:"TOPIC_EVENTS, default=export-events"`
}

// Webhook configures the optional HTTPS delivery of export events (functions/webhook).
type Webhook struct {
	// URL receives a signed POST per event.
	URL string `env:"WEBHOOK_URL"`
	// Secret is the HMAC key of the signature (a secret, at least 32 characters).
	Secret string `env:"WEBHOOK_SECRET"`
}

// RequireWebhook checks what the webhook function needs.
func (c *Config) RequireWebhook() error {
	if err := missing("WEBHOOK_URL", c.Webhook.URL, "WEBHOOK_SECRET", c.Webhook.Secret); err != nil {
		return err
	}
	if len(c.Webhook.Secret) < 32 {
		return fmt.Errorf("WEBHOOK_SECRET must be at least 32 characters")
	}
	return nil
}

// Tasks configures Cloud Tasks and the OIDC check of the calls it makes.
type Tasks struct {
	// Queue is projects/P/locations/L/queues/Q.
	Queue string `env:"TASKS_QUEUE"`
	// InvokerEmail is the service account whose OIDC token every task carries.
	InvokerEmail string `env:"TASKS_INVOKER_EMAIL"`
	// PollURL and InitiateURL are the HTTP entry points tasks call; each is also the token audience.
	PollURL     string `env:"POLL_TASK_URL"`
	InitiateURL string `env:"INITIATE_TASK_URL"`
	// OIDCIssuer issues the tokens (Google in production, the stack's issuer locally).
	OIDCIssuer string `env:"OIDC_ISSUER, default=https://accounts.google.com"`
	// Endpoint overrides the Cloud Tasks API endpoint (the local stand-in); empty in production.
	Endpoint string `env:"TASKS_ENDPOINT"`
	// PollLadder is the delay before each successive state check of a job; the last step repeats.
	PollLadder []time.Duration `env:"POLL_LADDER, default=5m,10m,20m,40m,60m"`
}

// OAuth configures the Google sign-in and the links the operator's app signs.
type OAuth struct {
	ClientID     string `env:"OAUTH_CLIENT_ID"`
	ClientSecret string `env:"OAUTH_CLIENT_SECRET"`
	AuthURL      string `env:"OAUTH_AUTH_URL, default=https://accounts.google.com/o/oauth2/v2/auth"`
	TokenURL     string `env:"OAUTH_TOKEN_URL, default=https://oauth2.googleapis.com/token"`
	RevokeURL    string `env:"OAUTH_REVOKE_URL, default=https://oauth2.googleapis.com/revoke"`
	// PublicURL is where the oauthcallback function is reached; the redirect URI is PublicURL + "/callback".
	PublicURL string `env:"PUBLIC_URL"`
	// StartLinkKey is the keyset that signs the start and status links the operator's app gives its
	// users (a secret): "ID:SECRET", or "ID:SECRET,ID:SECRET" (current, previous) during a rotation
	// (shared/startlink.ParseKeyset).
	StartLinkKey string `env:"START_LINK_KEY"`
	// StateTTL bounds the time between the redirect to consent and the callback.
	StateTTL time.Duration `env:"OAUTH_STATE_TTL, default=15m"`
	// ReturnURL is the app's page the person is sent back to after consent (and linked from every page
	// that says "go back to the app"). Empty: the return page shows the export's status in the same
	// browser.
	ReturnURL string `env:"RETURN_URL"`
	// StatusLinkTTL is the longest lifetime of a status link the app signs: it is exchanged for a
	// same-browser session on first use, so it only has to outlive the redirect.
	StatusLinkTTL time.Duration `env:"STATUS_LINK_TTL, default=10m"`
	// SessionTTL is how long the status page stays open in the browser that used a status link (or
	// consented) before the person comes back through the app.
	SessionTTL time.Duration `env:"STATUS_SESSION_TTL, default=1h"`
}

// Tokens configures the envelope encryption of stored tokens: exactly one of KeyURI and Keyset.
type Tokens struct {
	// KeyURI is a Tink KMS key URI, gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K.
	KeyURI string `env:"TOKEN_KEY_URI"`
	// Keyset is a cleartext Tink keyset (JSON), for local stacks only.
	Keyset string `env:"TOKEN_KEYSET"`
}

// Export configures the shape of the work.
type Export struct {
	// PartSize is the byte length of one transfer part.
	PartSize int64 `env:"PART_SIZE, default=268435456"`
	// TimeBasedHorizon is how long rounds of a time-based grant continue before the final reset.
	TimeBasedHorizon time.Duration `env:"TIME_BASED_HORIZON, default=720h"`
	// InitiateLease is how long a claimed initiate or retry blocks another attempt (crash recovery).
	InitiateLease time.Duration `env:"INITIATE_LEASE, default=2m"`
	// RoundOverlap is how far before the previous round's exportTime a later round of a time-based grant
	// starts (resources with time filters only). 0 gives rounds that meet exactly; an app that prefers
	// to deduplicate a little over trusting the boundary sets a few minutes.
	RoundOverlap time.Duration `env:"ROUND_OVERLAP, default=0s"`
	// MaxRetries is how many times a FAILED job is retried (the API allows 3).
	MaxRetries int `env:"MAX_JOB_RETRIES, default=3"`
	// MaxVerifyAttempts is how often an archive is copied again after a checksum mismatch.
	MaxVerifyAttempts int `env:"MAX_VERIFY_ATTEMPTS, default=3"`
	// ArchiveURLHosts is the allow-list of hosts signed archive URLs may name (https only; an entry
	// "http://host:port" allows plain http to that host, for a local stand-in). A URL elsewhere, or a
	// redirect to another host, fails the file with a reason.
	ArchiveURLHosts []string `env:"ARCHIVE_URL_HOSTS, default=storage.googleapis.com"`
	// MaxFileSize is the largest archive file (bytes) the transfer plans; a larger probed size fails the
	// file with a reason instead of planning an absurd number of parts (default 256 GiB).
	MaxFileSize int64 `env:"MAX_ARCHIVE_FILE_SIZE, default=274877906944"`
	// FinishReadBudget and FinishTimeBudget bound one delivery of a resource's finishing (its manifest):
	// once it has read this many bytes of archive directories, or spent this long, it describes no more
	// archives and hands the rest to another message, so no archive can push a delivery past the 540 s
	// limit of an event-driven function.
	FinishReadBudget int64         `env:"FINISH_READ_BUDGET, default=536870912"`
	FinishTimeBudget time.Duration `env:"FINISH_TIME_BUDGET, default=3m"`

	// urlPolicy is ArchiveURLHosts parsed once by Load (see URLPolicy).
	urlPolicy *copyengine.URLPolicy
}

// URLPolicy returns the allow-list of signed archive URLs: the one Load parsed and validated, or, for a
// Config built without Load, ArchiveURLHosts parsed now.
func (e Export) URLPolicy() *copyengine.URLPolicy {
	if e.urlPolicy != nil {
		return e.urlPolicy
	}
	p, err := copyengine.NewURLPolicy(e.ArchiveURLHosts)
	if err != nil {
		panic(err) // Load refuses such a configuration
	}
	return p
}

// Reconcile configures the reconciler (functions/reconcile): when work counts as stuck, how much one run
// may do, and the limits it enforces on jobs, rounds and what is kept.
type Reconcile struct {
	// URL is where Cloud Scheduler calls the reconciler; it is also the OIDC token's audience.
	URL string `env:"RECONCILE_URL"`
	// InvokerEmail is the service account whose OIDC token the scheduler's calls carry.
	InvokerEmail string `env:"RECONCILE_INVOKER_EMAIL"`
	// Grace is how long work may be past its deadline before it is re-driven: longer than a Pub/Sub
	// redelivery or a Cloud Tasks retry usually takes, so the reconciler rarely races a live hand-off
	// (and when it does, the steps' idempotence absorbs the duplicate).
	Grace time.Duration `env:"RECONCILE_GRACE, default=15m"`
	// Budget bounds one run's time; PageSize and MaxPages bound each query's reads.
	Budget   time.Duration `env:"RECONCILE_BUDGET, default=4m"`
	PageSize int           `env:"RECONCILE_PAGE_SIZE, default=100"`
	MaxPages int           `env:"RECONCILE_MAX_PAGES, default=5"`
	// MaxJobAge: a job IN_PROGRESS longer is cancelled (where the API allows) and its resource failed.
	// Google says exports take hours to days; a week is far past that.
	MaxJobAge time.Duration `env:"MAX_JOB_AGE, default=168h"`
	// MaxRoundAge: an exporting round older than this has its unfinished resources failed, so no round
	// stays open for ever. Google keeps an export's files 14 days; past that nothing can be fetched.
	MaxRoundAge time.Duration `env:"MAX_ROUND_AGE, default=336h"`
	// Retention is how long a closed round and everything below it (resources, files' records, parts, its
	// published events) are kept before the reconciler deletes them.
	Retention time.Duration `env:"ROUND_RETENTION, default=720h"`
}

// RequireReconcile checks what the reconciler's entry point needs.
func (c *Config) RequireReconcile() error {
	return missing("RECONCILE_URL", c.Reconcile.URL, "RECONCILE_INVOKER_EMAIL", c.Reconcile.InvokerEmail)
}

// Load reads the configuration from the process environment.
func Load(ctx context.Context) (*Config, error) {
	return LoadFrom(ctx, envconfig.OsLookuper())
}

// LoadFrom reads the configuration through a lookuper (tests use envconfig.MapLookuper).
func LoadFrom(ctx context.Context, l envconfig.Lookuper) (*Config, error) {
	var c Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: l}); err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) validate() error {
	if len(c.Tasks.PollLadder) == 0 {
		return fmt.Errorf("POLL_LADDER needs at least one delay")
	}
	for _, d := range c.Tasks.PollLadder {
		if d <= 0 {
			return fmt.Errorf("POLL_LADDER delays must be positive, got %s", d)
		}
	}
	if c.Export.PartSize < 1<<20 {
		return fmt.Errorf("PART_SIZE must be at least 1 MiB, got %d", c.Export.PartSize)
	}
	if c.Export.RoundOverlap < 0 || c.Export.RoundOverlap > 24*time.Hour {
		return fmt.Errorf("ROUND_OVERLAP must be between 0 and 24h, got %s", c.Export.RoundOverlap)
	}
	policy, err := copyengine.NewURLPolicy(c.Export.ArchiveURLHosts)
	if err != nil {
		return fmt.Errorf("ARCHIVE_URL_HOSTS: %w", err)
	}
	c.Export.urlPolicy = policy
	if c.Export.MaxFileSize < 1 {
		return fmt.Errorf("MAX_ARCHIVE_FILE_SIZE must be positive, got %d", c.Export.MaxFileSize)
	}
	if c.Export.MaxRetries < 0 || c.Export.MaxRetries > 3 {
		return fmt.Errorf("MAX_JOB_RETRIES must be 0..3 (the API allows 3), got %d", c.Export.MaxRetries)
	}
	if c.OAuth.StatusLinkTTL < time.Minute || c.OAuth.StatusLinkTTL > time.Hour {
		return fmt.Errorf("STATUS_LINK_TTL must be between 1m and 1h (a status link only has to outlive the redirect from the app), got %s", c.OAuth.StatusLinkTTL)
	}
	if c.OAuth.SessionTTL < 5*time.Minute || c.OAuth.SessionTTL > 24*time.Hour {
		return fmt.Errorf("STATUS_SESSION_TTL must be between 5m and 24h, got %s", c.OAuth.SessionTTL)
	}
	if c.Export.MaxVerifyAttempts < 1 {
		return fmt.Errorf("MAX_VERIFY_ATTEMPTS must be at least 1")
	}
	if c.Export.FinishReadBudget < 1 {
		return fmt.Errorf("FINISH_READ_BUDGET must be at least 1 byte, got %d", c.Export.FinishReadBudget)
	}
	// A finishing delivery must leave time for the manifest's assembly inside the 540 s limit.
	if c.Export.FinishTimeBudget <= 0 || c.Export.FinishTimeBudget > 6*time.Minute {
		return fmt.Errorf("FINISH_TIME_BUDGET must be more than 0 and at most 6m, got %s", c.Export.FinishTimeBudget)
	}
	rc := c.Reconcile
	if rc.Grace <= 0 || rc.Budget <= 0 || rc.PageSize < 1 || rc.MaxPages < 1 {
		return fmt.Errorf("RECONCILE_GRACE, RECONCILE_BUDGET, RECONCILE_PAGE_SIZE and RECONCILE_MAX_PAGES must be positive")
	}
	if rc.MaxJobAge <= 0 || rc.MaxRoundAge < rc.MaxJobAge {
		return fmt.Errorf("MAX_JOB_AGE must be positive and MAX_ROUND_AGE at least MAX_JOB_AGE (got %s, %s)", rc.MaxJobAge, rc.MaxRoundAge)
	}
	if rc.Retention < time.Hour {
		return fmt.Errorf("ROUND_RETENTION must be at least 1h, got %s", rc.Retention)
	}
	return nil
}

// missing reports the names of empty required values.
func missing(pairs ...string) error {
	var names []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			names = append(names, pairs[i])
		}
	}
	if len(names) > 0 {
		return fmt.Errorf("missing configuration: %s", strings.Join(names, ", "))
	}
	return nil
}

// RequireProject checks the values every function needs.
func (c *Config) RequireProject() error { return missing("PROJECT_ID", c.ProjectID) }

// RequireTokens checks the token encryption settings.
func (c *Config) RequireTokens() error {
	switch {
	case c.Tokens.KeyURI != "" && c.Tokens.Keyset != "":
		return fmt.Errorf("set only one of TOKEN_KEY_URI and TOKEN_KEYSET")
	case c.Tokens.KeyURI == "" && c.Tokens.Keyset == "":
		return fmt.Errorf("missing configuration: TOKEN_KEY_URI (or TOKEN_KEYSET for a local stack)")
	}
	return nil
}

// RequireOAuthClient checks what token refresh and exchange need.
func (c *Config) RequireOAuthClient() error {
	return missing("OAUTH_CLIENT_ID", c.OAuth.ClientID, "OAUTH_CLIENT_SECRET", c.OAuth.ClientSecret)
}

// RequireCallback checks what the oauthcallback function needs beyond the client.
func (c *Config) RequireCallback() error {
	if err := c.RequireOAuthClient(); err != nil {
		return err
	}
	if err := missing("PUBLIC_URL", c.OAuth.PublicURL, "START_LINK_KEY", c.OAuth.StartLinkKey); err != nil {
		return err
	}
	// START_LINK_KEY's form (a keyset, each secret at least 32 characters) is startlink.ParseKeyset's to
	// check: oauthcallback.NewHandler refuses what it refuses.
	pub, err := url.Parse(c.OAuth.PublicURL)
	if err != nil || pub.Host == "" || pub.Scheme != "https" && pub.Scheme != "http" {
		return fmt.Errorf("PUBLIC_URL %q must be an absolute https URL (http only for a local stack)", c.OAuth.PublicURL)
	}
	if c.OAuth.ReturnURL != "" {
		ret, err := url.Parse(c.OAuth.ReturnURL)
		if err != nil || ret.Host == "" || ret.Scheme != "https" && !(ret.Scheme == "http" && pub.Scheme == "http") {
			return fmt.Errorf("RETURN_URL %q must be an absolute https URL (http only when PUBLIC_URL is http)", c.OAuth.ReturnURL)
		}
	}
	return nil
}

// RequireTasks checks what enqueuing and verifying Cloud Tasks need.
func (c *Config) RequireTasks() error {
	return missing("TASKS_QUEUE", c.Tasks.Queue, "TASKS_INVOKER_EMAIL", c.Tasks.InvokerEmail,
		"POLL_TASK_URL", c.Tasks.PollURL, "INITIATE_TASK_URL", c.Tasks.InitiateURL)
}

// RequireBucket checks the archive bucket.
func (c *Config) RequireBucket() error { return missing("BUCKET", c.Bucket) }

// RedirectURL is the OAuth redirect URI registered for the client.
func (c *Config) RedirectURL() string { return strings.TrimRight(c.OAuth.PublicURL, "/") + "/callback" }

// PollDelay returns the delay before state check number n (0-based); the last step repeats.
func (t Tasks) PollDelay(n int) time.Duration {
	if n >= len(t.PollLadder) {
		n = len(t.PollLadder) - 1
	}
	if n < 0 {
		n = 0
	}
	return t.PollLadder[n]
}
