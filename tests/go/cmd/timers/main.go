// Command timers runs one timer example from the seed documents, leaking or
// fixed, or a variant, then exits. Lines marked `// timer:NAME` create the
// timers, `// site:NAME` the goroutines, that the tests expect.
//
// The tests build it twice: with this module's go.mod (go 1.19), and with
// go123.mod (go 1.23), which switches Go 1.23+ toolchains to the new timer
// semantics, where a channel timer nothing refers to is collected.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"
)

var scenarios = map[string]func(){
	// Seed 1, §2 使用超时机制: time.After in a select loop. The seed's one
	// second is an hour here, so that the timers are still pending at exit
	// however slow the machine.
	"after-in-loop": runChannelWithTimeout,
	// Seed 2, §二: a Timer neither fired nor stopped, and referenced.
	"timer-referenced": keepTimer,
	// Seed 2, §二 解决方案 2: Stop the timer once done.
	"timer-stopped": runStoppedTimers,
	// AfterFunc never stopped, and stopped.
	"afterfunc-pending": runAfterFuncs,
	"afterfunc-stopped": runStoppedAfterFuncs,
	// A timer stopped and reset.
	"timer-reset": resetTimer,
	// context.WithTimeout whose cancel is never called, and called.
	"context-no-cancel": runContextsWithoutCancel,
	"context-cancel":    runContextsWithCancel,
	// A goroutine blocked on time.After forever.
	"timer-receiver": waitOnTimer,
}

func main() {
	run, ok := scenarios[os.Args[len(os.Args)-1]]
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: timers SCENARIO")
		os.Exit(2)
	}
	run()
	// Let goroutines reach the receive they block in.
	time.Sleep(200 * time.Millisecond)
}

// 使用超时机制: a producer that gives up after a timeout; every send that
// succeeds leaves its time.After timer pending.
func correctChannelWithTimeout(ch chan int) {
	for i := 0; i < 100; i++ {
		select {
		case ch <- i:
		case <-time.After(1 * time.Hour): // timer:after-in-loop
			return
		}
	}
	close(ch)
}

func runChannelWithTimeout() {
	ch := make(chan int, 10)
	go correctChannelWithTimeout(ch)
	for range ch {
	}
}

var kept *time.Timer

func keepTimer() {
	kept = time.NewTimer(time.Hour) // timer:referenced
}

func stoppedTimer(done <-chan struct{}) {
	t := time.NewTimer(time.Hour) // timer:stopped
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
}

func runStoppedTimers() {
	done := make(chan struct{})
	close(done)
	for i := 0; i < 3; i++ {
		stoppedTimer(done)
	}
}

var fired int

func runAfterFuncs() {
	for i := 0; i < 3; i++ {
		time.AfterFunc(time.Hour, func() { fired++ }) // timer:afterfunc-pending
	}
}

func runStoppedAfterFuncs() {
	for i := 0; i < 3; i++ {
		t := time.AfterFunc(time.Hour, func() { fired++ }) // timer:afterfunc-stopped
		t.Stop()
	}
}

func resetTimer() {
	kept = time.NewTimer(time.Hour) // timer:reset
	kept.Stop()
	kept.Reset(2 * time.Hour)
}

var contexts []context.Context

func runContextsWithoutCancel() {
	for i := 0; i < 2; i++ {
		ctx, _ := context.WithTimeout(context.Background(), time.Hour) // timer:context-no-cancel
		contexts = append(contexts, ctx)
	}
}

func runContextsWithCancel() {
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // timer:context-cancel
		contexts = append(contexts, ctx)
		cancel()
	}
}

func waitOnTimer() {
	go func() { // site:receiver
		<-time.After(time.Hour) // timer:receiver
	}()
	for runtime.NumGoroutine() < 2 {
		runtime.Gosched()
	}
}
