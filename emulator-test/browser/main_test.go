// Package browser walks a person through the pipeline's pages in a real browser (Debian's Chromium,
// driven by chromedp) on the local stack: start page, the Data Portability fake's consent page, the
// return page, the status page while the export runs, and the delete action. Each page is saved as a
// screenshot (artifacts/screenshots under the repository root, or $SCREENSHOT_DIR).
//
// The stack and one browser start once for the package; every test clears the stack and runs alone.
package browser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portability-pipeline/pipeline/emulator-test/fakeportability"
	"github.com/portability-pipeline/pipeline/emulator-test/stack"
)

var (
	st *stack.Stack
	// browserCtx is the allocator context of the one browser; each test opens its own tab.
	browserCtx context.Context
	shotDir    string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) (code int) {
	chromium, err := findOrInstallChromium()
	if err != nil {
		fmt.Fprintln(os.Stderr, "browser tests:", err)
		return 1
	}
	if shotDir, err = screenshotDir(); err != nil {
		fmt.Fprintln(os.Stderr, "browser tests: screenshot directory:", err)
		return 1
	}
	ctx := context.Background()
	st, err = stack.Start(ctx, stack.Options{
		// Downloads are throttled and parts small, so the status page shows files being copied.
		Fake: fakeportability.Options{ArchiveSize: 4 << 20, URLsPerJob: 2, BandwidthLimit: 1 << 20},
		Env:  map[string]string{"PART_SIZE": "1048576", "TIME_BASED_HORIZON": "72h", "INITIATE_LEASE": "5s"},
		Log:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// Function logs stay for a look after a failure.
		Keep: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "browser tests: the local stack did not start:", err)
		return 1
	}
	defer st.Stop()
	defer func() {
		if code == 0 {
			os.RemoveAll(st.Dir)
		}
	}()

	profile, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(profile)
	// The flags of notes-machine.md: headless, no sandbox (root), nothing phoning home, a fresh profile.
	alloc, cancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(900, 700),
	)
	defer cancel()
	// Start the browser once, with a first tab that stays open for the package.
	first, cancelFirst := chromedp.NewContext(alloc)
	defer cancelFirst()
	if err := chromedp.Do(first, chromedp.Navigate("about:blank")); err != nil {
		fmt.Fprintln(os.Stderr, "browser tests: Chromium did not start:", err)
		return 1
	}
	browserCtx = first

	code = m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "browser tests: function logs are in", st.Dir)
	}
	return code
}

// findOrInstallChromium returns the Chromium binary, installing Debian's package when it is missing and
// this process may (root); otherwise one clear error.
func findOrInstallChromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	if os.Geteuid() != 0 {
		return "", errors.New("Chromium is missing: install it with `apt-get install -y --no-install-recommends chromium` (needs root)")
	}
	cmd := exec.Command("sh", "-c", "apt-get update && apt-get install -y --no-install-recommends chromium")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		tail := out
		if len(tail) > 400 {
			tail = tail[len(tail)-400:]
		}
		return "", fmt.Errorf("Chromium is missing and `apt-get install chromium` failed: %v: %s", err, tail)
	}
	return exec.LookPath("chromium")
}

// screenshotDir is $SCREENSHOT_DIR or artifacts/screenshots under the repository root.
func screenshotDir() (string, error) {
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		root := wd
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				return "", errors.New("no go.mod above " + wd)
			}
			root = parent
		}
		dir = filepath.Join(root, "artifacts", "screenshots")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// begin gives a test the stack to itself, cleared, and a new browser tab.
func begin(t *testing.T) (context.Context, context.Context) {
	t.Helper()
	ctx := st.Take(t, 3*time.Minute)
	tab, cancelTab := chromedp.NewContext(browserCtx)
	t.Cleanup(cancelTab)
	tab, cancelTimeout := context.WithTimeout(tab, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx, tab
}
