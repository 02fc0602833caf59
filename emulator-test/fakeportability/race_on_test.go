//go:build race

package fakeportability

const raceEnabled = true
