package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
)

// Consent: the single-use start and status links, and the pending consents (oauthStates) a start link
// begins.

// colLinks holds usedLinks/{id}: the start and status links that were used, so each works once. The ID
// is a hash of the link's signature (startlink.ID), never the link; Firestore's TTL policy on expiresAt
// (terraform/firestore.tf) removes the record once the link has expired anyway.
const colLinks = "usedLinks"

// ErrLinkUsed means a single-use link was used already.
var ErrLinkUsed = errors.New("link already used")

// UsedLink is usedLinks/{id}.
type UsedLink struct {
	Purpose   string    `firestore:"purpose"`
	ExpiresAt time.Time `firestore:"expiresAt"` // the link's own expiry (TTL field)
	UsedAt    time.Time `firestore:"usedAt"`
}

// LinkUsed reports whether the link with this ID was used.
func (s *Store) LinkUsed(ctx context.Context, id string) (bool, error) {
	_, err := s.fs.Collection(colLinks).Doc(id).Get(ctx)
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read used link: %w", err)
	}
	return true, nil
}

// UseLink records the first use of a link; ErrLinkUsed if it was used before.
func (s *Store) UseLink(ctx context.Context, id string, l UsedLink) error {
	l.UsedAt = s.now()
	_, err := s.fs.Collection(colLinks).Doc(id).Create(ctx, l)
	if isAlreadyExists(err) {
		return ErrLinkUsed
	}
	if err != nil {
		return fmt.Errorf("record used link: %w", err)
	}
	return nil
}

// BeginConsent spends a start link and records the pending consent it starts, in one transaction: a
// link yields at most one state, and a spent link leaves no state behind. ErrLinkUsed if it was spent.
func (s *Store) BeginConsent(ctx context.Context, linkID string, l UsedLink, st OAuthState) error {
	linkRef, stateRef := s.fs.Collection(colLinks).Doc(linkID), s.fs.Collection(colStates).Doc(st.ID)
	now := s.now()
	l.UsedAt, st.CreatedAt = now, now
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		_, err := tx.Get(linkRef)
		if err == nil {
			return ErrLinkUsed
		}
		if !notFound(err) {
			return err
		}
		if err := tx.Create(linkRef, l); err != nil {
			return err
		}
		return tx.Create(stateRef, st)
	})
	if errors.Is(err, ErrLinkUsed) || isAlreadyExists(err) {
		return ErrLinkUsed
	}
	if err != nil {
		return fmt.Errorf("begin consent: %w", err)
	}
	return nil
}

// PutOAuthState records a pending consent.
func (s *Store) PutOAuthState(ctx context.Context, st OAuthState) error {
	st.CreatedAt = s.now()
	if _, err := s.fs.Collection(colStates).Doc(st.ID).Create(ctx, st); err != nil {
		return fmt.Errorf("store oauth state: %w", err)
	}
	return nil
}

// ConsumeOAuthState reads and deletes a pending consent in one transaction: a state works once, and
// not after it expires.
func (s *Store) ConsumeOAuthState(ctx context.Context, id string) (*OAuthState, error) {
	ref := s.fs.Collection(colStates).Doc(id)
	var out *OAuthState
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		st, err := get[OAuthState](ctx, tx, ref)
		if errors.Is(err, ErrNotFound) {
			return ErrConsumed
		}
		if err != nil {
			return err
		}
		if err := tx.Delete(ref); err != nil {
			return err
		}
		if s.now().After(st.ExpiresAt) {
			out = nil
			return nil
		}
		st.ID = id
		out = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, ErrConsumed
	}
	return out, nil
}
