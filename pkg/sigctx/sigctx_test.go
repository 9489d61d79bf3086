//go:build unix

package sigctx

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestWatchCancelsOnSignal(t *testing.T) {
	c := New(context.Background(), syscall.SIGUSR1)
	defer c.Stop()
	c.Watch()
	c.Watch() // a second call changes nothing
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the signal did not cancel the context")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", c.Err())
	}
	cause := context.Cause(c)
	if cause == nil || cause.Error() != "user defined signal 1 signal received" || !errors.Is(cause, context.Canceled) {
		t.Errorf("Cause() = %v, want the signal, as context.Canceled", cause)
	}
}

func TestStopBeforeWatch(t *testing.T) {
	c := New(context.Background(), syscall.SIGUSR1)
	if c.Err() != nil {
		t.Fatal("cancelled before any signal")
	}
	c.Stop()
	if !errors.Is(c.Err(), context.Canceled) || context.Cause(c) != context.Canceled {
		t.Errorf("after Stop: Err() = %v, Cause() = %v", c.Err(), context.Cause(c))
	}
	c.Watch() // after Stop: no handler is installed
	if c.ch != nil {
		t.Error("Watch after Stop installed a handler")
	}
}

func TestWatchOnCancelledParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	cancel()
	c := New(parent, syscall.SIGUSR1)
	c.Watch()
	c.Stop()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("Err() = %v", c.Err())
	}
}
