package main

import (
	"context"
	"fmt"
	"github.com/veilhq/veil/internal/testenv"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetention_PurgeWhileIngesting: `veil audit purge` runs (through the
// server, in small transactions) while 1,000 webhooks arrive: every one is
// answered 200 and stored, none 503; the payloads past retention are
// purged and the deliveries waiting for them end dead (expired), each with
// its audit row.
func TestRetention_PurgeWhileIngesting(t *testing.T) {
	testenv.Slow(t, "purges under load")
	dir := t.TempDir()
	config := writeConfig(t, dir, "retention: {payload: 2s, audit: 8760h, every: 1h}\n")
	p := startVeil(t, config, &syncBuffer{})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	ctx := context.Background()
	post := func(from, to int) (ok, unavailable int64) {
		var wg sync.WaitGroup
		var okN, badN atomic.Int64
		next := atomic.Int64{}
		next.Store(int64(from))
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := next.Add(1) - 1; n < int64(to); n = next.Add(1) - 1 {
					status, _, err := postGreenhouse(ctx, client, p.url, greenhouseBody(t, int(n)), fmt.Sprint("purge-", n))
					switch {
					case err == nil && status == 200:
						okN.Add(1)
					case status == 503:
						badN.Add(1)
					default:
						t.Errorf("event %d: %d %v", n, status, err)
					}
				}
			}()
		}
		wg.Wait()
		return okN.Load(), badN.Load()
	}
	if ok, _ := post(0, 2000); ok != 2000 {
		t.Fatalf("prefill: %d of 2000 accepted", ok)
	}
	time.Sleep(2500 * time.Millisecond) // the prefill is now past retention.payload
	var purgeOut string
	var purgeCode int
	done := make(chan struct{})
	go func() {
		defer close(done)
		purgeCode, purgeOut = runVeil(t, "audit", "purge", "--config", config)
	}()
	ok, unavailable := post(2000, 3000)
	<-done
	if ok != 1000 || unavailable != 0 {
		t.Fatalf("during the purge: %d accepted, %d answered 503; want 1000 and 0", ok, unavailable)
	}
	if purgeCode != 0 || !strings.Contains(purgeOut, "purged: ") {
		t.Fatalf("purge: exit %d\n%s", purgeCode, purgeOut)
	}
	var payloads, expired int
	fmt.Sscanf(purgeOut[strings.Index(purgeOut, "purged: "):], "purged: %d payloads", &payloads)
	if m := regexp.MustCompile(`; (\d+) waiting deliveries given up`).FindStringSubmatch(purgeOut); m != nil {
		expired, _ = strconv.Atoi(m[1])
	}
	if payloads < 2000 || expired == 0 {
		t.Fatalf("purged %d payloads and expired %d deliveries; want the 2,000 old ones and their waiting deliveries\n%s", payloads, expired, purgeOut)
	}
	p.stop(t)
	_, received := runVeil(t, "audit", "export", "--config", config, "--action", "received")
	if n := strings.Count(received, `"outcome":"accepted"`); n != 3000 {
		t.Fatalf("%d accepted events in the audit log, want 3000", n)
	}
	_, dead := runVeil(t, "audit", "export", "--config", config, "--action", "dead")
	if n := strings.Count(dead, `"outcome":"expired"`); n != expired {
		t.Fatalf("%d dead rows with outcome expired, the purge reported %d", n, expired)
	}
	if code, out := runVeil(t, "audit", "verify", "--config", config); code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
}
