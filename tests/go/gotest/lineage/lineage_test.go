// Package lineage has a test whose goroutine starts a manager, which starts
// a dispatcher, which starts a worker; none is ever stopped. The worker's
// own creation chain (its stack and its creator's) never passes through the
// test: leaktrace names the test through its live ancestors.
package lineage

import (
	"testing"
	"time"
)

func manage(quit chan struct{}) {
	go dispatch(quit) // site:dispatcher
	<-quit
}

func dispatch(quit chan struct{}) {
	go work(quit) // site:worker
	<-quit
}

func work(quit chan struct{}) {
	<-quit
}

func TestLineage(t *testing.T) {
	quit := make(chan struct{})
	go manage(quit) // site:manager
	time.Sleep(50 * time.Millisecond)
}
