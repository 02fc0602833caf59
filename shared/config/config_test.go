package config_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/portability-pipeline/pipeline/shared/config"
)

func load(t *testing.T, vars map[string]string) (*config.Config, error) {
	t.Helper()
	return config.LoadFrom(context.Background(), envconfig.MapLookuper(vars))
}

func mustLoad(t *testing.T, vars map[string]string) *config.Config {
	t.Helper()
	c, err := load(t, vars)
	if err != nil {
		t.Fatalf("LoadFrom(%v): %v", vars, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, nil)
	checks := []struct {
		name      string
		got, want any
	}{
		{"LOG_LEVEL", c.LogLevel, "INFO"},
		{"TOPIC_INITIATE", c.Topics.Initiate, "initiate-requests"},
		{"TOPIC_JOBS", c.Topics.Jobs, "archive-jobs"},
		{"TOPIC_TRANSFER", c.Topics.Transfer, "transfer-parts"},
		{"TOPIC_RESET", c.Topics.Reset, "reset-requests"},
		{"OBJECT_PREFIX", c.ObjectPrefix, "exports"},
		{"OIDC_ISSUER", c.Tasks.OIDCIssuer, "https://accounts.google.com"},
		{"PORTABILITY_ENDPOINT", c.PortabilityEndpoint, "https://dataportability.googleapis.com/"},
		{"OAUTH_AUTH_URL", c.OAuth.AuthURL, "https://accounts.google.com/o/oauth2/v2/auth"},
		{"OAUTH_TOKEN_URL", c.OAuth.TokenURL, "https://oauth2.googleapis.com/token"},
		{"OAUTH_REVOKE_URL", c.OAuth.RevokeURL, "https://oauth2.googleapis.com/revoke"},
		{"POLL_LADDER", c.Tasks.PollLadder, []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 60 * time.Minute}},
		{"PART_SIZE", c.Export.PartSize, int64(256 << 20)},
		{"TIME_BASED_HORIZON", c.Export.TimeBasedHorizon, 720 * time.Hour},
		{"MAX_JOB_RETRIES", c.Export.MaxRetries, 3},
		{"MAX_VERIFY_ATTEMPTS", c.Export.MaxVerifyAttempts, 3},
		{"MAX_ARCHIVE_FILE_SIZE", c.Export.MaxFileSize, int64(256 << 30)},
		{"INITIATE_LEASE", c.Export.InitiateLease, 2 * time.Minute},
		{"FINISH_READ_BUDGET", c.Export.FinishReadBudget, int64(512 << 20)},
		{"FINISH_TIME_BUDGET", c.Export.FinishTimeBudget, 3 * time.Minute},
		{"OAUTH_STATE_TTL", c.OAuth.StateTTL, 15 * time.Minute},
		{"PROJECT_ID", c.ProjectID, ""},
		{"BUCKET", c.Bucket, ""},
		{"TOKEN_KEY_URI", c.Tokens.KeyURI, ""},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if got := c.RedirectURL(); got != "/callback" {
		t.Errorf("RedirectURL without PUBLIC_URL = %q", got)
	}
}

func TestRedirectURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"https://x.example/fn", "https://x.example/fn/"} {
		if got := mustLoad(t, map[string]string{"PUBLIC_URL": u}).RedirectURL(); got != "https://x.example/fn/callback" {
			t.Errorf("PUBLIC_URL %q: RedirectURL %q", u, got)
		}
	}
}

// TestRequired checks that each Require* method names exactly the missing variables.
func TestRequired(t *testing.T) {
	t.Parallel()
	tasks := map[string]string{"TASKS_QUEUE": "projects/p/locations/l/queues/q", "TASKS_INVOKER_EMAIL": "i@p.iam.gserviceaccount.com",
		"POLL_TASK_URL": "https://poll", "INITIATE_TASK_URL": "https://initiate"}
	callback := map[string]string{"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "secret", "PUBLIC_URL": "https://x",
		"START_LINK_KEY": strings.Repeat("k", 32)}
	without := func(m map[string]string, drop ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for _, d := range drop {
			delete(out, d)
		}
		return out
	}
	tests := []struct {
		name    string
		vars    map[string]string
		require func(*config.Config) error
		// names the error must mention; nil: no error expected.
		names []string
		// absent lists names the error must not mention.
		absent []string
	}{
		{"project set", map[string]string{"PROJECT_ID": "p"}, (*config.Config).RequireProject, nil, nil},
		{"project missing", nil, (*config.Config).RequireProject, []string{"PROJECT_ID"}, nil},
		{"bucket missing", nil, (*config.Config).RequireBucket, []string{"BUCKET"}, nil},
		{"bucket set", map[string]string{"BUCKET": "b"}, (*config.Config).RequireBucket, nil, nil},
		{"tasks complete", tasks, (*config.Config).RequireTasks, nil, nil},
		{"tasks: nothing set", nil, (*config.Config).RequireTasks,
			[]string{"TASKS_QUEUE", "TASKS_INVOKER_EMAIL", "POLL_TASK_URL", "INITIATE_TASK_URL"}, nil},
		{"tasks: queue missing", without(tasks, "TASKS_QUEUE"), (*config.Config).RequireTasks,
			[]string{"TASKS_QUEUE"}, []string{"TASKS_INVOKER_EMAIL", "POLL_TASK_URL", "INITIATE_TASK_URL"}},
		{"tasks: invoker and poll URL missing", without(tasks, "TASKS_INVOKER_EMAIL", "POLL_TASK_URL"), (*config.Config).RequireTasks,
			[]string{"TASKS_INVOKER_EMAIL", "POLL_TASK_URL"}, []string{"TASKS_QUEUE", "INITIATE_TASK_URL"}},
		{"tasks: initiate URL blank", func() map[string]string { m := without(tasks); m["INITIATE_TASK_URL"] = "  "; return m }(),
			(*config.Config).RequireTasks, []string{"INITIATE_TASK_URL"}, []string{"POLL_TASK_URL"}},
		{"oauth client complete", callback, (*config.Config).RequireOAuthClient, nil, nil},
		{"oauth client: secret missing", without(callback, "OAUTH_CLIENT_SECRET"), (*config.Config).RequireOAuthClient,
			[]string{"OAUTH_CLIENT_SECRET"}, []string{"OAUTH_CLIENT_ID"}},
		{"callback complete", callback, (*config.Config).RequireCallback, nil, nil},
		{"callback: client ID missing", without(callback, "OAUTH_CLIENT_ID"), (*config.Config).RequireCallback, []string{"OAUTH_CLIENT_ID"}, nil},
		{"callback: public URL missing", without(callback, "PUBLIC_URL"), (*config.Config).RequireCallback,
			[]string{"PUBLIC_URL"}, []string{"START_LINK_KEY"}},
		{"callback: start link key missing", without(callback, "START_LINK_KEY"), (*config.Config).RequireCallback,
			[]string{"START_LINK_KEY"}, []string{"PUBLIC_URL"}},
		{"callback: return URL over http", func() map[string]string { m := without(callback); m["RETURN_URL"] = "http://app.example/"; return m }(),
			(*config.Config).RequireCallback, []string{"RETURN_URL", "https"}, nil},
		{"callback: return URL relative", func() map[string]string { m := without(callback); m["RETURN_URL"] = "/imports"; return m }(),
			(*config.Config).RequireCallback, []string{"RETURN_URL"}, nil},
		{"callback: return URL", func() map[string]string {
			m := without(callback)
			m["RETURN_URL"] = "https://app.example/imports"
			return m
		}(),
			(*config.Config).RequireCallback, nil, nil},
		{"callback: local stack over http", func() map[string]string {
			m := without(callback)
			m["PUBLIC_URL"], m["RETURN_URL"] = "http://127.0.0.1:8080", "http://127.0.0.1:3000/"
			return m
		}(), (*config.Config).RequireCallback, nil, nil},
		{"callback: public URL without scheme", func() map[string]string { m := without(callback); m["PUBLIC_URL"] = "fn.example/x"; return m }(),
			(*config.Config).RequireCallback, []string{"PUBLIC_URL"}, nil},
		{"tokens: key URI", map[string]string{"TOKEN_KEY_URI": "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k"}, (*config.Config).RequireTokens, nil, nil},
		{"tokens: keyset", map[string]string{"TOKEN_KEYSET": "{}"}, (*config.Config).RequireTokens, nil, nil},
		{"tokens: neither", nil, (*config.Config).RequireTokens, []string{"TOKEN_KEY_URI", "TOKEN_KEYSET"}, nil},
		{"tokens: both", map[string]string{"TOKEN_KEY_URI": "gcp-kms://x", "TOKEN_KEYSET": "{}"}, (*config.Config).RequireTokens,
			[]string{"TOKEN_KEY_URI", "TOKEN_KEYSET", "only one"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.require(mustLoad(t, tc.vars))
			if tc.names == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one naming %v", tc.names)
			}
			for _, n := range tc.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error %q does not name %s", err, n)
				}
			}
			for _, n := range tc.absent {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q names %s, which is set", err, n)
				}
			}
		})
	}
}

func TestPollLadder(t *testing.T) {
	t.Parallel()
	s := time.Second
	tests := []struct {
		ladder string
		// want[n] is PollDelay(n); the last one must repeat for larger n.
		want []time.Duration
	}{
		{"1s,2s,4s", []time.Duration{s, 2 * s, 4 * s, 4 * s, 4 * s, 4 * s}},
		{"30s", []time.Duration{30 * s, 30 * s, 30 * s}},
		{"5m,1h30m", []time.Duration{5 * time.Minute, 90 * time.Minute, 90 * time.Minute}},
		{"1s, 2s", []time.Duration{s, 2 * s, 2 * s}},
		{"3s,1s", []time.Duration{3 * s, s, s}},
	}
	for _, tc := range tests {
		t.Run(tc.ladder, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, map[string]string{"POLL_LADDER": tc.ladder})
			for n, want := range tc.want {
				if got := c.Tasks.PollDelay(n); got != want {
					t.Errorf("PollDelay(%d) = %s, want %s", n, got, want)
				}
			}
			if got := c.Tasks.PollDelay(1 << 30); got != tc.want[len(tc.want)-1] {
				t.Errorf("PollDelay(huge) = %s, want the last step", got)
			}
			if got := c.Tasks.PollDelay(-1); got != tc.want[0] {
				t.Errorf("PollDelay(-1) = %s, want the first step", got)
			}
		})
	}
}

// fields maps variables to the Config fields go-envconfig names in its parse errors.
var fields = map[string]string{"POLL_LADDER": "PollLadder", "PART_SIZE": "PartSize", "MAX_JOB_RETRIES": "MaxRetries",
	"MAX_VERIFY_ATTEMPTS": "MaxVerifyAttempts", "ARCHIVE_URL_HOSTS": "ArchiveURLHosts", "MAX_ARCHIVE_FILE_SIZE": "MaxFileSize", "INITIATE_LEASE": "InitiateLease", "TIME_BASED_HORIZON": "TimeBasedHorizon",
	"FINISH_READ_BUDGET": "FinishReadBudget", "FINISH_TIME_BUDGET": "FinishTimeBudget"}

func TestInvalidValues(t *testing.T) {
	t.Parallel()
	// Values that do not parse are reported by go-envconfig with the Go field (Export: PartSize), values
	// that parse but make no sense by validate, with the variable; either way the load fails.
	tests := []struct {
		name, key, value string
		ok               bool
	}{
		{"ladder zero step", "POLL_LADDER", "1s,0s,4s", false},
		{"ladder negative step", "POLL_LADDER", "-1s", false},
		{"ladder not durations", "POLL_LADDER", "soon,later", false},
		{"ladder without unit", "POLL_LADDER", "5", false},
		{"ladder ok", "POLL_LADDER", "1m", true},
		{"part size not a number", "PART_SIZE", "256MiB", false},
		{"part size zero", "PART_SIZE", "0", false},
		{"part size negative", "PART_SIZE", "-1048576", false},
		{"part size below 1 MiB", "PART_SIZE", "1048575", false},
		{"part size fractional", "PART_SIZE", "1.5e6", false},
		{"part size 1 MiB", "PART_SIZE", "1048576", true},
		{"part size 5 GiB", "PART_SIZE", "5368709120", true},
		{"retries negative", "MAX_JOB_RETRIES", "-1", false},
		{"retries above the API's 3", "MAX_JOB_RETRIES", "4", false},
		{"retries not a number", "MAX_JOB_RETRIES", "three", false},
		{"retries zero", "MAX_JOB_RETRIES", "0", true},
		{"retries three", "MAX_JOB_RETRIES", "3", true},
		{"verify attempts zero", "MAX_VERIFY_ATTEMPTS", "0", false},
		{"archive hosts with a path", "ARCHIVE_URL_HOSTS", "storage.googleapis.com/bucket", false},
		{"archive hosts empty entry only", "ARCHIVE_URL_HOSTS", " ", false},
		{"archive hosts local http", "ARCHIVE_URL_HOSTS", "storage.googleapis.com,http://127.0.0.1:8090", true},
		{"max file size zero", "MAX_ARCHIVE_FILE_SIZE", "0", false},
		{"max file size 1 TiB", "MAX_ARCHIVE_FILE_SIZE", "1099511627776", true},
		{"lease not a duration", "INITIATE_LEASE", "2", false},
		{"horizon not a duration", "TIME_BASED_HORIZON", "30d", false},
		{"finish read budget zero", "FINISH_READ_BUDGET", "0", false},
		{"finish read budget one byte", "FINISH_READ_BUDGET", "1", true},
		{"finish time budget zero", "FINISH_TIME_BUDGET", "0s", false},
		{"finish time budget past the delivery limit", "FINISH_TIME_BUDGET", "9m", false},
		{"finish time budget 6m", "FINISH_TIME_BUDGET", "6m", true},
		{"status link TTL of days", "STATUS_LINK_TTL", "744h", false},
		{"status link TTL of seconds", "STATUS_LINK_TTL", "30s", false},
		{"status link TTL 5m", "STATUS_LINK_TTL", "5m", true},
		{"session TTL too long", "STATUS_SESSION_TTL", "48h", false},
		{"session TTL 2h", "STATUS_SESSION_TTL", "2h", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(t, map[string]string{tc.key: tc.value})
			if tc.ok {
				if err != nil {
					t.Fatalf("%s=%q refused: %v", tc.key, tc.value, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s=%q accepted: %+v", tc.key, tc.value, c)
			}
			if !strings.Contains(err.Error(), tc.key) && !strings.Contains(err.Error(), fields[tc.key]) {
				t.Errorf("error %q names neither %s nor %s", err, tc.key, fields[tc.key])
			}
		})
	}
}
