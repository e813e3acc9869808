// Command demo is the program `cargo xtask demo` traces: a small service
// that leaks goroutines three ways from the seed documents, next to work that
// finishes cleanly.
package main

import (
	"fmt"
	"sync"
	"time"
)

// fetch starts a request whose result nobody reads when the caller times out.
func fetch(timeout time.Duration) {
	result := make(chan string) // unbuffered: the sender blocks forever
	go func() { // site:demo-fetch
		time.Sleep(20 * time.Millisecond)
		result <- "response"
	}()
	select {
	case r := <-result:
		fmt.Println(r)
	case <-time.After(timeout):
	}
}

// subscribe ranges over a channel nobody closes.
func subscribe(events chan int) {
	go func() { // site:demo-subscribe
		for e := range events {
			_ = e
		}
	}()
}

func main() {
	for i := 0; i < 100; i++ {
		fetch(time.Millisecond) // each call leaks one blocked sender
	}
	for i := 0; i < 3; i++ {
		subscribe(make(chan int))
	}

	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		// These finish: not a leak.
		go func() { // site:demo-workers
			defer wg.Done()
			time.Sleep(time.Millisecond)
		}()
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond)
}
