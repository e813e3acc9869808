// Command endings leaks two goroutines, then ends the way its argument
// says: each way a Go program can end. leaktrace run must read its
// goroutines as they were at that moment, whichever it is.
//
//	return   return from main (status 0)
//	exit     os.Exit(3)
//	panic    an unrecovered panic (status 2)
//	signal   wait to be killed by a signal (prints "ready" first)
//	crash    with GOTRACEBACK=crash, a panic dumps core: SIGABRT
//	handler  os.Exit(4) from a goroutine, as a signal handler's does, while
//	         main waits: that goroutine ends the program, it does not leak
package main

import (
	"fmt"
	"os"
	"time"
)

func leak() {
	for i := 0; i < 2; i++ {
		block := make(chan int)
		go func() { // site:endings-leak
			<-block
		}()
	}
	// Let both block before the end comes.
	time.Sleep(20 * time.Millisecond)
}

func main() {
	leak()
	switch os.Args[1] {
	case "return":
		return
	case "exit":
		os.Exit(3)
	case "panic", "crash":
		panic("the end")
	case "handler":
		go func() { // site:endings-exiter
			os.Exit(4)
		}()
		select {}
	case "signal":
		fmt.Println("ready")
		// Asleep, not deadlocked: the runtime would end a program whose
		// every goroutine is blocked.
		for {
			time.Sleep(time.Hour)
		}
	}
}
