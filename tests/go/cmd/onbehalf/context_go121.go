//go:build go1.21

package main

import "context"

func startContextCallbacks() {
	ctx, cancel := context.WithCancel(context.Background())
	for i := 0; i < 2; i++ {
		context.AfterFunc(ctx, release)
	}
	cancel()
}
