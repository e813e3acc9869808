// Command cgoseeds is a cgo program for the binary-variant tests: it calls
// into C, and from goroutines too, then leaks goroutines the seed way.
package main

/*
static int add(int a, int b) { return a + b; }
*/
import "C"

import (
	"fmt"
	"runtime"
	"time"
)

func leak() {
	ch := make(chan int)
	go func() { // site:cgo-leak
		<-ch
	}()
}

func main() {
	baseline := runtime.NumGoroutine()
	done := make(chan int)
	for i := 0; i < 4; i++ {
		go func(i int) { // site:cgo-finished
			done <- int(C.add(C.int(i), 1))
		}(i)
	}
	sum := 0
	for i := 0; i < 4; i++ {
		sum += <-done
	}
	for i := 0; i < 3; i++ {
		leak()
	}
	for runtime.NumGoroutine() != baseline+3 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	fmt.Println("sum", sum)
}
