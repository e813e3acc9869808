// Command large is a Go binary of more than 50 MB: blob is initialised
// data, so the linker stores all of it in the file. It leaks two goroutines.
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

var blob = [52 << 20]byte{1, 2, 3, (52 << 20) - 1: 4}

func leak() {
	ch := make(chan byte)
	go func() { // site:large-leak
		ch <- blob[len(os.Args)]
	}()
}

func main() {
	baseline := runtime.NumGoroutine()
	leak()
	leak()
	for runtime.NumGoroutine() != baseline+2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	fmt.Println(blob[len(blob)-1])
}
