// Command million starts -n goroutines that each block forever on a channel
// receive (and 10 more from a second site), prints "ready" once all of them
// have started, and sleeps forever. `cargo xtask bench` attaches leaktrace to
// it to measure what reading a million goroutines costs.
package main

import (
	"flag"
	"fmt"
	"sync"
	"time"
)

// few is how many goroutines the second site starts.
const few = 10

func main() {
	n := flag.Int("n", 1000000, "goroutines to start at the main site")
	flag.Parse()

	never := make(chan struct{})
	var started sync.WaitGroup
	started.Add(*n + few)
	for i := 0; i < *n; i++ {
		go waitMany(never, &started)
	}
	for i := 0; i < few; i++ {
		go waitFew(never, &started)
	}
	started.Wait()
	fmt.Println("ready")
	// Sleeping, not blocking: with every goroutine blocked on a channel the
	// runtime would report a deadlock.
	for {
		time.Sleep(time.Hour)
	}
}

func waitMany(never <-chan struct{}, started *sync.WaitGroup) {
	started.Done()
	<-never
}

func waitFew(never <-chan struct{}, started *sync.WaitGroup) {
	started.Done()
	<-never
}
