// Package leaky is a test package whose test passes but leaks a goroutine:
// `go test -exec 'leaktrace run --fail-on-leak --'` must fail it.
package leaky

import (
	"testing"
	"time"
)

func startWatcher(events chan string) {
	go func() { // site:gotest-leak
		for e := range events {
			_ = e
		}
	}()
}

func TestWatcherForgetsToClose(t *testing.T) {
	events := make(chan string)
	startWatcher(events)
	events <- "hello"
	// The test passes, but nobody closes events: the watcher leaks.
	time.Sleep(50 * time.Millisecond)
}
