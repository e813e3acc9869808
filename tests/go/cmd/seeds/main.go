// Command seeds runs one goroutine or channel example from the seed documents
// (../shared/seeds: "Go 语言内存泄漏示例" and the Go memory-leak catalogue),
// leaking or fixed, or a control, then exits.
//
// leaktrace's end-to-end tests assert the exact report for each scenario. A
// line marked `// site:NAME` is a go statement the tests expect in the report;
// they find its line number by the marker, so the code can move freely.
//
// Before exiting, main waits until the number of goroutines is what the
// scenario leaves behind, then gives the leaked ones a moment to block, so
// the state at exit is the same on every run.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

type scenario struct {
	run func()
	// Goroutines still alive when the scenario is over.
	leaks int
}

var scenarios = map[string]scenario{
	// Seed 1, §1 Goroutine 泄漏.
	"goroutine-infinite-loop":  {goroutineLeakExample, 1},
	"goroutine-never-signaled": {waitingGoroutineLeak, 1},
	"goroutine-done-channel":   {correctGoroutineExample, 0},
	"goroutine-context":        {runCorrectWithContext, 0},
	// Seed 1, §2 Channel 泄漏.
	"channel-blocked-sender":   {senderChannelLeak, 1},
	"channel-unclosed":         {unclosedChannelLeak, 1},
	"channel-done":             {correctChannelExample, 0},
	"channel-timeout":          {correctChannelWithTimeout, 0},
	// Seed 2, §一 未正确终止的Goroutine: 10,000 leaked receivers, and the fix.
	"goroutine-10000":       {leak10000, 10000},
	"goroutine-10000-fixed": {fixed10000, 0},
	// Stack growth: goroutines park at every depth across many stack sizes, so
	// the runtime re-enters functions through morestack while they are probed.
	"stack-growth": {stackGrowth, stackGrowthLeaks},
	// Unusual ends: runtime.Goexit and recovered panics are exits too.
	"lifecycle-goexit":          {goexitAndRecoveredPanics, lifecycleLeaks},
	// Controls: nothing here leaks.
	"control-finished":    {finishedGoroutines, 0},
	"control-worker-pool": {workerPoolStoppedByContext, 0},
}

func main() {
	if len(os.Args) != 2 {
		usage()
	}
	s, ok := scenarios[os.Args[1]]
	if !ok {
		usage()
	}
	baseline := runtime.NumGoroutine()
	s.run()
	waitForGoroutines(baseline + s.leaks)
	if s.leaks > 0 {
		// Let the leaked goroutines reach the operation they block on.
		time.Sleep(200 * time.Millisecond)
	}
}

func usage() {
	names := make([]string, 0, len(scenarios))
	for name := range scenarios {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: seeds SCENARIO\nscenarios: %v\n", names)
	os.Exit(2)
}

func waitForGoroutines(n int) {
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() != n {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "seeds: %d goroutines, want %d\n", runtime.NumGoroutine(), n)
			os.Exit(1)
		}
		time.Sleep(time.Millisecond)
	}
}

// 示例 1：无限循环的 Goroutine
func goroutineLeakExample() {
	go func() { // site:infinite-loop
		for {
			// 无限循环，goroutine 永远不会退出
			fmt.Println("Running...")
			time.Sleep(1 * time.Second)
		}
	}()
}

// 示例 2：等待永远不会到来的信号
func waitingGoroutineLeak() {
	ch := make(chan bool)

	go func() { // site:never-signaled
		<-ch
		fmt.Println("This will never be printed")
	}()
}

// 正确做法: done channel. (The seed's version also closes done inside the
// goroutine, which would panic on the second close; the intent is kept.)
func correctGoroutineExample() {
	done := make(chan bool)

	go func() { // site:done-channel
		for {
			select {
			case <-done:
				return // 正确退出
			default:
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()

	time.Sleep(50 * time.Millisecond)
	close(done)
}

// 正确做法: context.Context（推荐）
func correctWithContext(ctx context.Context) {
	go func() { // site:context
		for {
			select {
			case <-ctx.Done():
				return
			default:
				// 执行工作
				runtime.Gosched()
			}
		}
	}()
}

func runCorrectWithContext() {
	ctx, cancel := context.WithCancel(context.Background())
	correctWithContext(ctx)
	time.Sleep(50 * time.Millisecond)
	cancel()
}

// Channel 示例 1：发送者阻塞
func senderChannelLeak() {
	ch := make(chan int) // 无缓冲 channel

	go func() { // site:blocked-sender
		ch <- 42
		fmt.Println("This will never be printed")
	}()
}

// Channel 示例 2：忘记关闭 Channel
func unclosedChannelLeak() {
	ch := make(chan int)

	go func() { // site:unclosed-sender
		for i := 0; i < 10; i++ {
			ch <- i
		}
		// 忘记关闭 channel
	}()

	go func() { // site:unclosed-receiver
		for val := range ch {
			fmt.Println("Received:", val)
		}
	}()
}

// 正确做法: done channel
func correctChannelExample() {
	ch := make(chan int)
	done := make(chan bool)

	go func() { // site:channel-done-sender
		defer close(ch)
		for i := 0; i < 10; i++ {
			select {
			case ch <- i:
			case <-done:
				return
			}
		}
	}()

	go func() { // site:channel-done-receiver
		for val := range ch {
			fmt.Println("Received:", val)
		}
	}()

	time.Sleep(50 * time.Millisecond)
	close(done)
}

// 正确做法: 超时机制. Nobody reads ch; the sender gives up after one second.
func correctChannelWithTimeout() {
	ch := make(chan int, 10) // 使用缓冲 channel

	go func() { // site:channel-timeout
		for i := 0; i < 100; i++ {
			select {
			case ch <- i:
			case <-time.After(1 * time.Second):
				// 超时处理，避免永久阻塞
				return
			}
		}
		close(ch)
	}()
}

// Seed 2: 启动的goroutine阻塞在chan接收，且无发送方，永久无法退出
func leakGoroutine() {
	ch := make(chan int)
	go func() { // site:leak-10000
		val := <-ch // 阻塞在此处，协程永不退出
		fmt.Println("received:", val)
	}()
}

func leak10000() {
	for i := 0; i < 10000; i++ {
		leakGoroutine() // 循环调用，创建1万个泄漏的goroutine
	}
}

// Seed 2: 修复后的代码
func fixedGoroutine(ctx context.Context) {
	ch := make(chan int, 1) // 可选：用缓冲chan减少阻塞概率
	go func() { // site:fixed-10000
		select {
		case val := <-ch:
			_ = val
		case <-ctx.Done(): // 监听取消信号，触发时退出协程
			return
		}
	}()
	ch <- 1
}

func fixed10000() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // 函数退出时取消所有协程
	for i := 0; i < 10000; i++ {
		fixedGoroutine(ctx)
	}
}

// Control: goroutines that do their work and finish.
func finishedGoroutines() {
	var wg sync.WaitGroup
	results := make([]int, 50)
	for i := range results {
		wg.Add(1)
		go func(i int) { // site:finished
			defer wg.Done()
			results[i] = i * i
		}(i)
	}
	wg.Wait()
}

// Control: a long-lived worker pool, shut down cleanly through a context.
func workerPoolStoppedByContext() {
	ctx, cancel := context.WithCancel(context.Background())
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() { // site:worker
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-jobs:
					_ = j * 2
				}
			}
		}()
	}
	for j := 0; j < 100; j++ {
		jobs <- j
	}
	// Idle workers wait in select; stopping them is the clean shutdown.
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg.Wait()
}

const (
	stackGrowthGoroutines = 1500
	stackGrowthLeaks      = 100
)

// deep recurses n levels with a 64-byte frame, then parks on ch at the
// bottom: the growing stack crosses each power-of-two boundary at a different
// point in the call chain for each n.
func deep(n int, ch chan int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	if n == 0 {
		return <-ch + int(pad[0])
	}
	return deep(n-1, ch) + int(pad[n%64])
}

func stackGrowth() {
	release := make(chan int)
	never := make(chan int)
	var wg sync.WaitGroup
	for i := 0; i < stackGrowthGoroutines; i++ {
		wg.Add(1)
		go func(depth int) { // site:stack-growth
			defer wg.Done()
			deep(depth, release)
		}(i)
	}
	for i := 0; i < stackGrowthLeaks; i++ {
		go func(depth int) { // site:stack-growth-leak
			deep(depth, never)
		}(i * 13)
	}
	// Let every goroutine park at the bottom of its recursion, then release them.
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < stackGrowthGoroutines; i++ {
		release <- i
	}
	wg.Wait()
}

const lifecycleLeaks = 2

// goexitAndRecoveredPanics ends goroutines through runtime.Goexit and
// through a recovered panic, and leaks two that block forever.
func goexitAndRecoveredPanics() {
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() { // site:goexit
			defer wg.Done()
			runtime.Goexit()
		}()
	}
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() { // site:recovered-panic
			defer wg.Done()
			defer func() { _ = recover() }()
			panic("recovered")
		}()
	}
	wg.Wait()
	block := make(chan int)
	for i := 0; i < lifecycleLeaks; i++ {
		go func() { // site:lifecycle-leak
			defer func() { _ = recover() }()
			<-block
		}()
	}
}
