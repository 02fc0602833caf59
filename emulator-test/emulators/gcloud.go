package emulators

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// newGcloud prepares an emulator that `gcloud beta emulators NAME start` runs (the caller sets its argv
// from the gcloud path returned), after a one-line error if gcloud or java is missing.
func newGcloud(name, envName string, opts Options, ready func(ctx context.Context, host string) error) (*Emulator, string, error) {
	opts.setDefaults()
	gcloud, err := exec.LookPath(opts.Gcloud)
	if err != nil {
		return nil, "", ErrGcloudMissing
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, "", ErrJavaMissing
	}
	return newEmulator(name, envName, opts, ready), gcloud, nil
}

// StartFirestore starts `gcloud beta emulators firestore start` (Native mode) on 127.0.0.1 and waits until
// GET / answers "Ok". Clients find it through FIRESTORE_EMULATOR_HOST (EnvName, Host). Stop it with Close.
func StartFirestore(ctx context.Context, opts Options) (*Emulator, error) {
	e, gcloud, err := newGcloud("firestore", "FIRESTORE_EMULATOR_HOST", opts, probeOk)
	if err != nil {
		return nil, err
	}
	if opts.KeepData {
		if e.tmpDir, err = os.MkdirTemp("", "firestore-emulator-"); err != nil {
			return nil, err
		}
	}
	e.argv = func(port int) []string {
		a := []string{gcloud, "beta", "emulators", "firestore", "start",
			"--host-port=127.0.0.1:" + strconv.Itoa(port), "--quiet"}
		if e.importData != "" {
			a = append(a, "--import-data="+e.importData)
		}
		return a
	}
	return e.launch(ctx)
}

// RestartKeepingData exports the documents of project from a Firestore emulator started with KeepData
// (POST /emulator/v1/projects/P:export), stops it and starts it again on the same port importing them:
// clients see an outage, not a data loss. (The emulator's --export-on-exit did not export when stopped by
// a signal here.) Writes acknowledged between the export and the stop, a few milliseconds, are lost,
// which the real service would keep.
func (e *Emulator) RestartKeepingData(ctx context.Context, project string) error {
	if e.name != "firestore" || !e.opts.KeepData {
		return fmt.Errorf("RestartKeepingData: %s emulator was not started with KeepData", e.name)
	}
	dir := filepath.Join(e.tmpDir, fmt.Sprintf("export-%d", time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	body := fmt.Sprintf(`{"database":"projects/%s/databases/(default)","export_directory":%q}`, project, dir)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL()+"/emulator/v1/projects/"+url.PathEscape(project)+":export", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("export firestore emulator: %w", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("export firestore emulator: HTTP %d %s", resp.StatusCode, msg)
	}
	var meta string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".overall_export_metadata") {
			meta = p
		}
		return nil
	})
	if meta == "" {
		return fmt.Errorf("firestore emulator: the export wrote no metadata in %s", dir)
	}
	if err := e.Stop(); err != nil {
		return err
	}
	e.importData = meta
	return e.start(ctx)
}

// StartPubSub starts `gcloud beta emulators pubsub start` on 127.0.0.1 with its own data directory and
// waits until GET / answers "Ok" and an admin call (list topics) succeeds. Clients find it through
// PUBSUB_EMULATOR_HOST. Restart keeps the port (all topics and subscriptions are lost).
func StartPubSub(ctx context.Context, opts Options) (*Emulator, error) {
	e, gcloud, err := newGcloud("pubsub", "PUBSUB_EMULATOR_HOST", opts, pubsubReady)
	if err != nil {
		return nil, err
	}
	dataDir := opts.DataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "pubsub-emulator-"); err != nil {
			return nil, err
		}
		e.tmpDir = dataDir
	}
	e.argv = func(port int) []string {
		return []string{gcloud, "beta", "emulators", "pubsub", "start",
			"--host-port=127.0.0.1:" + strconv.Itoa(port), "--data-dir=" + dataDir, "--quiet"}
	}
	return e.launch(ctx)
}

func pubsubReady(ctx context.Context, host string) error {
	if err := probeOk(ctx, host); err != nil {
		return err
	}
	return adminCall(ctx, host, "list topics", "/v1/projects/readiness-probe/topics")
}

// Clear deletes every document of the project's default database (Firestore emulator only).
func (e *Emulator) Clear(ctx context.Context, project string) error {
	if e.name != "firestore" {
		return fmt.Errorf("Clear: %s emulator has no clear endpoint (use Restart)", e.name)
	}
	u := e.URL() + "/emulator/v1/projects/" + url.PathEscape(project) + "/databases/(default)/documents"
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	// Not httpClient's short timeout (a readiness probe's): on a loaded machine the emulator takes
	// several seconds to drop a suite's documents; ctx bounds the wait.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("clear firestore emulator: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusConflict:
		return fmt.Errorf("clear firestore emulator: DELETE %s: %w: HTTP %d %s", u, ErrLocked, resp.StatusCode, body)
	default:
		return fmt.Errorf("clear firestore emulator: DELETE %s: HTTP %d %s", u, resp.StatusCode, body)
	}
}
