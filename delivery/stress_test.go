package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/delivery"
	"github.com/veilhq/veil/internal/pgtest"
	"github.com/veilhq/veil/internal/storetest"
	"github.com/veilhq/veil/internal/testenv"
)

// flapSink answers in turn 200, 404, 500, a closed connection and a slow
// 200, switching every few tens of milliseconds, and records, per
// webhook-id, how many requests it had in progress at once.
type flapSink struct {
	*httptest.Server
	mode     atomic.Int64 // 0 200, 1 404, 2 500, 3 close, 4 slow 200; -1 always 200
	mu       sync.Mutex
	inflight map[string]int
	overlaps []string
	ok       map[string]int // 2xx answered, per webhook-id
}

func newFlapSink(t *testing.T) *flapSink {
	s := &flapSink{inflight: map[string]int{}, ok: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		s.mu.Lock()
		if s.inflight[id]++; s.inflight[id] > 1 {
			s.overlaps = append(s.overlaps, id)
		}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inflight[id]--
			s.mu.Unlock()
		}()
		mode := s.mode.Load()
		switch mode {
		case 1:
			w.WriteHeader(http.StatusNotFound)
			return
		case 2:
			w.WriteHeader(http.StatusInternalServerError)
			return
		case 3:
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		case 4:
			time.Sleep(60 * time.Millisecond) // under the timeout: never abandoned by the sender
		}
		s.mu.Lock()
		s.ok[id]++
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func openPG(t *testing.T, dsn string) *audit.Store {
	t.Helper()
	cfg := mustConfig(t)
	return storetest.MustOpenPostgres(t, dsn, cfg.Keys.VaultKey(), cfg.Keys.PseudonymKey(), nil)
}

// TestStress_OneAttemptAtATime flaps a destination between 200, 404, 500,
// closed connections and slow answers while breakers open and close,
// claims expire (a lease of a second), and dead deliveries are replayed,
// with two deliverers on one store: then every delivery had at most one
// attempt in flight at any moment (the sink saw no overlap), each life of
// a delivery (until it is replayed) has exactly one final audit row, and
// no delivered delivery is listed dead. SQLite (two deliverers in one
// process) and PostgreSQL (two stores, as two replicas).
func TestStress_OneAttemptAtATime(t *testing.T) {
	testenv.Slow(t, "thousands of claims by racing workers")
	t.Run("sqlite", func(t *testing.T) {
		st := storetest.MustOpenFor(t, mustConfig(t), time.Now)
		stress(t, st, st)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Schema(t, "veil_dlv")
		stress(t, openPG(t, dsn), openPG(t, dsn))
	})
}

func stress(t *testing.T, a, b *audit.Store) {
	sink := newFlapSink(t)
	cfg := mustConfig(t)
	cfg.Destinations = []veil.Destination{{Name: "flap", URL: sink.URL + "/hook", Sources: []string{"greenhouse"}, Policy: "p",
		Timeout: veil.Duration(300 * time.Millisecond), Concurrency: 4, MaxConcurrency: 8, AllowPrivateNetwork: true,
		Retry: veil.RetryConfig{MaxAttempts: 6, Backoff: []veil.Duration{veil.Duration(20 * time.Millisecond)}}}}
	ctx := context.Background()
	var events atomic.Int64
	ingest := func(st *audit.Store) {
		i := events.Add(1)
		e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "hire_candidate", Subject: fmt.Sprint("greenhouse:candidate:", i),
			DedupKey: fmt.Sprint("stress-", i), ReceivedAt: time.Now(), Payload: []byte(`{}`)}
		ds := []*veil.Delivery{{Destination: "flap", Status: veil.DeliveryPending, Body: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			FieldsKept: []string{"n"}}}
		if _, _, err := st.IngestEvent(ctx, e, ds, veil.Drift{}); err != nil {
			t.Error(err)
		}
	}
	for range 40 {
		ingest(a)
	}
	var deliverers []*delivery.Deliverer
	for _, st := range []*audit.Store{a, b} {
		d := delivery.New(st, cfg.Destinations)
		d.Interval = 20 * time.Millisecond
		d.Lease = time.Second
		d.BreakerThreshold, d.BreakerMinPause, d.BreakerPause = 3, 50*time.Millisecond, 200*time.Millisecond
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		deliverers = append(deliverers, d)
	}
	// Flap, and replay what goes dead, for a few seconds.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
				sink.mode.Store(int64(i % 5))
				ingest([]*audit.Store{a, b}[i%2]) // a steady trickle, through both
			}
		}
	}()
	var replays, refused atomic.Int64
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			all, _ := a.Deliveries(ctx, "", 1000)
			for _, d := range all {
				nd := &veil.Delivery{Status: veil.DeliveryPending, Body: []byte(`{"replayed":true}`), FieldsKept: []string{"replayed"}}
				switch err := b.ReplayDelivery(ctx, d, nd, "admin"); {
				case err == nil:
					replays.Add(1)
				case veil.ErrorCode(err) == veil.ECONFLICT:
					refused.Add(1) // not dead: sending, pending or delivered are never replayed
				default:
					t.Errorf("replay %s: %v", d.ID, err)
				}
			}
		}
	}()
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	sink.mode.Store(-1)
	// Everything ends, delivered or dead.
	deadline := time.Now().Add(30 * time.Second)
	for {
		waiting := 0
		all, _ := a.Deliveries(ctx, "", 1000)
		for _, d := range all {
			if d.Status == veil.DeliveryPending || d.Status == veil.DeliverySending {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still waiting", waiting)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range deliverers {
		d.Stop()
	}
	sink.mu.Lock()
	if len(sink.overlaps) > 0 {
		t.Errorf("%d requests overlapped another of the same delivery, e.g. %s", len(sink.overlaps), sink.overlaps[0])
	}
	sink.mu.Unlock()
	if replays.Load() == 0 || refused.Load() == 0 {
		t.Errorf("%d replays, %d refused: the flapping did not exercise both", replays.Load(), refused.Load())
	}

	// One final row per life: between two replays, exactly one delivered or dead row.
	lives := map[string][]string{}
	a.AuditEntries(ctx, func(e *veil.AuditEntry) error {
		if e.Destination != "flap" {
			return nil
		}
		switch e.Action {
		case veil.ActionDelivered, veil.ActionDead, veil.ActionReplayed:
			lives[e.EventID] = append(lives[e.EventID], e.Action)
		}
		return nil
	})
	n := int(events.Load())
	if len(lives) != n {
		t.Fatalf("%d events have final rows, want %d", len(lives), n)
	}
	for ev, seq := range lives {
		finals := 0
		for _, act := range seq {
			if act == veil.ActionReplayed {
				if finals != 1 {
					t.Errorf("event %s: replayed after %d final rows: %v", ev, finals, seq)
				}
				finals = 0
				continue
			}
			finals++
		}
		if finals != 1 {
			t.Errorf("event %s: its last life has %d final rows: %v", ev, finals, seq)
		}
	}
	dead, _ := a.Deliveries(ctx, veil.DeliveryDead, 1000)
	delivered, _ := a.Deliveries(ctx, veil.DeliveryDelivered, 1000)
	if len(dead)+len(delivered) != n {
		t.Errorf("%d dead and %d delivered, want %d in all", len(dead), len(delivered), n)
	}
	t.Logf("%d delivered, %d dead, %d replays, %d refused", len(delivered), len(dead), replays.Load(), refused.Load())
}
