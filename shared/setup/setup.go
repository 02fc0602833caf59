// Package setup builds the dependencies of a pipeline process once (ENS's ServerEnv): configuration,
// logger, Firestore store, token store, publisher, task enqueuer, storage and the per-user API client.
// The deployable root builds one Env per process lazily on the first request (never in init), with the
// Needs of its entry point; each step's constructor checks the subset it uses (Require), and tests build
// an Env by hand.
package setup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portability-pipeline/pipeline/shared/config"
	"github.com/portability-pipeline/pipeline/shared/crypto"
	"github.com/portability-pipeline/pipeline/shared/logging"
	"github.com/portability-pipeline/pipeline/shared/oidcauth"
	"github.com/portability-pipeline/pipeline/shared/portability"
	"github.com/portability-pipeline/pipeline/shared/publish"
	"github.com/portability-pipeline/pipeline/shared/store"
	"github.com/portability-pipeline/pipeline/shared/tasks"
	"github.com/portability-pipeline/pipeline/shared/tokens"
	"github.com/portability-pipeline/pipeline/shared/trace"
)

// Env holds the process-wide clients. New builds only what its Needs ask for; a step states the subset
// it uses in its constructor, which refuses an Env without it (Require).
type Env struct {
	Config    *config.Config
	Log       *slog.Logger
	Store     *store.Store
	Tokens    *tokens.Store
	Crypto    crypto.Encrypter
	Publisher publish.Publisher
	Tasks     tasks.Enqueuer
	Storage   *storage.Client
	// API returns the Data Portability API acting with the user's stored token.
	API func(ctx context.Context, user string) (portability.API, error)
	// TaskAuth admits Cloud Tasks calls (built with Needs.TaskAuth, which every Cloud Tasks entry point has).
	TaskAuth *oidcauth.Verifier
	// Tracer makes the span of each delivery (nil: spans for the log lines only, never exported).
	Tracer *trace.Tracer
}

// OAuthConfig is the OAuth client of the pipeline (scopes are set per consent).
func OAuthConfig(c *config.Config) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.OAuth.ClientID,
		ClientSecret: c.OAuth.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: c.OAuth.AuthURL, TokenURL: c.OAuth.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  c.RedirectURL(),
	}
}

// Needs lists what a step uses beyond the configuration and the logger (which every step has): Tokens
// brings the token store, the encrypter and the per-user API. New opens the Firestore store whatever
// the needs (a client connects on its first call).
type Needs struct {
	Store, Tokens, Publisher, Tasks, Storage, TaskAuth bool
	// TaskAudience is the URL the step's task endpoint is reached at (with TaskAuth).
	TaskAudience func(*config.Config) string
}

// New builds an Env from the process environment.
func New(ctx context.Context, n Needs) (*Env, error) {
	cfg, err := config.Load(ctx)
	if err != nil {
		return nil, err
	}
	env := &Env{Config: cfg, Log: logging.New(os.Stderr, cfg.LogLevel)}
	if err := cfg.RequireProject(); err != nil {
		return nil, err
	}
	if env.Tracer, err = trace.New(ctx, trace.Options{Project: cfg.ProjectID, Endpoint: cfg.OTLPEndpoint}); err != nil {
		return nil, err
	}
	fs, err := firestore.NewClient(ctx, cfg.ProjectID)
	if err != nil {
		return nil, fmt.Errorf("firestore: %w", err)
	}
	env.Store = store.New(fs)
	if n.Tokens {
		if err := errors.Join(cfg.RequireTokens(), cfg.RequireOAuthClient()); err != nil {
			return nil, err
		}
		if cfg.Tokens.KeyURI != "" {
			env.Crypto, err = crypto.NewKMSEnvelope(ctx, cfg.Tokens.KeyURI)
		} else {
			env.Crypto, err = crypto.NewLocalKeyset(cfg.Tokens.Keyset)
		}
		if err != nil {
			return nil, err
		}
		env.Tokens = tokens.NewStore(fs, env.Crypto, OAuthConfig(cfg))
		env.API = APIWithTokens(cfg.PortabilityEndpoint, env.Tokens)
	}
	if n.Publisher {
		ps, err := pubsub.NewClient(ctx, cfg.ProjectID)
		if err != nil {
			return nil, fmt.Errorf("pubsub: %w", err)
		}
		env.Publisher = publish.New(ps, cfg.ProjectID)
	}
	if n.Tasks {
		if err := cfg.RequireTasks(); err != nil {
			return nil, err
		}
		var opts []option.ClientOption
		if cfg.Tasks.Endpoint != "" {
			opts = append(opts, option.WithEndpoint(cfg.Tasks.Endpoint), option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		}
		tc, err := cloudtasks.NewClient(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("cloud tasks: %w", err)
		}
		env.Tasks = tasks.New(tc, cfg.Tasks.Queue, cfg.Tasks.InvokerEmail)
	}
	if n.TaskAuth {
		if err := cfg.RequireTasks(); err != nil {
			return nil, err
		}
		env.TaskAuth = oidcauth.New(cfg.Tasks.OIDCIssuer, n.TaskAudience(cfg), cfg.Tasks.InvokerEmail)
	}
	if n.Storage {
		if err := cfg.RequireBucket(); err != nil {
			return nil, err
		}
		// With STORAGE_EMULATOR_HOST set (local stack) the client talks to the emulator; JSON reads work there.
		env.Storage, err = storage.NewClient(ctx, storage.WithJSONReads())
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	return env, nil
}

// APIWithTokens returns an API factory that acts with each user's stored, refreshing token.
func APIWithTokens(endpoint string, ts *tokens.Store) func(ctx context.Context, user string) (portability.API, error) {
	return func(ctx context.Context, user string) (portability.API, error) {
		hc, err := ts.Client(ctx, user)
		if err != nil {
			return nil, err
		}
		return portability.New(ctx, endpoint, hc)
	}
}

// Require reports every dependency of n that env lacks (and the configuration and logger every step
// uses), naming the step: a step's constructor calls it, so a step never starts without what it
// uses.
func (e *Env) Require(step string, n Needs) error {
	if e == nil {
		return fmt.Errorf("%s: no dependencies", step)
	}
	var missing []string
	need := func(ok bool, name string) {
		if !ok {
			missing = append(missing, name)
		}
	}
	need(e.Config != nil, "Config")
	need(e.Log != nil, "Log")
	need(!n.Store || e.Store != nil, "Store")
	if n.Tokens {
		need(e.Tokens != nil, "Tokens")
		need(e.Crypto != nil, "Crypto")
		need(e.API != nil, "API")
	}
	need(!n.Publisher || e.Publisher != nil, "Publisher")
	need(!n.Tasks || e.Tasks != nil, "Tasks")
	need(!n.Storage || e.Storage != nil, "Storage")
	need(!n.TaskAuth || e.TaskAuth != nil, "TaskAuth")
	if len(missing) > 0 {
		return fmt.Errorf("%s needs %s", step, strings.Join(missing, ", "))
	}
	return nil
}

// Lazy builds a value on first use and keeps it; a failed build is retried on the next call. A function
// builds its dependencies with it on the first request, since it must start without the network.
type Lazy[T any] struct {
	mu    sync.Mutex
	done  bool
	v     T
	build func(ctx context.Context) (T, error)
}

// NewLazy returns a Lazy that builds with build.
func NewLazy[T any](build func(ctx context.Context) (T, error)) *Lazy[T] {
	return &Lazy[T]{build: build}
}

// Get returns the value, building it if needed. The build outlives the request that started it.
func (l *Lazy[T]) Get(ctx context.Context) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return l.v, nil
	}
	v, err := l.build(context.WithoutCancel(ctx))
	if err != nil {
		return v, err
	}
	l.v, l.done = v, true
	return v, nil
}
