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

	"github.com/veilhq/veil"
)

// TestDurability_KillMidStream sends signed events concurrently, kills the
// real binary with SIGKILL while they are in flight (batches of them queued
// in the writer, their rows not yet sent to SQLite), restarts it, and
// checks that every event that was answered 200 is in the store, decrypts
// to the exact bytes sent, and has every row its commit promised: one
// delivery per configured destination, its received audit row and one
// audit row per decision that ended at ingest (filtered).
func TestDurability_KillMidStream(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	p := startVeil(t, config, &syncBuffer{})
	newApplication := mustRead(t, "../../testdata/samples/greenhouse/new_candidate_application.json")

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
				if n%2 == 1 { // a new application: filtered for two of the three destinations
					body = bytes.Replace(newApplication, []byte(`"id": 88240119`), []byte(fmt.Sprintf(`"id": %d`, 60000000+n)), 1)
				}
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
	var allFiltered int
	for _, a := range acks {
		e, err := st.Event(context.Background(), a.id)
		if err != nil {
			t.Fatalf("acknowledged event %s: %v", a.id, err)
		}
		if !bytes.Equal(e.Payload, a.body) {
			t.Fatalf("event %s: stored payload differs from the body sent", a.id)
		}
		ds, err := st.EventDeliveries(context.Background(), a.id)
		if err != nil {
			t.Fatal(err)
		}
		var filtered int
		dests := map[string]bool{}
		for _, d := range ds {
			dests[d.Destination] = true
			if d.Status == veil.DeliveryFiltered {
				filtered++
			}
		}
		if len(ds) != 3 || len(dests) != 3 {
			t.Fatalf("acknowledged event %s has %d deliveries to %d destinations, want one to each of 3", a.id, len(ds), len(dests))
		}
		rows := map[string]int{}
		if err := st.Export(context.Background(), veil.AuditFilter{EventID: a.id}, func(r *veil.AuditEntry) error {
			rows[r.Action]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if rows[veil.ActionReceived] != 1 || rows[veil.ActionFiltered] != filtered {
			t.Fatalf("acknowledged event %s: audit rows %v, want 1 received and %d filtered", a.id, rows, filtered)
		}
		allFiltered += filtered
	}
	if allFiltered == 0 {
		t.Fatal("no delivery was filtered: the audit rows of ingest decisions went unchecked")
	}
	t.Logf("%d acknowledged events, %d filtered deliveries, all with their rows", len(acks), allFiltered)
}
