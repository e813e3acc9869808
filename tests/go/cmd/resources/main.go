// Command resources runs one example of an external resource left open,
// from the seed documents (seed 2, §七), leaking or fixed, then exits.
// Lines marked `// open:NAME` open what the tests expect to find.
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

var scenarios = map[string]func(){
	// 文件/目录：os.Open 后未调用 Close()
	"file-unclosed": openFiles,
	"file-closed":   openAndCloseFiles,
	// 网络连接：未关闭 resp.Body
	"http-unclosed": func() { fetch(false) },
	"http-closed":   func() { fetch(true) },
	// os/exec 的 Cmd 未关闭 Stdout
	"exec-pipe-unclosed": startWithPipe,
	// For attach mode: prints "ready", then opens a file every 10ms and
	// never closes it, until killed.
	"serve": serve,
}

var kept []*os.File

func main() {
	run, ok := scenarios[os.Args[len(os.Args)-1]]
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: resources SCENARIO")
		os.Exit(2)
	}
	run()
	time.Sleep(200 * time.Millisecond)
	for _, f := range kept {
		// The files stay open; their names go.
		os.Remove(f.Name())
	}
}

func tempFile(i int) string {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("leaktrace-resources-%d-%d", os.Getpid(), i))
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		panic(err)
	}
	return path
}

func openFiles() {
	for i := 0; i < 3; i++ {
		f, err := os.Open(tempFile(i)) // open:file-unclosed
		if err != nil {
			panic(err)
		}
		kept = append(kept, f)
	}
}

func openAndCloseFiles() {
	for i := 0; i < 3; i++ {
		path := tempFile(i)
		f, err := os.Open(path) // open:file-closed
		if err != nil {
			panic(err)
		}
		_, _ = io.ReadAll(f)
		f.Close()
		os.Remove(path)
	}
}

// The seed's leakHTTP, against a local server; the body is not read to the
// end, so its connection cannot go back to the pool.
func fetch(closeBodies bool) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))
	// The server's side is closed: what stays open is the client's.
	defer server.Close()
	client := &http.Client{Transport: &http.Transport{}}
	for i := 0; i < 3; i++ {
		resp, err := client.Get(server.URL) // open:http
		if err != nil {
			panic(err)
		}
		if closeBodies {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

func serve() {
	path := tempFile(0)
	defer os.Remove(path)
	for i := 0; i < 5; i++ {
		openForever(path)
	}
	fmt.Println("ready")
	for {
		openForever(path)
		time.Sleep(10 * time.Millisecond)
	}
}

func openForever(path string) {
	f, err := os.Open(path) // open:serve
	if err != nil {
		panic(err)
	}
	kept = append(kept, f)
}

// A command whose stdout pipe is never read nor closed, and which is never
// waited for.
func startWithPipe() {
	cmd := exec.Command("sleep", "5")
	if _, err := cmd.StdoutPipe(); err != nil { // open:exec-pipe
		panic(err)
	}
	if err := cmd.Start(); err != nil {
		panic(err)
	}
}
