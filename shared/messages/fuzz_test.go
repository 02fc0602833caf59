package messages_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/messages"
)

var fuzzSeeds = []string{
	``,
	`{}`,
	`null`,
	`{"v":1,"user":"u","round":"u~1"}`,
	`{"v":1,"user":"u","round":"u~1","resource":"myactivity.search"}`,
	`{"v":1,"user":"u","round":"r","resource":"x","job":"j"}`,
	`{"v":1,"user":"u","round":"r","resource":"x","job":"j","check":3}`,
	`{"v":1,"user":"u","round":"r","resource":"x","job":"j","object":1,"part":2}`,
	`{"v":1,"user":"u","round":"r"}}`,
	`{"V":1,"USER":"u","Round":"r","round":"s"}`,
	`{"v":2,"user":"u","round":"r","check":-1}`,
}

// FuzzDecode feeds arbitrary bytes to Decode of every message type: it must never panic, must refuse with
// ErrMalformed, and whatever it accepts is valid and survives Encode/Decode unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, newMsg := range kinds() {
			m := newMsg()
			if err := messages.Decode(data, m); err != nil {
				if !errors.Is(err, messages.ErrMalformed) {
					t.Fatalf("%s: error %v is not ErrMalformed", name, err)
				}
				continue
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("%s: accepted %q but it does not validate: %v", name, data, err)
			}
			enc, err := messages.Encode(m)
			if err != nil {
				t.Fatalf("%s: accepted %q but cannot encode it: %v", name, data, err)
			}
			again := newMsg()
			if err := messages.Decode(enc, again); err != nil {
				t.Fatalf("%s: re-encoded %q refused: %v", name, enc, err)
			}
			if !reflect.DeepEqual(m, again) {
				t.Fatalf("%s: %+v changed to %+v through %q", name, m, again, enc)
			}
		}
	})
}

// FuzzFromPush feeds arbitrary push bodies, and arbitrary messages wrapped in a push body, to FromPush:
// it must never panic and only ever refuse with ErrMalformed.
func FuzzFromPush(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), true)
		f.Add(messages.PushBody("s", "m", []byte(s), map[string]string{"a": "b"}), false)
	}
	f.Add([]byte(`{"message":{"data":"%%%"}}`), false)
	f.Add([]byte(`{"message":{"data":null,"attributes":{"a":1}}}`), false)
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		if wrap {
			data = messages.PushBody("projects/p/subscriptions/s", "id", data, nil)
		}
		for name, newMsg := range kinds() {
			m := newMsg()
			if _, err := messages.FromPush(data, m); err != nil {
				if !errors.Is(err, messages.ErrMalformed) {
					t.Fatalf("%s: error %v is not ErrMalformed", name, err)
				}
				continue
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("%s: accepted an invalid message: %v", name, err)
			}
		}
	})
}
