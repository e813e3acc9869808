// Package clean is a test package whose goroutines all finish:
// `go test -exec 'leaktrace run --fail-on-leak --'` must pass it.
package clean

import (
	"sync"
	"testing"
)

func TestWorkersFinish(t *testing.T) {
	var wg sync.WaitGroup
	events := make(chan string)
	wg.Add(1)
	go func() { // site:gotest-clean
		defer wg.Done()
		for e := range events {
			_ = e
		}
	}()
	events <- "hello"
	close(events)
	wg.Wait()
}
