// Command service is a long-running process for attach-mode tests. It has a
// healthy worker pool fed continuously, `-preleak N` goroutines leaked at
// start (before any tracer attaches), and leaks one more goroutine on each
// SIGUSR1, so a test knows exactly how many leaked while it observed.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// handle waits for a reply nobody sends.
func handle(id int) {
	reply := make(chan int)
	go func() { // site:service-leak
		<-reply
		fmt.Println("never", id)
	}()
}

func workerPool(jobs chan int) {
	for w := 0; w < 4; w++ {
		go func() { // site:service-worker
			for j := range jobs {
				_ = j * j
			}
		}()
	}
}

func main() {
	preleak := flag.Int("preleak", 0, "goroutines to leak at start")
	flag.Parse()

	jobs := make(chan int)
	workerPool(jobs)
	go func() { // site:service-producer
		for i := 0; ; i++ {
			jobs <- i
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for i := 0; i < *preleak; i++ {
		handle(i)
	}

	usr1 := make(chan os.Signal, 16)
	signal.Notify(usr1, syscall.SIGUSR1)
	fmt.Println("ready")
	for n := *preleak; ; n++ {
		<-usr1
		handle(n)
	}
}
