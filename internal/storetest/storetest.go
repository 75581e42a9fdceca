// Package storetest opens real stores for the tests of every package: one
// place that knows how a test gets a SQLite store.
package storetest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/veilhq/veil/audit"
)

// MustOpenStore opens a real SQLite store at path (a file in a temp dir
// when ""), with the keys and the clock (nil: time.Now), closed at
// cleanup.
func MustOpenStore(tb testing.TB, path string, vault, pseudonym []byte, now func() time.Time) *audit.Store {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "veil.db")
	}
	st := audit.NewStore(path, vault, pseudonym)
	if now != nil {
		st.Now = now
	}
	if err := st.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
