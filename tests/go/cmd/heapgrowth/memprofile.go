//go:build memprofile

package main

import (
	"os"
	"runtime"
)

// Calls runtime.MemProfile where it is reachable, as net/http/pprof does,
// so the linker leaves memory profiling on; and records every allocation
// (GODEBUG=memprofilerate=1 is overwritten by the runtime's own package
// initialisation on Go 1.19), so the tests' counts are exact.
func init() {
	runtime.MemProfileRate = 1
	if os.Getenv("HEAPGROWTH_MEMPROFILE") != "" {
		runtime.MemProfile(nil, true)
	}
}
