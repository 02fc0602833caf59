package pipelinetest

import "fmt"

func startFirestore() (func(), error) {
	return nil, fmt.Errorf("set FIRESTORE_EMULATOR_HOST")
}
