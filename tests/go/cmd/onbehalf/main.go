// Command onbehalf leaves goroutines that the standard library started for
// it: `onbehalf SCENARIO` where SCENARIO is
//
//	http-unclosed  three GETs whose response bodies are never closed
//	http-closed    three GETs whose bodies are read and closed (no leak)
//	callbacks      time.AfterFunc (and, Go 1.21+, context.AfterFunc)
//	               callbacks blocked in this program's code
//	exec           a command started and never waited for
//	serve          an HTTP server whose handler blocks forever: prints
//	               "ready", then on SIGUSR2 sends it 20 requests, one after
//	               the other, each given up by the client after 30ms; runs
//	               until killed (for `leaktrace -p`)
//	client         prints "ready", then on SIGUSR2 sends ten GETs whose
//	               bodies it never closes; runs until killed
//
// leaktrace must blame the lines here, not net/http, time, context or os/exec.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

var (
	never = make(chan struct{})
	held  sync.Mutex
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: onbehalf http-unclosed|http-closed|callbacks|exec")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "http-unclosed":
		fetch(false)
	case "http-closed":
		fetch(true)
	case "callbacks":
		callbacks()
	case "exec":
		startCommand()
	case "serve":
		serve()
	case "client":
		leakyClient()
	default:
		fmt.Fprintln(os.Stderr, "onbehalf: unknown scenario", os.Args[1])
		os.Exit(2)
	}
	time.Sleep(300 * time.Millisecond)
}

func fetch(closeBodies bool) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))
	client := &http.Client{Transport: &http.Transport{}}
	for i := 0; i < 3; i++ {
		resp, err := client.Get(server.URL) // blame:request
		if err != nil {
			panic(err)
		}
		if closeBodies {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

func callbacks() {
	held.Lock()
	for i := 0; i < 3; i++ {
		time.AfterFunc(time.Millisecond, flush)
	}
	startContextCallbacks()
}

func flush() {
	<-never // blame:timer-callback
}

// release runs in context.AfterFunc callbacks (Go 1.21+).
func release() {
	held.Lock() // blame:context-callback
}

func startCommand() {
	var out bytes.Buffer
	cmd := exec.Command("sleep", "5")
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil { // blame:exec
		panic(err)
	}
}

// report is a handler that waits for a result nobody sends.
func report(w http.ResponseWriter, r *http.Request) {
	<-never // blame:handler
}

func serve() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, http.HandlerFunc(report))
	start := make(chan os.Signal, 1)
	signal.Notify(start, syscall.SIGUSR2)
	fmt.Println("ready")
	<-start
	client := &http.Client{Timeout: 30 * time.Millisecond}
	for i := 0; i < 20; i++ {
		if resp, err := client.Get("http://" + ln.Addr().String()); err == nil {
			resp.Body.Close()
		}
	}
	select {}
}

func leakyClient() {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))
	client := &http.Client{Transport: &http.Transport{}}
	start := make(chan os.Signal, 1)
	signal.Notify(start, syscall.SIGUSR2)
	fmt.Println("ready")
	<-start
	for i := 0; i < 10; i++ {
		if _, err := client.Get(server.URL); err != nil { // blame:leaky-client
			panic(err)
		}
	}
	select {}
}
