// Package deadlock is code under test with four classic blocking bugs. Its
// tests deadlock on the test goroutine itself, which `go test -timeout`
// ends: leaktrace must blame each test and the line of this code it is
// blocked at, not the testing package or the runtime.
package deadlock

import "sync"

// Counter forgets to unlock.
type Counter struct {
	mu sync.Mutex
	n  int
}

func (c *Counter) Incr() {
	c.mu.Lock() // blocked:mutex
	c.n++
}

// Cache takes its read lock twice: the second RLock waits behind a writer
// that waits for the first.
type Cache struct {
	mu sync.RWMutex
	m  map[string]int
}

func NewCache() *Cache { return &Cache{m: map[string]int{}} }

func (c *Cache) Len() int {
	c.mu.RLock() // blocked:rwmutex
	defer c.mu.RUnlock()
	return len(c.m)
}

func (c *Cache) Set(k string, v int) {
	c.mu.Lock() // blocked:rwmutex-writer
	c.m[k] = v
	c.mu.Unlock()
}

// Refresh calls between while holding the read lock, then Len.
func (c *Cache) Refresh(between func()) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	between()
	return c.Len()
}

// Results publishes on an unbuffered channel nobody reads.
type Results struct{ ch chan int }

func (r *Results) Publish(v int) {
	r.ch <- v // blocked:chan
}

// RunAll waits for jobs that never call Done.
func RunAll(jobs []func()) {
	var wg sync.WaitGroup
	for _, job := range jobs {
		wg.Add(1)
		job()
	}
	wg.Wait() // blocked:waitgroup
}
