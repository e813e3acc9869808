// Command pull uses iter.Pull, whose iterators run on coroutine goroutines
// (Go 1.23+): it stops some pulls, which ends their goroutines, and forgets
// to stop others, which leaks them.
package main

import (
	"fmt"
	"iter"
	"runtime"
	"time"
)

func count(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; i < n; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// firstOf pulls one value and forgets to call stop: the iterator's
// coroutine goroutine stays parked forever.
func firstOf(seq iter.Seq[int]) int {
	next, _ := iter.Pull(seq) // site:pull-leak
	v, _ := next()
	return v
}

// sumOf pulls everything and stops: the coroutine goroutine ends.
func sumOf(seq iter.Seq[int]) int {
	next, stop := iter.Pull(seq) // site:pull-stopped
	defer stop()
	sum := 0
	for v, ok := next(); ok; v, ok = next() {
		sum += v
	}
	return sum
}

func main() {
	baseline := runtime.NumGoroutine()
	total := 0
	for i := 0; i < 6; i++ {
		total += sumOf(count(10))
	}
	for i := 0; i < 3; i++ {
		total += firstOf(count(10))
	}
	for runtime.NumGoroutine() != baseline+3 {
		time.Sleep(time.Millisecond)
	}
	fmt.Println(total)
}
