// Command stress is the target of `cargo xtask stress`: one workload per mode,
// each starting its goroutines from one `go` statement of its own, so the
// harness can find them in leaktrace's report by their entry function.
//
//	stress spawn -n N        start N goroutines that exit at once (10,000 at a time)
//	stress stack -n N        N goroutines recurse to depths 1..200 (growing their
//	                         stacks), park on a channel at the bottom, then exit
//	stress gc -n N           N goroutines allocate and park, 1,000 at a time (run with GOGC=1)
//	stress park -seconds S   two goroutines ping-pong over channels for S seconds
//	stress fork              run /bin/true forever, printing "forks N" every 50
//	stress exitmany -n N     start N blocked goroutines, print "ready PID", os.Exit(0)
//	stress leak -n N         start N blocked goroutines, print "ready"; on SIGUSR1
//	                         leak N more (one every 5 ms), print "leaked 2N"; run forever
//
// spawn, stack and gc wait until their goroutines have exited, not only
// called wg.Done. Every mode prints "done" before it returns, and exits with
// -exit (default 0).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 1000, "goroutines")
	seconds := flag.Int("seconds", 3, "park: seconds of ping-pong")
	exit := flag.Int("exit", 0, "exit status")
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: stress MODE [FLAGS]")
		os.Exit(2)
	}
	mode := os.Args[1]
	// Parse exits with status 2 on a bad flag.
	_ = flag.CommandLine.Parse(os.Args[2:])

	base := runtime.NumGoroutine()
	switch mode {
	case "spawn":
		spawn(*n)
		settle(base)
	case "stack":
		stack(*n)
		settle(base)
	case "gc":
		gc(*n)
		settle(base)
	case "park":
		park(time.Duration(*seconds) * time.Second)
	case "fork":
		fork()
	case "exitmany":
		exitMany(*n)
	case "leak":
		leak(*n)
	default:
		fmt.Fprintf(os.Stderr, "stress: unknown mode %q\n", mode)
		os.Exit(2)
	}
	fmt.Println("done")
	os.Exit(*exit)
}

// settle waits (at most 10 s) until only base goroutines are left: a worker
// that has called wg.Done has not exited yet, and the harness counts exits.
func settle(base int) {
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

func spawn(n int) {
	const batch = 10000
	var wg sync.WaitGroup
	for started := 0; started < n; {
		k := n - started
		if k > batch {
			k = batch
		}
		wg.Add(k)
		for i := 0; i < k; i++ {
			go spawnWorker(&wg)
		}
		wg.Wait()
		started += k
	}
}

func spawnWorker(wg *sync.WaitGroup) {
	wg.Done()
}

func stack(n int) {
	release := make(chan struct{})
	var parked, exited sync.WaitGroup
	parked.Add(n)
	exited.Add(n)
	for i := 0; i < n; i++ {
		go stackWorker(1+i%200, release, &parked, &exited)
	}
	parked.Wait()
	close(release)
	exited.Wait()
}

func stackWorker(depth int, release <-chan struct{}, parked, exited *sync.WaitGroup) {
	defer exited.Done()
	recurse(depth, release, parked)
}

// recurse uses a 1 KiB frame per level, so depth 200 grows the stack from
// 2 KiB to 256 KiB: seven copies.
//
//go:noinline
func recurse(depth int, release <-chan struct{}, parked *sync.WaitGroup) byte {
	var frame [1024]byte
	frame[depth%len(frame)] = byte(depth)
	if depth <= 1 {
		parked.Done()
		<-release
		return frame[0]
	}
	return frame[depth%len(frame)] + recurse(depth-1, release, parked)
}

var sink atomic.Value

func gc(n int) {
	const batch = 1000
	for started := 0; started < n; {
		k := n - started
		if k > batch {
			k = batch
		}
		release := make(chan struct{})
		var parked, exited sync.WaitGroup
		parked.Add(k)
		exited.Add(k)
		for i := 0; i < k; i++ {
			go gcWorker(release, &parked, &exited)
		}
		parked.Wait()
		close(release)
		exited.Wait()
		started += k
	}
}

func gcWorker(release <-chan struct{}, parked, exited *sync.WaitGroup) {
	defer exited.Done()
	garbage := make([][]byte, 0, 16)
	for i := 0; i < 16; i++ {
		garbage = append(garbage, make([]byte, 4096))
	}
	sink.Store(garbage)
	parked.Done()
	<-release
	sink.Store([][]byte{make([]byte, 8192)})
}

func park(d time.Duration) {
	var rounds int64
	ping, pong := make(chan int), make(chan int)
	go pongWorker(ping, pong)
	deadline := time.Now().Add(d)
	for v := 0; time.Now().Before(deadline); {
		for i := 0; i < 1000; i++ {
			ping <- v
			v = <-pong
		}
		rounds += 1000
	}
	close(ping)
	fmt.Println("rounds", rounds)
}

func pongWorker(ping <-chan int, pong chan<- int) {
	for v := range ping {
		pong <- v + 1
	}
}

func fork() {
	for forks := 1; ; forks++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			fmt.Fprintln(os.Stderr, "stress: /bin/true:", err)
			os.Exit(1)
		}
		if forks%50 == 0 {
			fmt.Println("forks", forks)
		}
	}
}

func exitMany(n int) {
	never := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	for i := 0; i < n; i++ {
		go exitManyWorker(never, &started)
	}
	started.Wait()
	fmt.Println("ready", os.Getpid())
	os.Exit(0)
}

func exitManyWorker(never <-chan struct{}, started *sync.WaitGroup) {
	started.Done()
	<-never
}

func leak(n int) {
	never := make(chan struct{})
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	for i := 0; i < n; i++ {
		startLeak(never)
	}
	fmt.Println("ready")
	<-usr1
	for i := 0; i < n; i++ {
		startLeak(never)
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("leaked", 2*n)
	for {
		time.Sleep(time.Hour)
	}
}

// startLeak is the one `go` statement of the leak mode, so that its
// goroutines, old and new, are one site.
//
//go:noinline
func startLeak(never <-chan struct{}) {
	go leakWorker(never)
}

func leakWorker(never <-chan struct{}) {
	<-never
}
