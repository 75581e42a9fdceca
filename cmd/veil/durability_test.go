package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDurability_KillMidStream sends signed events concurrently, kills the
// real binary with SIGKILL while they are in flight, restarts it, and checks
// that every event that was answered 200 is in the store and decrypts to the
// exact bytes sent.
func TestDurability_KillMidStream(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	p := startVeil(t, config, &syncBuffer{})

	const total, workers, killAfter = 1000, 32, 400
	type acked struct {
		id   string
		body []byte
	}
	var (
		mu      sync.Mutex
		acks    []acked
		okCount atomic.Int64
		failed  atomic.Int64
		killed  = make(chan struct{})
		once    sync.Once
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1))
				if n > total {
					return
				}
				body := greenhouseBody(t, n)
				status, out, err := postGreenhouse(context.Background(), client, p.url, body, fmt.Sprintf("e2e-%d", n))
				if err != nil || status != 200 {
					failed.Add(1)
					continue
				}
				mu.Lock()
				acks = append(acks, acked{id: out["event_id"].(string), body: body})
				mu.Unlock()
				if okCount.Add(1) == killAfter {
					once.Do(func() {
						p.cmd.Process.Kill() // SIGKILL: no shutdown path runs
						close(killed)
					})
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("only %d events acknowledged; the kill never happened", okCount.Load())
	}
	<-p.done
	if failed.Load() == 0 {
		t.Fatalf("no request failed: the kill did not land mid-stream")
	}
	t.Logf("sent %d, acknowledged %d, failed after the kill %d", total, len(acks), failed.Load())

	// Restart on the same data dir: it must open and serve again.
	p2 := startVeil(t, config, &syncBuffer{})
	if status, _, err := postGreenhouse(context.Background(), client, p2.url, greenhouseBody(t, total+1), "after-restart"); err != nil || status != 200 {
		t.Fatalf("after restart: got %d %v, want 200", status, err)
	}
	p2.stop(t)

	st := openE2EStore(t, dir)
	for _, a := range acks {
		e, err := st.Event(context.Background(), a.id)
		if err != nil {
			t.Fatalf("acknowledged event %s: %v", a.id, err)
		}
		if !bytes.Equal(e.Payload, a.body) {
			t.Fatalf("event %s: stored payload differs from the body sent", a.id)
		}
	}
}
