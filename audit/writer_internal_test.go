package audit

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// TestWriter_WebhooksFirst: with a backlog of background writes queued,
// a webhook's write is committed in the next batch, not behind them.
func TestWriter_WebhooksFirst(t *testing.T) {
	st := NewStore(filepath.Join(t.TempDir(), "veil.db"), bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32))
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var mu sync.Mutex
	var order []string
	ran := func(name string) func(*wtx) error {
		return func(*wtx) error { mu.Lock(); order = append(order, name); mu.Unlock(); return nil }
	}
	// Hold the writer inside a batch while the queues fill.
	hold, held := make(chan struct{}), make(chan struct{})
	go st.write(ctx, func(*wtx) error { close(held); <-hold; return nil })
	<-held
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); st.writeBackground(ctx, ran("background")) }()
	}
	for len(st.bg) < 100 {
		runtime.Gosched() // until all are queued
	}
	wg.Add(1)
	go func() { defer wg.Done(); st.write(ctx, ran("webhook")) }()
	for len(st.ops) < 1 {
		runtime.Gosched()
	}
	close(hold)
	wg.Wait()
	at := -1
	for i, o := range order {
		if o == "webhook" {
			at = i
		}
	}
	if at < 0 || at > 1 {
		t.Fatalf("the webhook's write ran after %d background writes, want it in the next batch (at most 1 before it)", at)
	}
}
