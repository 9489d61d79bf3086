// Package sigctx is signal.NotifyContext with the signal handling started
// on first need. os/signal starts threads the first time a signal is asked
// for (one of them locked to its goroutine): about 0.3 ms, a tenth of a
// cached 'ncmcp token' with file storage, which needs no graceful
// interruption (the signals' default action ends it as well). Commands
// that wait on the network, the browser or the store lock call Watch first.
package sigctx

import (
	"context"
	"os"
	"os/signal"
	"sync"
)

// Context is a context cancelled by the first of its signals that arrives
// after Watch.
type Context struct {
	context.Context

	cancel  context.CancelCauseFunc
	signals []os.Signal

	mu      sync.Mutex
	ch      chan os.Signal // nil until Watch
	stopped bool
}

// New returns a Context derived from parent for signals. Until Watch is
// called the signals keep their default action.
func New(parent context.Context, signals ...os.Signal) *Context {
	ctx, cancel := context.WithCancelCause(parent)
	return &Context{Context: ctx, cancel: cancel, signals: signals}
}

// Watch makes the signals cancel the context, as signal.NotifyContext
// does, with the same cause ("interrupt signal received", which is
// context.Canceled). Calls after the first, or after Stop, do nothing.
func (c *Context) Watch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil || c.stopped {
		return
	}
	c.ch = make(chan os.Signal, 1)
	signal.Notify(c.ch, c.signals...)
	if c.Err() != nil {
		return
	}
	go func() {
		select {
		case s := <-c.ch:
			c.cancel(signalError(s.String() + " signal received"))
		case <-c.Done():
		}
	}()
}

// Stop cancels the context and gives the signals their default action
// back, like the stop function of signal.NotifyContext.
func (c *Context) Stop() {
	c.cancel(nil)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.ch != nil {
		signal.Stop(c.ch)
	}
}

type signalError string

func (s signalError) Error() string { return string(s) }

func (s signalError) Is(target error) bool { return target == context.Canceled }
