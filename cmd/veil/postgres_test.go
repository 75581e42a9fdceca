package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/internal/pgtest"
	"github.com/veilhq/veil/internal/storetest"
)

// pgConfig writes a config for dir whose store is the PostgreSQL dsn.
func pgConfig(t *testing.T, dir, dsn, destinations string) string {
	t.Helper()
	path := writeConfigDests(t, dir, destinations)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\nstorage: {driver: postgres, dsn: %q}\n", dsn)
	f.Close()
	return path
}

func openPGStore(t *testing.T, dsn string) *audit.Store {
	t.Helper()
	key, _ := veil.DecodeKey("zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s=")
	ps, _ := veil.DecodeKey("q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY=")
	return storetest.MustOpenPostgres(t, dsn, key, ps, nil)
}

// TestPostgres_ThreeReplicas: three veil serve processes on one database,
// webhooks spread over all three, the same event sent to two replicas at
// once stored once, one replica SIGKILLed mid-stream and restarted: every
// acknowledged event is delivered to the sink (twice only under the same
// webhook-id), none is lost, the chain verifies, and a subject erased
// through one replica answers 410 on another.
func TestPostgres_ThreeReplicas(t *testing.T) {
	dsn := pgtest.Schema(t, "veil_e2e")
	sink := newSink(t, func(int, http.ResponseWriter) int { return 200 })
	base := t.TempDir()
	cfgs := make([]string, 3)
	for i := range cfgs {
		dir := filepath.Join(base, fmt.Sprint("r", i))
		os.MkdirAll(dir, 0o700)
		cfgs[i] = pgConfig(t, dir, dsn, "destinations:"+destination("bi", sink.URL+"/bi", 20, ""))
	}
	code, keyOut := runVeil(t, "consumer", "add", "onboarding", "--purpose", "onboarding", "--config", cfgs[0])
	if code != 0 {
		t.Fatalf("consumer add: %s", keyOut)
	}
	key := strings.TrimSpace(keyOut[strings.LastIndex(strings.TrimSpace(keyOut), "\n")+1:])
	procs := make([]*veilProc, 3)
	for i := range procs {
		procs[i] = startVeil(t, cfgs[i], &syncBuffer{})
	}

	const total, workers, killAt = 600, 12, 200
	client := &http.Client{Timeout: 10 * time.Second}
	var (
		mu      sync.Mutex
		acked   = map[string]string{} // Greenhouse-Event-ID -> Veil event id
		sent    atomic.Int64
		killed  = make(chan struct{})
		restart sync.Once
	)
	urls := func(n int) []string {
		mu.Lock()
		defer mu.Unlock()
		out := []string{}
		for k := 0; k < 3; k++ {
			if p := procs[(n+k)%3]; p != nil {
				out = append(out, p.url)
			}
		}
		return out
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(sent.Add(1))
				if n > total {
					return
				}
				if n == killAt {
					mu.Lock()
					procs[1].cmd.Process.Kill() // SIGKILL, mid-stream
					procs[1] = nil
					mu.Unlock()
					close(killed)
				}
				id := fmt.Sprint("rep-", n)
				body := greenhouseBody(t, n)
				// As an ATS does: retry elsewhere until a replica says 200.
				for attempt := 0; attempt < 20; attempt++ {
					us := urls(n + attempt)
					status, out, err := postGreenhouse(context.Background(), client, us[0], body, id)
					if err == nil && status == 200 {
						mu.Lock()
						acked[id] = out["event_id"].(string)
						mu.Unlock()
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	<-killed
	restart.Do(func() {
		p := startVeil(t, cfgs[1], &syncBuffer{})
		mu.Lock()
		procs[1] = p
		mu.Unlock()
	})
	wg.Wait()
	if len(acked) != total {
		t.Fatalf("%d of %d events acknowledged", len(acked), total)
	}

	// The same event to two replicas at once: stored once.
	body := greenhouseBody(t, 9999)
	var both sync.WaitGroup
	ids := make([]string, 2)
	dups := make([]bool, 2)
	for i, p := range []*veilProc{procs[0], procs[2]} {
		both.Add(1)
		go func() {
			defer both.Done()
			status, out, err := postGreenhouse(context.Background(), client, p.url, body, "rep-twice")
			if err != nil || status != 200 {
				t.Errorf("replica %d: %d %v", i, status, err)
				return
			}
			ids[i], dups[i] = out["event_id"].(string), out["duplicate"].(bool)
		}()
	}
	both.Wait()
	if ids[0] != ids[1] || dups[0] == dups[1] {
		t.Fatalf("the same event at two replicas: ids %v duplicate %v; want one id, one duplicate", ids, dups)
	}
	acked["rep-twice"] = ids[0]

	// Every acknowledged event reaches the sink; a repeat only under the
	// same webhook-id. Deliveries the killed replica had claimed but not
	// sent go back to the queue when their lease ends (5 × the timeout +
	// the breaker's pause + 30 s): waiting 20 s failed about one run in
	// ten on a busy machine, whenever the kill caught a claim in flight.
	waitWithin(t, 3*time.Minute, "every delivery", func() bool {
		seen := map[string]bool{}
		for _, r := range sink.requests() {
			seen[r.eventID] = true
		}
		for _, e := range acked {
			if !seen[e] {
				return false
			}
		}
		return true
	})
	byEvent := map[string]string{}
	for _, r := range sink.requests() {
		if prev, ok := byEvent[r.eventID]; ok && prev != r.webhookID {
			t.Errorf("event %s delivered under two webhook-ids %s and %s", r.eventID, prev, r.webhookID)
		}
		byEvent[r.eventID] = r.webhookID
		if !r.signatureOK {
			t.Errorf("delivery %s: bad signature", r.webhookID)
		}
	}

	// Erased through replica 0, gone on replica 2.
	var hireID string
	for gid, e := range acked {
		if gid == "rep-7" {
			hireID = e
		}
	}
	lookup := func(p *veilProc) int {
		code, _ := lookupRecord(t, p.url, hireID, key, "onboarding")
		return code
	}
	if code := lookup(procs[2]); code != 200 {
		t.Fatalf("lookup before erasure: %d, want 200", code)
	}
	req, _ := http.NewRequest(http.MethodDelete, procs[0].url+"/v1/subjects/greenhouse:candidate:70000007", nil)
	req.Header.Set("Authorization", "Bearer e2e-admin-token")
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("erase through replica 0: %v %v", resp, err)
	}
	resp.Body.Close()
	if code := lookup(procs[2]); code != 410 {
		t.Fatalf("lookup on replica 2 after erasure through replica 0: %d, want 410", code)
	}
	for _, p := range procs {
		p.stop(t)
	}

	st := openPGStore(t, dsn)
	if n, err := st.Verify(context.Background(), nil); err != nil || n < int64(total) {
		t.Fatalf("verify: %d rows, %v", n, err)
	}
	counts, err := st.Counts(context.Background())
	if err != nil || counts["events"] != int64(len(acked)) {
		t.Fatalf("events stored: %d, want %d (%v)", counts["events"], len(acked), err)
	}
	if code, out := runVeil(t, "audit", "verify", "--config", cfgs[2]); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("veil audit verify on postgres: exit %d\n%s", code, out)
	}
}

// TestPostgres_StoreCopy: a SQLite deployment with 10,000 events moves into
// PostgreSQL with `veil store copy`; the copy verifies, decrypts, and serve
// runs on it.
func TestPostgres_StoreCopy(t *testing.T) {
	dsn := pgtest.Schema(t, "veil_e2e")
	dir := t.TempDir()
	config := writeConfig(t, dir, "")
	_, st, err := loadStore(config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 10_000
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "hire_candidate",
					Subject: fmt.Sprint("greenhouse:candidate:", i%500), DedupKey: fmt.Sprint("copy-", i),
					ReceivedAt: time.Now(), Payload: []byte(fmt.Sprintf(`{"n":%d,"name":"Copy-Canary"}`, i))}
				d := &veil.Delivery{Destination: "bi-warehouse", Status: veil.DeliveryPending, Body: []byte(`{"id":"ps_x"}`),
					FieldsKept: []string{"id"}, Categories: []string{"user.unique_id"}}
				if _, _, err := st.IngestEvent(ctx, e, []*veil.Delivery{d}, veil.Drift{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddConsumer(ctx, "onboarding", []string{"onboarding"}, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Erase(ctx, "greenhouse:candidate:3", "admin"); err != nil {
		t.Fatal(err)
	}
	var someID string
	st.Events(ctx, func(e *veil.Event) error { someID = e.ID; return nil }, nil)
	st.Close()

	code, out := runVeil(t, "store", "copy", "--config", config, "--to", dsn)
	if code != 0 || !strings.Contains(out, "OK: the copy's audit chain verifies") || !strings.Contains(out, "copied events: 10000 rows") {
		t.Fatalf("store copy: exit %d\n%s", code, out)
	}
	pg := openPGStore(t, dsn)
	e, err := pg.Event(ctx, someID)
	if err != nil || !strings.Contains(string(e.Payload), "Copy-Canary") {
		t.Fatalf("a copied event does not decrypt: %v", err)
	}
	if cs, err := pg.Consumers(ctx); err != nil || len(cs) != 1 {
		t.Fatalf("consumers: %v %v", cs, err)
	}
	// The copy carries on: new rows extend the copied chain.
	if err := pg.Append(ctx, &veil.AuditEntry{Action: veil.ActionPolicyLoaded, Detail: "after copy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Verify(ctx, nil); err != nil {
		t.Fatalf("verify after an append: %v", err)
	}
	if code, out := runVeil(t, "store", "copy", "--config", config, "--to", dsn); code != 1 || !strings.Contains(out, "not empty") {
		t.Fatalf("copy into a non-empty database: exit %d\n%s", code, out)
	}
}

// TestPostgres_BadDatabase: an unreachable database stops the start with a
// sentence naming the host and not the password; a database lost while
// serving answers 503 store_unavailable, loses nothing acknowledged, and
// serving resumes by itself when it returns.
func TestPostgres_BadDatabase(t *testing.T) {
	dsn := pgtest.Schema(t, "veil_e2e")
	dir := t.TempDir()
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := free.Addr().String()
	free.Close()
	bad := pgConfig(t, dir, "postgres://veil:s3cret-Pw@"+closed+"/test?sslmode=disable&connect_timeout=2", "")
	code, out := runBin(t, nil, "serve", "--config", bad)
	if code != 1 || !strings.Contains(out, "cannot reach PostgreSQL at "+closed) || strings.Contains(out, "s3cret-Pw") {
		t.Fatalf("unreachable database: exit %d\n%s", code, out)
	}
	// sslmode=prefer, the default: pgx tries with TLS, then without, and
	// both attempts fail alike; the sentence tells it once.
	prefer := pgConfig(t, t.TempDir(), "postgres://veil:s3cret-Pw@"+closed+"/test?connect_timeout=2", "")
	if code, out := runBin(t, nil, "serve", "--config", prefer); code != 1 || strings.Count(out, "dial error") != 1 || strings.Contains(out, "s3cret-Pw") {
		t.Fatalf("unreachable database, sslmode=prefer: exit %d, want one attempt's error told once\n%s", code, out)
	}

	// A proxy between serve and the database, to cut and restore.
	px := newTCPProxy(t, strings.TrimPrefix(strings.SplitN(strings.TrimPrefix(pgtest.DSN(), "postgres://"), "/", 2)[0], "postgres@"))
	proxied := strings.Replace(dsn, "127.0.0.1:5432", px.addr, 1)
	config := pgConfig(t, t.TempDir(), proxied, "")
	logs := &syncBuffer{}
	p := startVeil(t, config, logs)
	client := &http.Client{Timeout: 20 * time.Second}
	var acked []string
	send := func(n int) int {
		status, out, _ := postGreenhouse(context.Background(), client, p.url, greenhouseBody(t, n), fmt.Sprint("lost-", n))
		if status == 200 {
			acked = append(acked, out["event_id"].(string))
		}
		return status
	}
	for i := 0; i < 5; i++ {
		if s := send(i); s != 200 {
			t.Fatalf("before the cut: %d", s)
		}
	}
	px.cut()
	if s := send(100); s != 503 {
		t.Fatalf("database cut: %d, want 503\n%s", s, logs.Bytes())
	}
	px.restore()
	waitFor(t, "serving again", func() bool { return send(200+len(acked)) == 200 })
	p.stop(t)
	if strings.Contains(string(logs.Bytes()), "s3cret") {
		t.Fatal("a log line holds a password")
	}
	st := openPGStore(t, dsn)
	for _, id := range acked {
		if _, err := st.Event(context.Background(), id); err != nil {
			t.Errorf("acknowledged event %s: %v", id, err)
		}
	}
}

// tcpProxy forwards connections to a target until cut, and again after
// restore.
type tcpProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

// cut closes the listener and every connection: the database is gone.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *tcpProxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		panic(err)
	}
	p.serve(ln)
}
