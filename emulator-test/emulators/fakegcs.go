package emulators

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
)

// fakeGCSPackage is the command StartFakeGCS builds.
const fakeGCSPackage = "github.com/portability-pipeline/pipeline/emulator-test/cmd/fakegcs"

var fakeGCSBuild struct {
	once sync.Once
	path string
	err  error
}

// buildFakeGCS builds emulator-test/cmd/fakegcs once per process into the user cache directory.
func buildFakeGCS() (string, error) {
	b := &fakeGCSBuild
	b.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("fakegcs: the go command is needed to build %s: %w", fakeGCSPackage, err)
			return
		}
		root, err := moduleRoot()
		if err != nil {
			b.err = err
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "portability-pipeline")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.err = err
			return
		}
		// go build leaves an up-to-date target alone (about 0.3 s); a lock serializes the test binaries of
		// several packages that start at once.
		lock, err := os.OpenFile(filepath.Join(dir, "fakegcs.lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			b.err = err
			return
		}
		defer lock.Close()
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			b.err = fmt.Errorf("fakegcs: lock %s: %w", lock.Name(), err)
			return
		}
		defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		target := filepath.Join(dir, "fakegcs")
		cmd := exec.Command(goTool, "build", "-o", target, fakeGCSPackage)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("fakegcs: go build %s: %w\n%s", fakeGCSPackage, err, out)
			return
		}
		b.path = target
	})
	return b.path, b.err
}

// moduleRoot is the directory of this module's go.mod, found from this source file (tests, go run) or
// else from the working directory.
func moduleRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "emulator-test", "cmd", "fakegcs", "main.go")); err == nil {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("fakegcs: cannot find the module root (with emulator-test/cmd/fakegcs) from %v; set Options.FakeGCSBinary", starts)
}

// StartFakeGCS runs fake-gcs-server (emulator-test/cmd/fakegcs, built on first use unless
// Options.FakeGCSBinary is set) in its own process on 127.0.0.1 and waits until it lists buckets. Clients
// find it through STORAGE_EMULATOR_HOST; reads work with and without storage.WithJSONReads().
func StartFakeGCS(ctx context.Context, opts Options) (*Emulator, error) {
	opts.setDefaults()
	bin := opts.FakeGCSBinary
	if bin == "" {
		var err error
		if bin, err = buildFakeGCS(); err != nil {
			return nil, err
		}
	}
	e := newEmulator("fakegcs", "STORAGE_EMULATOR_HOST", opts, fakeGCSReady)
	e.argv = func(port int) []string {
		return []string{bin, "-host=127.0.0.1", "-port=" + strconv.Itoa(port)}
	}
	return e.launch(ctx)
}

func fakeGCSReady(ctx context.Context, host string) error {
	return adminCall(ctx, host, "list buckets", "/storage/v1/b")
}
