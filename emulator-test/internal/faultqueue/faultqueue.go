// Package faultqueue is the rule the stand-ins' queues of injected faults share (the Data Portability fake's
// and the storage proxy's): a request takes one use of the first queued fault that matches it, and a fault
// whose uses are spent leaves the queue, so faults fire in the order they were injected, Count times each.
package faultqueue

import "slices"

// Take spends one use (*uses(f)) of the first fault of *q that match accepts and returns it, removing it from
// *q once no use is left; nil if none matches.
func Take[F any](q *[]*F, match func(*F) bool, uses func(*F) *int) *F {
	i := slices.IndexFunc(*q, match)
	if i < 0 {
		return nil
	}
	f := (*q)[i]
	n := uses(f)
	*n--
	if *n <= 0 {
		*q = slices.Delete(*q, i, i+1)
	}
	return f
}
