// Package timeout has a test that never ends: `go test -timeout` panics the
// test binary, and leaktrace must still read its goroutines at that moment.
package timeout

import "testing"

func TestNeverEnds(t *testing.T) {
	never := make(chan int)
	go func() { // site:timeout-leak
		<-never
	}()
	<-never // blame:timeout-test
}
