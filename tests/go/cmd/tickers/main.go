// Command tickers runs one ticker example from the seed documents, leaking
// or fixed, or a variant, then exits. Lines marked `// ticker:NAME` create
// the tickers, `// site:NAME` the goroutines, that the tests expect.
//
// The tests build it twice: with this module's go.mod (go 1.19), and with
// go123.mod (go 1.23), which switches Go 1.23+ toolchains to the new timer
// semantics, where an unreferenced unstopped ticker is collected.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"
)

var scenarios = map[string]func(){
	// Seed 1, §3 定时器泄漏.
	"ticker-range-forever": tickerLeakExample,
	"ticker-many":          multipleTickerLeak,
	"ticker-defer-stop":    correctTickerExample,
	"ticker-context":       runCorrectTickerWithContext,
	// Seed 2, §二 未停止的time.Ticker.
	"ticker-read-once":     runLeakTicker,
	"ticker-fixed-context": runFixedTicker,
	// Variants: tickers kept in a global slice, stopped through a context, time.Tick.
	"ticker-global-slice":  keepTickers,
	"ticker-stop-on-cancel": stopOnCancel,
	"ticker-tick":          tickForever,
}

func main() {
	run, ok := scenarios[os.Args[len(os.Args)-1]]
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: tickers SCENARIO")
		os.Exit(2)
	}
	run()
	// Let goroutines reach the receive they block in.
	time.Sleep(200 * time.Millisecond)
}

// 示例 1：忘记停止 Ticker
func tickerLeakExample() {
	ticker := time.NewTicker(1 * time.Second) // ticker:range-forever
	go func() { // site:range-forever
		for t := range ticker.C {
			fmt.Println("Tick at", t)
		}
	}()
	// 忘记调用 ticker.Stop()
}

// 示例 2：多个 Ticker 泄漏
func multipleTickerLeak() {
	for i := 0; i < 100; i++ {
		ticker := time.NewTicker(1 * time.Second) // ticker:many
		go func(id int, t *time.Ticker) { // site:many
			for range t.C {
				fmt.Printf("Ticker %d ticked\n", id)
			}
		}(i, ticker)
	}
}

// 正确做法: defer ticker.Stop(). The ticker is stopped, but Stop does not
// close C, so the goroutine ranging over it still leaks.
func correctTickerExample() {
	ticker := time.NewTicker(1 * time.Second) // ticker:defer-stop
	defer ticker.Stop()
	go func() { // site:defer-stop
		for t := range ticker.C {
			fmt.Println("Tick at", t)
		}
	}()
	time.Sleep(50 * time.Millisecond)
}

// 正确做法: context 控制生命周期
func correctTickerWithContext(ctx context.Context) {
	ticker := time.NewTicker(1 * time.Second) // ticker:context
	defer ticker.Stop()
	go func() { // site:context
		for {
			select {
			case t := <-ticker.C:
				fmt.Println("Tick at", t)
			case <-ctx.Done():
				return
			}
		}
	}()
}

func runCorrectTickerWithContext() {
	ctx, cancel := context.WithCancel(context.Background())
	correctTickerWithContext(ctx)
	cancel()
	waitForGoroutines(1)
}

// Seed 2: 仅读取一次，未调用Stop()
func leakTicker() {
	ticker := time.NewTicker(100 * time.Millisecond) // ticker:read-once
	<-ticker.C
	fmt.Println("ticker once")
}

func runLeakTicker() {
	for i := 0; i < 10; i++ {
		leakTicker()
	}
}

// Seed 2: 修复后的代码
func fixedTicker(ctx context.Context) {
	ticker := time.NewTicker(100 * time.Millisecond) // ticker:fixed-context
	defer ticker.Stop()
	go func() { // site:fixed-context
		for {
			select {
			case <-ticker.C:
				fmt.Println("ticker tick")
			case <-ctx.Done():
				return
			}
		}
	}()
}

func runFixedTicker() {
	ctx, cancel := context.WithCancel(context.Background())
	for i := 0; i < 10; i++ {
		fixedTicker(ctx)
	}
	cancel()
	waitForGoroutines(1)
}

// Tickers kept in a global slice, never stopped, never read.
var kept []*time.Ticker

func keepTickers() {
	for i := 0; i < 5; i++ {
		kept = append(kept, time.NewTicker(time.Hour)) // ticker:global-slice
	}
}

// A poller that stops its own ticker when its context is cancelled.
func stopOnCancel() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // site:stop-on-cancel
		defer close(done)
		ticker := time.NewTicker(10 * time.Millisecond) // ticker:stop-on-cancel
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	waitForGoroutines(1)
}

// time.Tick in a loop that never ends.
func tickForever() {
	go func() { // site:tick
		for range time.Tick(time.Minute) { // ticker:tick
			fmt.Println("tick")
		}
	}()
}

func waitForGoroutines(n int) {
	for runtime.NumGoroutine() > n {
		time.Sleep(time.Millisecond)
	}
}
