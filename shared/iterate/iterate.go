// Package iterate walks the iterators of Google's Go clients (Firestore documents and collections, Cloud
// Storage objects: a Next method that ends with iterator.Done).
package iterate

import (
	"errors"

	"google.golang.org/api/iterator"
)

// All calls fn with every value next yields until iterator.Done, and stops at the first error of either.
func All[T any](next func() (T, error), fn func(T) error) error {
	for {
		v, err := next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}
