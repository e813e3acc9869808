// Package parallel has three parallel tests that start the same watcher;
// only TestB forgets to stop it. leaktrace must name TestB, from the
// watcher's creation stack, although the three run at once.
package parallel

import (
	"testing"
	"time"
)

func watch(stop chan struct{}, done chan struct{}) {
	go func() { // site:watcher
		<-stop
		close(done)
	}()
}

func run(t *testing.T, stopIt bool) {
	t.Parallel()
	stop, done := make(chan struct{}), make(chan struct{})
	watch(stop, done)
	time.Sleep(50 * time.Millisecond)
	if stopIt {
		close(stop)
		<-done
	}
}

func TestA(t *testing.T) { run(t, true) }

func TestB(t *testing.T) { run(t, false) }

func TestC(t *testing.T) { run(t, true) }
