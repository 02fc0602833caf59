package scenario

import "github.com/portability-pipeline/pipeline/emulator-test/fakeportability"

// Calls returns the fake's call counts of one account: by method (initiate, getState, retry, reset...)
// and the initiates by resource.
func Calls(fake *fakeportability.Server, account string) (methods, initiates map[string]int) {
	users, _ := fake.Calls()["users"].(map[string]any)
	u, _ := users[account].(map[string]any)
	methods = map[string]int{}
	for k, v := range u {
		if n, ok := v.(int); ok {
			methods[k] = n
		}
	}
	initiates, _ = u["initiateByResource"].(map[string]int)
	if initiates == nil {
		initiates = map[string]int{}
	}
	return methods, initiates
}
