// Command pingpong measures what a goroutine handoff costs: two goroutines
// pass a value back and forth over two unbuffered channels forever, so each
// round trip blocks and wakes each of them once. Every -window it prints
// "ns_per_round_trip X", measured over that window. `cargo xtask bench` reads
// these lines untraced and traced.
package main

import (
	"flag"
	"fmt"
	"sync/atomic"
	"time"
)

func main() {
	window := flag.Duration("window", 500*time.Millisecond, "how often to report")
	flag.Parse()

	var rounds atomic.Int64
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
	}()
	go func() {
		v := 0
		for {
			ping <- v
			v = <-pong
			rounds.Add(1)
		}
	}()

	last := time.Now()
	for {
		time.Sleep(*window)
		now := time.Now()
		n := rounds.Swap(0)
		elapsed := now.Sub(last)
		last = now
		if n == 0 {
			fmt.Println("ns_per_round_trip inf")
			continue
		}
		fmt.Printf("ns_per_round_trip %.1f\n", float64(elapsed.Nanoseconds())/float64(n))
	}
}
