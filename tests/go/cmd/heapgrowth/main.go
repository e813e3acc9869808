// Command heapgrowth runs one example of a global collection that only
// grows, from the seed documents, leaking or fixed, then exits (or, with
// "serve", keeps growing until killed, for attach mode). Lines marked
// `// heap:NAME` allocate what the tests expect to find in use.
//
// Built with `-tags memprofile`, it links runtime.MemProfile (as any program
// importing net/http/pprof does), so the runtime keeps a heap profile, and
// records every allocation, so the counts are exact; without, the linker
// disables memory profiling.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

var scenarios = map[string]func(){
	// Seed 2, §三: a global map that only grows (bounded here: 200 requests).
	"global-map": runGlobalMap,
	// Seed 2, §三 修复后的代码: entries expire and are deleted.
	"global-map-fixed": runExpirableMap,
	// Seed 1, §4 示例 2: a global slice holding large objects (20, not 1000).
	"global-slice": globalSliceLeak,
	// Attach mode: a request loop that grows a global map, next to one
	// whose buffers are garbage as soon as the request ends.
	"serve": serve,
}

func main() {
	run, ok := scenarios[os.Args[len(os.Args)-1]]
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: heapgrowth SCENARIO")
		os.Exit(2)
	}
	run()
	// The heap profile is published by GC cycles: the second one makes the
	// first one's counts final.
	runtime.GC()
	runtime.GC()
}

// 全局map，存储所有请求的日志，永不清理
var globalLogMap = make(map[string]interface{})

func logRequest(id string, data interface{}) {
	globalLogMap[id] = data
}

func runGlobalMap() {
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("req-%d", i)
		data := make([]byte, 1024) // heap:global-map
		logRequest(id, data)
	}
}

type ExpirableMap struct {
	mu   sync.RWMutex
	data map[string]item
}

type item struct {
	value    interface{}
	expireAt time.Time
}

func (m *ExpirableMap) cleanup() {
	m.mu.Lock()
	now := time.Now()
	for id, item := range m.data {
		if now.After(item.expireAt) {
			delete(m.data, id)
		}
	}
	m.mu.Unlock()
}

func (m *ExpirableMap) Set(id string, value interface{}, ttl time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[id] = item{value: value, expireAt: time.Now().Add(ttl)}
}

var expirable = &ExpirableMap{data: make(map[string]item)}

func runExpirableMap() {
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("req-%d", i)
		data := make([]byte, 1024) // heap:global-map-fixed
		expirable.Set(id, data, time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	expirable.cleanup()
}

var globalSlice []*LargeObject

type LargeObject struct {
	Data [1024 * 1024]byte
	ID   int
}

func globalSliceLeak() {
	for i := 0; i < 20; i++ {
		obj := &LargeObject{ID: i} // heap:global-slice
		globalSlice = append(globalSlice, obj)
	}
}

var sink []byte

func serve() {
	fmt.Println("serving")
	for i := 0; ; i++ {
		id := fmt.Sprintf("req-%d", i)
		logRequest(id, make([]byte, 1024)) // heap:serve-leak
		buf := make([]byte, 4096)          // heap:serve-garbage
		sink = buf
		if i%100 == 0 {
			// A busy service collects often; this one is small.
			runtime.GC()
		}
		time.Sleep(time.Millisecond)
	}
}
