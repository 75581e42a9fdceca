// Package storetest opens real stores for the tests of every package: one
// place that knows how a test gets a SQLite store.
package storetest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
)

// MustOpenPostgres opens a real PostgreSQL store on dsn (a test schema,
// internal/pgtest), with the keys and the clock (nil: time.Now), closed at
// cleanup. Called twice on one dsn, it gives two replicas.
func MustOpenPostgres(tb testing.TB, dsn string, vault, pseudonym []byte, now func() time.Time) *audit.Store {
	tb.Helper()
	return mustOpen(tb, audit.NewPostgresStore(dsn, vault, pseudonym), now)
}

// MustOpenFor opens a real SQLite store in a temp dir with the keys of
// cfg (a test's config) and the clock (nil: time.Now), closed at cleanup.
func MustOpenFor(tb testing.TB, cfg *veil.Config, now func() time.Time) *audit.Store {
	tb.Helper()
	return MustOpenStore(tb, "", cfg.Keys.VaultKey(), cfg.Keys.PseudonymKey(), now)
}

// MustOpenStore opens a real SQLite store at path (a file in a temp dir
// when ""), with the keys and the clock (nil: time.Now), closed at
// cleanup.
func MustOpenStore(tb testing.TB, path string, vault, pseudonym []byte, now func() time.Time) *audit.Store {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "veil.db")
	}
	return mustOpen(tb, audit.NewStore(path, vault, pseudonym), now)
}

func mustOpen(tb testing.TB, st *audit.Store, now func() time.Time) *audit.Store {
	tb.Helper()
	if now != nil {
		st.Now = now
	}
	if err := st.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
