// Command service is a long-running process for attach-mode tests. It has a
// healthy worker pool fed continuously, `-preleak N` goroutines leaked at
// start (before any tracer attaches), and leaks one more goroutine on each
// SIGUSR1, so a test knows exactly how many leaked while it observed. With
// `-leak-every D -leak-count N` it also leaks N goroutines, one every D,
// from the first SIGUSR2 on.
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

// tickLoop receives from its own ticker forever: the ticker leaks, and so
// does the goroutine.
func tickLoop() {
	t := time.NewTicker(time.Hour)
	for range t.C {
	}
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
	leakEvery := flag.Duration("leak-every", 0, "also leak one goroutine this often")
	leakCount := flag.Int("leak-count", 0, "with -leak-every: stop after this many")
	tickers := flag.Int("tickers", 0, "goroutines ranging over a ticker of their own, forever")
	flag.Parse()

	for i := 0; i < *tickers; i++ {
		go tickLoop() // site:service-ticker
	}

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

	if *leakEvery > 0 {
		start := make(chan os.Signal, 1)
		signal.Notify(start, syscall.SIGUSR2)
		go leakSteadily(start, *leakEvery, *leakCount) // site:service-steady
	}

	usr1 := make(chan os.Signal, 16)
	signal.Notify(usr1, syscall.SIGUSR1)
	fmt.Println("ready")
	for n := *preleak; ; n++ {
		<-usr1
		handle(n)
	}
}

// leakSteadily waits for SIGUSR2, then leaks one goroutine per period,
// count times: a steady leak.
func leakSteadily(start chan os.Signal, period time.Duration, count int) {
	<-start
	for n := 1; n <= count; n++ {
		handle(-n)
		time.Sleep(period)
	}
}
