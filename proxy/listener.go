package proxy

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimiter bounds the open connections of a listener. At the bound, a
// new connection evicts the one that has waited longest without a request
// in progress (a connection that never finished its headers, or an idle
// keep-alive one), so stalled connections cannot lock everyone out: a
// health check that sends its request at once is served. Only when every
// connection has a request in progress is the new one closed.
type connLimiter struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]*connInfo // guarded by mu: open connections
}

type connInfo struct {
	busy  bool      // a request is in progress
	since time.Time // when it became not busy
}

func newConnLimiter(l net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: l, max: max, conns: map[net.Conn]*connInfo{}}
}

// Accept returns the next connection, evicting or refusing at the bound.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if len(l.conns) >= l.max {
			victim := l.oldestWaitingLocked()
			if victim == nil {
				l.mu.Unlock()
				c.Close() // every connection is working: no room
				continue
			}
			delete(l.conns, victim)
			victim.Close()
		}
		l.conns[c] = &connInfo{since: time.Now()}
		l.mu.Unlock()
		return c, nil
	}
}

func (l *connLimiter) oldestWaitingLocked() net.Conn {
	var victim net.Conn
	var oldest time.Time
	for c, info := range l.conns {
		if !info.busy && (victim == nil || info.since.Before(oldest)) {
			victim, oldest = c, info.since
		}
	}
	return victim
}

// connState is the http.Server's ConnState hook.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	info, ok := l.conns[c]
	if !ok {
		return // evicted, or not ours
	}
	switch s {
	case http.StateActive:
		info.busy = true
	case http.StateIdle:
		info.busy, info.since = false, time.Now()
	case http.StateHijacked, http.StateClosed:
		delete(l.conns, c)
	}
}
