// Package tokens keeps each user's OAuth token in Firestore, sealed with the envelope AEAD (associated
// data "token:"+user), refreshes it when it expires or the API answers 401, and stores refreshed tokens.
package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portability-pipeline/pipeline/shared/crypto"
	"github.com/portability-pipeline/pipeline/shared/logging"
)

// Collection holds one document per user: {ciphertext, updatedAt}.
const Collection = "tokens"

// ErrNoToken means the user has no stored token (never consented, or reset/purged).
var ErrNoToken = errors.New("no stored token for user")

// Store seals tokens into Firestore.
type Store struct {
	fs    *firestore.Client
	enc   crypto.Encrypter
	oauth *oauth2.Config
}

// NewStore returns a token store; oauth refreshes tokens (client ID, secret, token URL).
func NewStore(fs *firestore.Client, enc crypto.Encrypter, oauth *oauth2.Config) *Store {
	return &Store{fs: fs, enc: enc, oauth: oauth}
}

func associatedData(user string) []byte { return []byte("token:" + user) }

type sealed struct {
	Ciphertext []byte    `firestore:"ciphertext"`
	UpdatedAt  time.Time `firestore:"updatedAt"`
}

// Seal encrypts a token for user.
func (s *Store) Seal(ctx context.Context, user string, t *oauth2.Token) ([]byte, error) {
	plain, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return s.enc.Encrypt(ctx, plain, associatedData(user))
}

// Open decrypts a token sealed for user.
func (s *Store) Open(ctx context.Context, user string, ciphertext []byte) (*oauth2.Token, error) {
	plain, err := s.enc.Decrypt(ctx, ciphertext, associatedData(user))
	if err != nil {
		return nil, fmt.Errorf("decrypt token of %s: %w", user, err)
	}
	var t oauth2.Token
	if err := json.Unmarshal(plain, &t); err != nil {
		return nil, fmt.Errorf("decode token of %s: %w", user, err)
	}
	return &t, nil
}

// Save stores t for user, replacing any earlier token.
func (s *Store) Save(ctx context.Context, user string, t *oauth2.Token) error {
	c, err := s.Seal(ctx, user, t)
	if err != nil {
		return err
	}
	if _, err := s.fs.Collection(Collection).Doc(user).Set(ctx, sealed{Ciphertext: c, UpdatedAt: time.Now().UTC()}); err != nil {
		return fmt.Errorf("store token of %s: %w", user, err)
	}
	return nil
}

// Load returns the stored token of user, or ErrNoToken.
func (s *Store) Load(ctx context.Context, user string) (*oauth2.Token, error) {
	snap, err := s.fs.Collection(Collection).Doc(user).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, ErrNoToken
	}
	if err != nil {
		return nil, fmt.Errorf("load token of %s: %w", user, err)
	}
	var d sealed
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("load token of %s: %w", user, err)
	}
	return s.Open(ctx, user, d.Ciphertext)
}

// Delete destroys the stored token of user (idempotent).
func (s *Store) Delete(ctx context.Context, user string) error {
	if _, err := s.fs.Collection(Collection).Doc(user).Delete(ctx); err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("delete token of %s: %w", user, err)
	}
	return nil
}

// Client returns an HTTP client that sends the user's access token, refreshes it when it expires,
// persists refreshed tokens, and, when the API answers 401 to a still-valid token (revoked early, or a
// clock that disagrees), refreshes once and repeats the request.
func (s *Store) Client(ctx context.Context, user string) (*http.Client, error) {
	t, err := s.Load(ctx, user)
	if err != nil {
		return nil, err
	}
	src := &persisting{store: s, user: user, ctx: context.WithoutCancel(ctx), current: t}
	return &http.Client{Transport: &retryOn401{src: src, base: http.DefaultTransport}}, nil
}

// persisting is a TokenSource that refreshes through the OAuth config and saves what it gets.
type persisting struct {
	store   *Store
	user    string
	ctx     context.Context
	mu      sync.Mutex
	current *oauth2.Token
}

func (p *persisting) Token() (*oauth2.Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current.Valid() {
		return p.current, nil
	}
	return p.refreshLocked()
}

// invalidate forces the next Token call to refresh, unless the token changed since it was used.
func (p *persisting) refreshIfStill(used string) (*oauth2.Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current.AccessToken != used && p.current.Valid() {
		return p.current, nil
	}
	return p.refreshLocked()
}

func (p *persisting) refreshLocked() (*oauth2.Token, error) {
	if p.current.RefreshToken == "" {
		return nil, fmt.Errorf("token of %s expired and has no refresh token", p.user)
	}
	stale := *p.current
	stale.Expiry = time.Unix(1, 0) // force the refresh
	t, err := p.store.oauth.TokenSource(p.ctx, &stale).Token()
	if err != nil {
		// One line per failed refresh, with a reason a log-based metric can count: "invalid_grant" when
		// the person removed the app (or the grant expired), else the token endpoint's error code, the
		// HTTP status, or "transport".
		logging.FromContext(p.ctx).Warn("token.refresh_failed", "reason", refreshFailure(err))
		return nil, err
	}
	if t.RefreshToken == "" {
		t.RefreshToken = p.current.RefreshToken
	}
	p.current = t
	if err := p.store.replace(p.ctx, p.user, t); err != nil {
		return nil, err
	}
	return t, nil
}

// refreshFailure names why a refresh failed, never quoting the token endpoint's answer body.
func refreshFailure(err error) string {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.ErrorCode != "":
		return re.ErrorCode
	case errors.As(err, &re) && re.Response != nil:
		return fmt.Sprintf("http_%d", re.Response.StatusCode)
	}
	return "transport"
}

// replace stores a refreshed token only while the user's token record exists, so a refresh racing a
// reset or a purge never brings a destroyed token back (ErrNoToken then).
func (s *Store) replace(ctx context.Context, user string, t *oauth2.Token) error {
	c, err := s.Seal(ctx, user, t)
	if err != nil {
		return err
	}
	_, err = s.fs.Collection(Collection).Doc(user).Update(ctx, []firestore.Update{
		{Path: "ciphertext", Value: c}, {Path: "updatedAt", Value: time.Now().UTC()}})
	if status.Code(err) == codes.NotFound {
		return ErrNoToken
	}
	if err != nil {
		return fmt.Errorf("store token of %s: %w", user, err)
	}
	return nil
}

type retryOn401 struct {
	src  *persisting
	base http.RoundTripper
}

func (r *retryOn401) RoundTrip(req *http.Request) (*http.Response, error) {
	t, err := r.src.Token()
	if err != nil {
		return nil, err
	}
	var body []byte
	if req.Body != nil {
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	resp, err := r.base.RoundTrip(authorized(req, t, body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	resp.Body.Close()
	fresh, err := r.src.refreshIfStill(t.AccessToken)
	if err != nil {
		return nil, err
	}
	return r.base.RoundTrip(authorized(req, fresh, body))
}

func authorized(req *http.Request, t *oauth2.Token, body []byte) *http.Request {
	r := req.Clone(req.Context())
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	t.SetAuthHeader(r)
	return r
}
