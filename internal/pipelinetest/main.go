package pipelinetest

import (
	"fmt"
	"os"
	"testing"
)

// Main runs a test binary's tests with a Firestore emulator (see the emulators package): the one named by
// FIRESTORE_EMULATOR_HOST when set, else one it starts and stops. It returns the exit code.
func Main(m *testing.M) int {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		stop, err := startFirestore()
		if err != nil {
			fmt.Fprintln(os.Stderr, "pipelinetest:", err)
			return 1
		}
		defer stop()
	}
	return m.Run()
}
