package deadlock

import (
	"testing"
	"time"
)

func TestMutex(t *testing.T) {
	t.Parallel()
	var c Counter
	c.Incr()
	c.Incr() // blame:mutex
}

func TestRWMutex(t *testing.T) {
	t.Parallel()
	c := NewCache()
	startWriter := func() {
		go c.Set("k", 1) // site:rwmutex-writer
		time.Sleep(100 * time.Millisecond)
	}
	c.Refresh(startWriter) // blame:rwmutex
}

func TestChan(t *testing.T) {
	t.Parallel()
	r := &Results{ch: make(chan int)}
	r.Publish(1) // blame:chan
}

func TestWaitGroup(t *testing.T) {
	t.Parallel()
	RunAll([]func(){func() {}}) // blame:waitgroup
}

// TestPasses runs first and ends: it is no one's leak.
func TestPasses(t *testing.T) {
	done := make(chan struct{})
	go func() { close(done) }() // site:passes
	<-done
}
