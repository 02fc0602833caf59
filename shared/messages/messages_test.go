package messages_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/portability-pipeline/pipeline/shared/messages"
)

// kinds returns a fresh empty message of every type, by name.
func kinds() map[string]func() messages.Validator {
	return map[string]func() messages.Validator{
		"InitiateRequest": func() messages.Validator { return &messages.InitiateRequest{} },
		"JobStarted":      func() messages.Validator { return &messages.JobStarted{} },
		"PollCheck":       func() messages.Validator { return &messages.PollCheck{} },
		"TransferPart":    func() messages.Validator { return &messages.TransferPart{} },
		"ResetRequest":    func() messages.Validator { return &messages.ResetRequest{} },
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	v := messages.Version
	tests := []struct {
		name string
		m    messages.Validator
	}{
		{"initiate request", &messages.InitiateRequest{V: v, User: "u", Round: "u~1"}},
		{"initiate request for one resource", &messages.InitiateRequest{V: v, User: "u", Round: "u~2", Resource: "myactivity.search"}},
		{"job started", &messages.JobStarted{V: v, User: "u", Round: "u~1", Resource: "myactivity.search", Job: "j-1"}},
		{"poll check 0", &messages.PollCheck{V: v, User: "u", Round: "u~1", Resource: "youtube.subscriptions", Job: "j/x"}},
		{"poll check 7", &messages.PollCheck{V: v, User: "u", Round: "u~1", Resource: "youtube.subscriptions", Job: "j", Check: 7}},
		{"transfer part", &messages.TransferPart{V: v, User: "u", Round: "u~1", Resource: "r", Job: "j", Object: 1, Part: 12}},
		{"reset request", &messages.ResetRequest{V: v, User: "ü ser", Round: "ü ser~3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := messages.Encode(tc.m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got := reflect.New(reflect.TypeOf(tc.m).Elem()).Interface().(messages.Validator)
			if err := messages.Decode(data, got); err != nil {
				t.Fatalf("Decode(%s): %v", data, err)
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Errorf("round trip of %s gave %+v, want %+v", data, got, tc.m)
			}
			// The same bytes arrive through a Pub/Sub push.
			got = reflect.New(reflect.TypeOf(tc.m).Elem()).Interface().(messages.Validator)
			d, err := messages.FromPush(messages.PushBody("projects/p/subscriptions/s", "m-1", data, map[string]string{"k": "v"}), got)
			if err != nil {
				t.Fatalf("FromPush: %v", err)
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Errorf("through a push: %+v, want %+v", got, tc.m)
			}
			if d.ID != "m-1" || d.Attributes["k"] != "v" {
				t.Errorf("delivery %+v, want id m-1 with attribute k=v", d)
			}
		})
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	t.Parallel()
	for _, m := range []messages.Validator{
		&messages.InitiateRequest{User: "u", Round: "r"},
		&messages.JobStarted{V: 1, User: "u", Round: "r", Resource: "x"},
		&messages.PollCheck{V: 1, User: "u", Round: "r", Resource: "x", Job: "j", Check: -1},
		&messages.TransferPart{V: 1, User: "u", Round: "r", Resource: "x", Job: "j", Part: -1},
		&messages.ResetRequest{V: 1, User: " ", Round: "r"},
	} {
		if data, err := messages.Encode(m); !errors.Is(err, messages.ErrMalformed) {
			t.Errorf("Encode(%+v) = %s, %v; want ErrMalformed", m, data, err)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, kind, data string
		// says: the error names this (a missing field...); empty: not checked.
		says string
	}{
		{"empty", "InitiateRequest", ``, ""},
		{"whitespace", "ResetRequest", "  \n", ""},
		{"null", "ResetRequest", `null`, "version 0"},
		{"not an object", "JobStarted", `[1,2]`, ""},
		{"a string", "JobStarted", `"v"`, ""},
		{"truncated", "InitiateRequest", `{"v":1,"user":"u"`, ""},
		{"wrong version", "InitiateRequest", `{"v":2,"user":"u","round":"r"}`, "version 2"},
		{"version missing", "ResetRequest", `{"user":"u","round":"r"}`, "version 0"},
		{"version as string", "ResetRequest", `{"v":"1","user":"u","round":"r"}`, ""},
		{"version as float", "ResetRequest", `{"v":1.5,"user":"u","round":"r"}`, ""},
		{"missing user", "InitiateRequest", `{"v":1,"round":"r"}`, "user"},
		{"blank round", "ResetRequest", `{"v":1,"user":"u","round":"  "}`, "round"},
		{"missing job", "JobStarted", `{"v":1,"user":"u","round":"r","resource":"x"}`, "job"},
		{"missing resource and job", "PollCheck", `{"v":1,"user":"u","round":"r"}`, "resource, job"},
		{"missing job of a part", "TransferPart", `{"v":1,"user":"u","round":"r","resource":"x","object":0,"part":0}`, "job"},
		{"unknown field", "InitiateRequest", `{"v":1,"user":"u","round":"r","token":"ya29.secret"}`, "unknown field"},
		{"field of another type", "ResetRequest", `{"v":1,"user":"u","round":"r","resource":"x"}`, "unknown field"},
		{"trailing object", "ResetRequest", `{"v":1,"user":"u","round":"r"}{"v":1}`, "trailing"},
		{"trailing garbage", "ResetRequest", `{"v":1,"user":"u","round":"r"} x`, ""},
		{"trailing brace", "ResetRequest", `{"v":1,"user":"u","round":"r"}}`, ""},
		{"trailing bracket", "ResetRequest", `{"v":1,"user":"u","round":"r"}]`, ""},
		{"negative check", "PollCheck", `{"v":1,"user":"u","round":"r","resource":"x","job":"j","check":-1}`, "check number -1"},
		{"negative object", "TransferPart", `{"v":1,"user":"u","round":"r","resource":"x","job":"j","object":-1,"part":0}`, "object -1"},
		{"negative part", "TransferPart", `{"v":1,"user":"u","round":"r","resource":"x","job":"j","object":0,"part":-3}`, "part -3"},
		{"part overflows int", "TransferPart", `{"v":1,"user":"u","round":"r","resource":"x","job":"j","object":0,"part":99999999999999999999}`, ""},
		{"user not a string", "JobStarted", `{"v":1,"user":7,"round":"r","resource":"x","job":"j"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := kinds()[tc.kind]()
			err := messages.Decode([]byte(tc.data), m)
			if !errors.Is(err, messages.ErrMalformed) {
				t.Fatalf("Decode(%q) into %s = %v, want ErrMalformed", tc.data, tc.kind, err)
			}
			if tc.says != "" && !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

func TestDecodeAcceptsWhitespace(t *testing.T) {
	t.Parallel()
	var m messages.ResetRequest
	if err := messages.Decode([]byte(" {\"v\":1, \"user\":\"u\", \"round\":\"r\"}\n"), &m); err != nil {
		t.Fatalf("Decode: %v", err)
	}
}

func TestFromPushMalformed(t *testing.T) {
	t.Parallel()
	valid := []byte(`{"v":1,"user":"u","round":"r"}`)
	tests := []struct {
		name   string
		body   []byte // push body; nil: an empty body
		says   string
		wantID string
	}{
		{"empty body", nil, "not a Pub/Sub push body", ""},
		{"not JSON", []byte("hello"), "not a Pub/Sub push body", ""},
		{"JSON but not Pub/Sub", []byte(`{"bucket":"b","name":"o"}`), "empty Pub/Sub message", ""},
		{"message not an object", []byte(`{"message":"x"}`), "not a Pub/Sub push body", ""},
		{"data not base64", []byte(`{"message":{"data":"%%%","messageId":"m"}}`), "not a Pub/Sub push body", ""},
		{"empty message", messages.PushBody("s", "m-2", nil, nil), "empty Pub/Sub message", "m-2"},
		{"empty data string", []byte(`{"message":{"data":"","messageId":"m-3"}}`), "empty Pub/Sub message", "m-3"},
		{"wrong message type", messages.PushBody("s", "m-4", []byte(`{"v":1,"user":"u","round":"r","resource":"x","job":"j"}`), nil), "unknown field", "m-4"},
		{"old version", messages.PushBody("s", "m-5", []byte(`{"v":0,"user":"u","round":"r"}`), nil), "version 0", "m-5"},
		{"not JSON inside", messages.PushBody("s", "m-6", []byte("plain text"), nil), "", "m-6"},
		{"trailing data inside", messages.PushBody("s", "m-7", append(append([]byte{}, valid...), valid...), nil), "trailing", "m-7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var m messages.ResetRequest
			d, err := messages.FromPush(tc.body, &m)
			if !errors.Is(err, messages.ErrMalformed) {
				t.Fatalf("FromPush = %v, want ErrMalformed", err)
			}
			if tc.says != "" && !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
			if d.ID != tc.wantID {
				t.Errorf("delivery ID %q, want %q (the ID helps to find a dead-lettered message)", d.ID, tc.wantID)
			}
		})
	}
}
