// Package pgtest gives tests a PostgreSQL schema of their own in the test
// database every machine of this project runs (127.0.0.1:5432, database
// test; VEIL_TEST_POSTGRES names another). Without a server a test is
// skipped, and fails when CI is set.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver for database/sql
)

// DSN is the test database; tests make their schemas in it.
func DSN() string {
	if dsn := os.Getenv("VEIL_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

var (
	once    sync.Once
	pingErr error
)

// Need skips tb (or, under CI, fails it) when no PostgreSQL answers.
func Need(tb testing.TB) {
	tb.Helper()
	once.Do(func() {
		db, err := sql.Open("pgx", DSN())
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		pingErr = err
	})
	if pingErr != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("no PostgreSQL at %s: CI runs one (%v)", DSN(), pingErr)
		}
		tb.Skipf("no PostgreSQL at %s: %v", DSN(), pingErr)
	}
}

// Schema makes a schema named prefix_<random> for tb, dropped when it
// ends, and returns the DSN that uses it.
func Schema(tb testing.TB, prefix string) string {
	tb.Helper()
	Need(tb)
	admin, err := sql.Open("pgx", DSN())
	if err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	return WithSearchPath(DSN(), schema)
}

// WithSearchPath returns dsn using schema.
func WithSearchPath(dsn, schema string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}
