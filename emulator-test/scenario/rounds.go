package scenario

import (
	"context"

	"github.com/portability-pipeline/pipeline/shared/store"
)

// Round is one round of a user with its resources.
type Round struct {
	Number    int
	ID        string
	Resources []store.Resource
}

// Rounds reads user and every round of theirs from the store, oldest first, each with its resources.
func Rounds(ctx context.Context, st *store.Store, user string) (*store.User, []Round, error) {
	u, err := st.GetUser(ctx, user)
	if err != nil {
		return u, nil, err
	}
	out := make([]Round, 0, u.Rounds)
	for n := 1; n <= u.Rounds; n++ {
		id := store.RoundID(user, n)
		list, err := st.ListResources(ctx, id)
		if err != nil {
			return u, nil, err
		}
		out = append(out, Round{Number: n, ID: id, Resources: list})
	}
	return u, out, nil
}
