package store

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
)

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
