package mcpwire

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestValidEventID(t *testing.T) {
	for id, want := range map[string]bool{"ev-1": true, "": false, "a\rb": false, "a\nb": false, strings.Repeat("x", 300): false, "é": false} {
		if got := ValidEventID(id); got != want {
			t.Errorf("ValidEventID(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestReadEvents: message events are delivered (data lines joined),
// others and comments are not, and the budget is whole again at the end.
func TestReadEvents(t *testing.T) {
	stream := ": keep-alive\n\nid: 1\ndata: {\"a\":\ndata: 1}\n\nevent: other\ndata: {}\n\nevent: message\nid: a\rb\ndata: [2]\r\n\r\ndata: 3"
	mem := NewBudget(1 << 20)
	var got []string
	last, err := ReadEvents(strings.NewReader(stream), 1<<10, mem, func(b []byte) { got = append(got, string(b)) })
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err %v, want EOF", err)
	}
	if want := []string{"{\"a\":\n1}", "[2]", "3"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("delivered %q, want %q", got, want)
	}
	if last != "1" {
		t.Errorf("last id %q, want 1 (the other cannot be sent back)", last)
	}
	if mem.Used() != 0 {
		t.Errorf("%d bytes still taken from the budget", mem.Used())
	}
}

// TestReadEventsBounds: an event over the limit, or one that finds no
// room, stops the reading, and gives back what it took.
func TestReadEventsBounds(t *testing.T) {
	long := "data: " + strings.Repeat("x", 2000) + "\n\n"
	mem := NewBudget(1 << 20)
	if _, err := ReadEvents(strings.NewReader(long), 1000, mem, func([]byte) { t.Error("delivered") }); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err %v, want ErrTooLarge", err)
	}
	split := strings.Repeat("data: "+strings.Repeat("y", 300)+"\n", 5) + "\n"
	if _, err := ReadEvents(strings.NewReader(split), 1000, mem, func([]byte) { t.Error("delivered") }); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err %v, want ErrTooLarge for an event of many lines", err)
	}
	small := NewBudget(500)
	if _, err := ReadEvents(strings.NewReader(split), 1<<20, small, func([]byte) { t.Error("delivered") }); !errors.Is(err, ErrBudget) {
		t.Errorf("err %v, want ErrBudget", err)
	}
	if mem.Used() != 0 || small.Used() != 0 {
		t.Errorf("%d and %d bytes still taken", mem.Used(), small.Used())
	}
}

// TestBudgetWait: a waiter gets its room when bytes are given back, and
// gives up when its context ends.
func TestBudgetWait(t *testing.T) {
	b := NewBudget(10)
	if !b.Take(8) || b.Take(3) {
		t.Fatal("Take does not respect the total")
	}
	done := make(chan error, 1)
	go func() { done <- b.Wait(context.Background(), 5) }()
	for {
		b.mu.Lock()
		w := b.waiting
		b.mu.Unlock()
		if w == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.Give(8)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx, 6); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want the context's", err)
	}
	if b.Used() != 5 {
		t.Errorf("used %d, want 5", b.Used())
	}
}
