package oauthcallback

import (
	"context"
	"fmt"
	"os"
	"testing"

	"cloud.google.com/go/firestore"

	"github.com/portability-pipeline/pipeline/emulator-test/emulators"
	"github.com/portability-pipeline/pipeline/shared/crypto"
)

const testProject = "oauthcallback-test"

// Shared by every test: one Firestore emulator, its client, and one local Tink keyset. Tests use their own
// user IDs, so they run in parallel without clearing the database.
var (
	fsClient *firestore.Client
	keyset   crypto.Encrypter
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	ctx := context.Background()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		e, err := emulators.StartFirestore(ctx, emulators.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "oauthcallback tests need the Firestore emulator:", err)
			return 1
		}
		defer e.Close()
		os.Setenv(e.EnvName(), e.Host())
	}
	var err error
	if fsClient, err = firestore.NewClient(ctx, testProject); err != nil {
		fmt.Fprintln(os.Stderr, "firestore client:", err)
		return 1
	}
	defer fsClient.Close()
	if keyset, _, err = crypto.GenerateLocal(); err != nil {
		fmt.Fprintln(os.Stderr, "keyset:", err)
		return 1
	}
	return m.Run()
}
