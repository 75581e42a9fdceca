package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/auth"
	"github.com/veilhq/veil/internal/pgtest"
	"github.com/veilhq/veil/internal/storetest"
	"github.com/veilhq/veil/proxy"
)

// TestTokens_CreateUseExpireRevokeOnEveryReplica: an API token works on
// both replicas of one PostgreSQL database with its roles only (an
// auditor's token cannot purge), each use is audited under its name, it
// stops working at its expiry (the store's injected clock), and a token
// revoked on one replica is refused by the other at once.
func TestTokens_CreateUseExpireRevokeOnEveryReplica(t *testing.T) {
	pgtest.Need(t)
	dsn := pgtest.Schema(t, "tokens")
	cfg := mustConfig(t)
	vault, _ := veil.DecodeKey(cfg.Keys.Vault)
	ps, _ := veil.DecodeKey(cfg.Keys.Pseudonym)
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	ctx := context.Background()
	var urls []string
	var guards []*auth.Guard
	a := storetest.MustOpenPostgres(t, dsn, vault, ps, clock)
	b := storetest.MustOpenPostgres(t, dsn, vault, ps, clock)
	stores := []*audit.Store{a, b}
	for _, st := range stores {
		srv := proxy.NewServer(cfg, st)
		srv.Admin, srv.Tokens = st, st
		g := auth.NewGuard()
		g.Now, g.Record = clock, st.Record
		srv.Guard = g
		h, err := srv.Handler()
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(h)
		t.Cleanup(hs.Close)
		urls, guards = append(urls, hs.URL), append(guards, g)
	}
	call := func(base, method, path, token string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	secret, err := a.CreateToken(ctx, "ci-export", []string{veil.RoleAuditor}, clock().Add(90*24*time.Hour), "break-glass:cli")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateToken(ctx, "ci-export", []string{veil.RoleAuditor}, time.Time{}, "break-glass:cli"); veil.ErrorCode(err) != veil.ECONFLICT {
		t.Fatalf("a second live token of the same name: %v, want conflict", err)
	}
	for i, u := range urls {
		if code := call(u, http.MethodGet, "/v1/audit/export?format=jsonl", secret); code != http.StatusOK {
			t.Fatalf("replica %d: the token's export answered %d", i, code)
		}
		if code := call(u, http.MethodPost, "/v1/retention/purge?dry_run=true", secret); code != http.StatusForbidden {
			t.Fatalf("replica %d: an auditor's token purging answered %d, want 403", i, code)
		}
	}
	if code := call(urls[0], http.MethodGet, "/v1/audit/export", "vt_not-a-token"); code != http.StatusUnauthorized {
		t.Fatalf("an unknown token answered %d", code)
	}
	// Each use is audited under the token's name (one row per token and
	// minute); the exports name it too.
	for i, g := range guards {
		g.Flush(true)
		stores[i].Flush(ctx)
	}
	rows, err := a.AuditPage(ctx, veil.AuditFilter{Actors: []string{"token:ci-export"}})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Action]++
	}
	if counts[veil.ActionTokenUsed] != 2 || counts[veil.ActionExported] != 2 {
		t.Fatalf("the token's audit rows: %v, want 2 token_used (one per replica) and 2 exported", counts)
	}
	toks, err := b.Tokens(ctx)
	if err != nil || len(toks) != 1 || toks[0].LastUsed.IsZero() || toks[0].State(clock()) != "live" {
		t.Fatalf("tokens: %+v %v", toks, err)
	}

	// Expiry, by the store's clock.
	now.Add(int64(91 * 24 * time.Hour))
	if code := call(urls[1], http.MethodGet, "/v1/audit/export", secret); code != http.StatusUnauthorized {
		t.Fatalf("an expired token answered %d", code)
	}
	// A new one under the same name (the old one expired), revoked on a:
	// refused on b at once.
	secret, err = a.CreateToken(ctx, "ci-export", []string{veil.RoleAuditor}, time.Time{}, "break-glass:cli")
	if err != nil {
		t.Fatal(err)
	}
	if code := call(urls[1], http.MethodGet, "/v1/audit/export", secret); code != http.StatusOK {
		t.Fatalf("the renewed token answered %d", code)
	}
	if err := a.RevokeToken(ctx, "ci-export", "break-glass:cli"); err != nil {
		t.Fatal(err)
	}
	if code := call(urls[1], http.MethodGet, "/v1/audit/export", secret); code != http.StatusUnauthorized {
		t.Fatalf("a token revoked on the other replica answered %d", code)
	}
	if err := a.RevokeToken(ctx, "ci-export", "break-glass:cli"); veil.ErrorCode(err) != veil.ENOTFOUND {
		t.Fatalf("revoking twice: %v", err)
	}
}
