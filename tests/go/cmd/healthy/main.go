// Command healthy is a well-behaved server for attach-mode tests: an HTTP
// listener, a worker pool fed by the handler, and an in-process client that
// keeps idle keep-alive connections open between requests. Nothing leaks;
// leaktrace must not say otherwise.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

type pool struct {
	jobs chan int
	wg   sync.WaitGroup
}

func newPool(workers int) *pool {
	p := &pool{jobs: make(chan int)}
	for i := 0; i < workers; i++ {
		p.wg.Add(1)
		go p.work() // site:healthy-worker
	}
	return p
}

func (p *pool) work() {
	defer p.wg.Done()
	for j := range p.jobs {
		_ = j * j
	}
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	workers := newPool(4)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() { // site:healthy-request
			workers.jobs <- 1
			close(done)
		}()
		<-done
		fmt.Fprintln(w, "ok")
	})
	go http.Serve(ln, mux) // site:healthy-listener

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	url := "http://" + ln.Addr().String() + "/"
	get := func() {
		resp, err := client.Get(url)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// Four connections, kept alive and idle between bursts.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); get() }() // site:healthy-client
	}
	wg.Wait()
	fmt.Println("ready")
	for {
		get()
		time.Sleep(20 * time.Millisecond)
	}
}
