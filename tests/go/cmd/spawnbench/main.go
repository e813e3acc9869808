// Command spawnbench measures what a goroutine costs from `go` to exit: it
// starts -n goroutines that each call wg.Done and return, and prints the
// wall time per goroutine. `cargo xtask bench` runs it untraced and traced.
package main

import (
	"flag"
	"fmt"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 200000, "goroutines to start")
	flag.Parse()
	var wg sync.WaitGroup
	wg.Add(*n)
	start := time.Now()
	for i := 0; i < *n; i++ {
		go func() {
			wg.Done()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("ns_per_goroutine %.1f\n", float64(elapsed.Nanoseconds())/float64(*n))
}
