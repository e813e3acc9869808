// Command httpbench is a net/http hello-world server for `cargo xtask bench`.
// It listens on -addr, prints "listening ADDR" on stdout once it does, and
// serves until killed. With -timeout D > 0, each handler derives a context
// with that timeout from the request's, as real services do, so every request
// also creates and stops a runtime timer.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"
)

var hello = []byte("hello, world\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	timeout := flag.Duration("timeout", 0, "when > 0, give each request a context with this timeout")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, handler(*timeout)))
}

func handler(timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if timeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			if err := ctx.Err(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(hello)
	})
}
