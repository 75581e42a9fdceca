package audit_test

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/internal/pgtest"
)

// stallProxy forwards loopback connections to PostgreSQL; while stalled it
// forwards nothing, as a database host that stops answering would.
type stallProxy struct {
	ln      net.Listener
	mu      sync.Mutex
	stalled bool
	resume  chan struct{} // closed when the stall ends
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, resume: make(chan struct{})}
	close(p.resume)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go p.pipe(c, s)
			go p.pipe(s, c)
		}
	}()
	return p
}

// pipe copies src to dst, holding each chunk while the proxy is stalled.
func (p *stallProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			resume := p.resume
			p.mu.Unlock()
			<-resume
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF or a closed connection: close the other side
			return
		}
	}
}

func (p *stallProxy) stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && !p.stalled {
		p.resume = make(chan struct{})
	} else if !on && p.stalled {
		close(p.resume)
	}
	p.stalled = on
}

// TestPostgres_WriterDeadline: a database that stops answering in the
// middle of serving fails the writer's batch by BatchTimeout (the webhook
// is answered 503, not held), and the writer carries on on a fresh
// connection once the database answers again.
func TestPostgres_WriterDeadline(t *testing.T) {
	dsn := pgtest.Schema(t, "veil_stall")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newStallProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	st := newTestDB(t, "postgres").store(vaultKey, pseudonymKey)
	st.DSN = u.String()
	st.BatchTimeout = time.Second
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	ingest := func(i int) error {
		e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "candidate_stage_change",
			Subject: "greenhouse:candidate:1", DedupKey: "stall-" + string(rune('a'+i)), ReceivedAt: time.Now(),
			Payload: []byte(`{"a":1}`), Refs: []string{"greenhouse:candidate:1"}}
		_, _, err := st.IngestEvent(ctx, e, nil, veil.Drift{})
		return err
	}
	if err := ingest(0); err != nil {
		t.Fatal(err)
	}
	proxy.stall(true)
	done := make(chan error, 1)
	go func() { done <- ingest(1) }()
	select {
	case err := <-done:
		if veil.ErrorCode(err) != veil.EUNAVAILABLE {
			t.Fatalf("a write while the database stalls: %v, want EUNAVAILABLE", err)
		}
	case <-time.After(time.Minute): // far past BatchTimeout: no deadline at all
		proxy.stall(false)
		t.Fatal("the writer waited for a stalled database past its batch deadline")
	}
	proxy.stall(false)
	if err := ingest(2); err != nil {
		t.Fatalf("after the stall: %v", err)
	}
}
