package pipelinetest

import (
	"context"
	"os"

	"github.com/portability-pipeline/pipeline/emulator-test/emulators"
)

// startFirestore starts a Firestore emulator for this test binary and points the client library at it.
func startFirestore() (func(), error) {
	e, err := emulators.StartFirestore(context.Background(), emulators.Options{})
	if err != nil {
		return nil, err
	}
	os.Setenv(e.EnvName(), e.Host())
	return func() { e.Stop() }, nil
}
