package fakeportability

import (
	"sync"
	"time"
)

// Clock is the virtual clock: real time plus an offset that tests advance. It drives job completion, token
// and URL expiry, cooldowns, retention and grant expiry. ID tokens for OIDC use real time instead, because
// their verifiers do.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
	real   func() time.Time
}

func newClock() *Clock { return &Clock{real: time.Now} }

// Now returns the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.real().Add(c.offset).UTC()
}

// Advance moves the virtual clock forward by d (negative d is ignored) and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	if d > 0 {
		c.offset += d
	}
	c.mu.Unlock()
	return c.Now()
}

// Offset returns how far the virtual clock is ahead of real time.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

func (c *Clock) reset() {
	c.mu.Lock()
	c.offset = 0
	c.mu.Unlock()
}
