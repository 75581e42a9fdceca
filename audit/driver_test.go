package audit_test

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/internal/pgtest"
)

// The store's tests run against both drivers: a SQLite file in a temp
// folder, and a schema of its own in the PostgreSQL test database (every
// machine of this project runs one on 127.0.0.1:5432; VEIL_TEST_POSTGRES
// names another). Without a server the PostgreSQL runs are skipped, and
// fail when CI is set.

// testDB is one test's database.
type testDB struct {
	driver string
	path   string // SQLite
	dsn    string // PostgreSQL, with the test's schema as search_path
}

var drivers = []string{"sqlite", "postgres"}

// eachDriver runs fn once per driver, on a fresh database each.
func eachDriver(t *testing.T, fn func(t *testing.T, d testDB)) {
	for _, drv := range drivers {
		t.Run(drv, func(t *testing.T) { fn(t, newTestDB(t, drv)) })
	}
}

// newTestDB makes an empty database of the driver, removed after the test.
func newTestDB(tb testing.TB, driver string) testDB {
	tb.Helper()
	if driver == "sqlite" {
		return testDB{driver: driver, path: filepath.Join(tb.TempDir(), "veil.db")}
	}
	return testDB{driver: driver, dsn: pgtest.Schema(tb, "veil_test")}
}

// store returns an unopened store on the database with the given keys.
func (d testDB) store(vault, pseudonym []byte) *audit.Store {
	if d.driver == "postgres" {
		return audit.NewPostgresStore(d.dsn, vault, pseudonym)
	}
	return audit.NewStore(d.path, vault, pseudonym)
}

// open opens the store with the suite's keys, closed after the test.
func (d testDB) open(tb testing.TB) *audit.Store {
	tb.Helper()
	return d.openAt(tb, nil)
}

// openAt opens the store with a clock (nil: time.Now).
func (d testDB) openAt(tb testing.TB, now func() time.Time) *audit.Store {
	tb.Helper()
	st := d.store(vaultKey, pseudonymKey)
	st.Now = now
	if err := st.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// sql opens the database directly, as an attacker with the file (or a
// database login) would.
func (d testDB) sql(tb testing.TB) *sql.DB {
	tb.Helper()
	name, dsn := "sqlite", d.path
	if d.driver == "postgres" {
		name, dsn = "pgx", d.dsn
	}
	db, err := sql.Open(name, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// exec runs statements (separated by ";") directly on the database, with
// ? placeholders.
func (d testDB) exec(tb testing.TB, q string, args ...any) {
	tb.Helper()
	db := d.sql(tb)
	for _, stmt := range strings.Split(q, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if d.driver == "postgres" {
			stmt = rebindTest(stmt)
		}
		if _, err := db.Exec(stmt, args...); err != nil {
			tb.Fatalf("%s: %v", stmt, err)
		}
	}
}

// queryInt runs a query that returns one number.
func (d testDB) queryInt(tb testing.TB, q string, args ...any) int64 {
	tb.Helper()
	if d.driver == "postgres" {
		q = rebindTest(q)
	}
	var n int64
	if err := d.sql(tb).QueryRow(q, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return n
}

// contents returns everything the database holds at rest: the SQLite
// files' bytes, or every row of every table of the PostgreSQL schema as
// text (bytea as hex, so a value is looked for in both forms by the
// caller: see holds).
func (d testDB) contents(tb testing.TB) []byte {
	tb.Helper()
	if d.driver == "sqlite" {
		var out []byte
		for _, f := range []string{"", "-wal", "-shm"} {
			b, _ := os.ReadFile(d.path + f)
			out = append(out, b...)
		}
		return out
	}
	db := d.sql(tb)
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		tb.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var t string
		rows.Scan(&t)
		tables = append(tables, t)
	}
	rows.Close()
	var out strings.Builder
	for _, t := range tables {
		var s sql.NullString
		if err := db.QueryRow(fmt.Sprintf(`SELECT string_agg(x::text, E'\n') FROM %s x`, t)).Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out.WriteString(s.String)
	}
	return []byte(out.String())
}

// holds reports whether the database's contents hold v, as text or, on
// PostgreSQL, hex-encoded inside a bytea.
func (d testDB) holds(contents []byte, v string) bool {
	return strings.Contains(string(contents), v) || (d.driver == "postgres" && strings.Contains(string(contents), hex.EncodeToString([]byte(v))))
}

func rebindTest(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}
