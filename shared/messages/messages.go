// Package messages defines the JSON messages the steps exchange through Pub/Sub and Cloud Tasks, and
// their strict decoding. Messages carry identifiers only: never tokens or signed URLs.
package messages

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Version is the schema version every message carries in "v".
const Version = 1

// ErrMalformed marks a message that can never be processed (redelivery will not help).
var ErrMalformed = errors.New("malformed message")

// InitiateRequest asks the initiate step to start the round's jobs (all pending resources, or Resource).
type InitiateRequest struct {
	V        int    `json:"v"`
	User     string `json:"user"`
	Round    string `json:"round"`
	Resource string `json:"resource,omitempty"`
}

// JobStarted tells the poll step that a job runs for a resource of a round.
type JobStarted struct {
	V        int    `json:"v"`
	User     string `json:"user"`
	Round    string `json:"round"`
	Resource string `json:"resource"`
	Job      string `json:"job"`
}

// PollCheck is the body of a Cloud Task: one state check of a job; Check counts the ladder steps.
type PollCheck struct {
	V        int    `json:"v"`
	User     string `json:"user"`
	Round    string `json:"round"`
	Resource string `json:"resource"`
	Job      string `json:"job"`
	Check    int    `json:"check"`
	// EmptyAnswers counts consecutive COMPLETE answers without URLs (poll asks again before accepting
	// an export with no files).
	EmptyAnswers int `json:"emptyAnswers,omitempty"`
}

// TaskKey names the Cloud Task of this check after job and check number, so duplicates of one check
// collapse into one task (the poll step and the reconciler's repair both schedule checks).
func (c PollCheck) TaskKey() string { return fmt.Sprintf("poll/%s/%d", c.Job, c.Check) }

// TransferPart asks the transfer step to copy one byte range of one archive object, or, with Finish, to
// finish a done resource (its manifest, a bounded share per delivery, then the round's settlement).
type TransferPart struct {
	V        int    `json:"v"`
	User     string `json:"user"`
	Round    string `json:"round"`
	Resource string `json:"resource"`
	Job      string `json:"job"`
	Object   int    `json:"object"`
	Part     int    `json:"part"`
	Finish   bool   `json:"finish,omitempty"`
}

// ResetRequest tells the reset step that every download of the round has finished.
type ResetRequest struct {
	V     int    `json:"v"`
	User  string `json:"user"`
	Round string `json:"round"`
}

// Validator is implemented by every message.
type Validator interface{ Validate() error }

func need(kind string, pairs ...string) error {
	var missing []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			missing = append(missing, pairs[i])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s without %s", ErrMalformed, kind, strings.Join(missing, ", "))
	}
	return nil
}

func version(kind string, v int) error {
	if v != Version {
		return fmt.Errorf("%w: %s version %d, want %d", ErrMalformed, kind, v, Version)
	}
	return nil
}

// Validate reports what makes the message malformed (wrapping ErrMalformed), or nil.
func (m *InitiateRequest) Validate() error {
	return errors.Join(version("initiate request", m.V), need("initiate request", "user", m.User, "round", m.Round))
}

// Validate reports what makes the message malformed (wrapping ErrMalformed), or nil.
func (m *JobStarted) Validate() error {
	return errors.Join(version("job started", m.V),
		need("job started", "user", m.User, "round", m.Round, "resource", m.Resource, "job", m.Job))
}

// Validate reports what makes the message malformed (wrapping ErrMalformed), or nil.
func (m *PollCheck) Validate() error {
	err := errors.Join(version("poll check", m.V),
		need("poll check", "user", m.User, "round", m.Round, "resource", m.Resource, "job", m.Job))
	if m.Check < 0 {
		err = errors.Join(err, fmt.Errorf("%w: poll check number %d", ErrMalformed, m.Check))
	}
	return err
}

// Validate reports what makes the message malformed (wrapping ErrMalformed), or nil.
func (m *TransferPart) Validate() error {
	err := errors.Join(version("transfer part", m.V),
		need("transfer part", "user", m.User, "round", m.Round, "resource", m.Resource, "job", m.Job))
	if m.Object < 0 || m.Part < 0 {
		err = errors.Join(err, fmt.Errorf("%w: transfer part object %d part %d", ErrMalformed, m.Object, m.Part))
	}
	return err
}

// Validate reports what makes the message malformed (wrapping ErrMalformed), or nil.
func (m *ResetRequest) Validate() error {
	return errors.Join(version("reset request", m.V), need("reset request", "user", m.User, "round", m.Round))
}

// Encode marshals a message after checking it.
func Encode(m Validator) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// Decode unmarshals data strictly (unknown fields refused) into m and validates it.
func Decode(data []byte, m Validator) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// dec.More is false before a stray '}' or ']', so ask for the next token: only the end may follow.
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return m.Validate()
}

// pushEnvelope is the body of a Pub/Sub push request. A binary-mode CloudEvent of type
// google.cloud.pubsub.topic.v1.messagePublished (Eventarc) carries the same JSON as its data.
type pushEnvelope struct {
	Message struct {
		Data       []byte            `json:"data"`
		Attributes map[string]string `json:"attributes"`
		ID         string            `json:"messageId"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// Push is one Pub/Sub message as a push subscription delivers it.
type Push struct {
	ID         string
	Attributes map[string]string
	Data       []byte
}

// ParsePush reads a Pub/Sub push body. An error wraps ErrMalformed.
func ParsePush(body []byte) (Push, error) {
	var env pushEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Push{}, fmt.Errorf("%w: not a Pub/Sub push body: %v", ErrMalformed, err)
	}
	p := Push{ID: env.Message.ID, Attributes: env.Message.Attributes, Data: env.Message.Data}
	if len(p.Data) == 0 {
		return p, fmt.Errorf("%w: empty Pub/Sub message", ErrMalformed)
	}
	return p, nil
}

// FromPush decodes the message of a Pub/Sub push body into m.
func FromPush(body []byte, m Validator) (Push, error) {
	p, err := ParsePush(body)
	if err != nil {
		return p, err
	}
	return p, Decode(p.Data, m)
}

// PushBody wraps data as a Pub/Sub push body (tests and the local stack).
func PushBody(subscription, id string, data []byte, attrs map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{
		"subscription": subscription,
		"message": map[string]any{
			"data":       base64.StdEncoding.EncodeToString(data),
			"attributes": attrs,
			"messageId":  id,
		},
	})
	return b
}

// LogAttrs returns the identifiers of the message for log lines.
func (m *InitiateRequest) LogAttrs() []any {
	return []any{"user", m.User, "round", m.Round, "resource", m.Resource}
}

// LogAttrs returns the identifiers of the message for log lines.
func (m *JobStarted) LogAttrs() []any {
	return []any{"user", m.User, "round", m.Round, "resource", m.Resource, "job", m.Job}
}

// LogAttrs returns the identifiers of the message for log lines.
func (m *PollCheck) LogAttrs() []any {
	return []any{"user", m.User, "round", m.Round, "resource", m.Resource, "job", m.Job, "check", m.Check}
}

// LogAttrs returns the identifiers of the message for log lines.
func (m *TransferPart) LogAttrs() []any {
	if m.Finish {
		return []any{"user", m.User, "round", m.Round, "resource", m.Resource, "job", m.Job, "finish", true}
	}
	return []any{"user", m.User, "round", m.Round, "resource", m.Resource, "job", m.Job, "object", m.Object, "part", m.Part}
}

// LogAttrs returns the identifiers of the message for log lines.
func (m *ResetRequest) LogAttrs() []any { return []any{"user", m.User, "round", m.Round} }
