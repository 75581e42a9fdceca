package audit

// The two drivers share the store's SQL, written with ? placeholders;
// what differs between them lives here and in the few places that ask
// s.pg.

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// dbh is a database handle whose queries are written with ? and rebound
// to $1, $2… for PostgreSQL.
type dbh struct {
	*sql.DB
	pg bool
}

func (d dbh) q(query string) string {
	if !d.pg {
		return query
	}
	return rebind(query)
}

func (d dbh) Exec(query string, args ...any) (sql.Result, error) {
	return d.DB.Exec(d.q(query), args...)
}

func (d dbh) Query(query string, args ...any) (*sql.Rows, error) {
	return d.DB.Query(d.q(query), args...)
}

func (d dbh) QueryRow(query string, args ...any) *sql.Row { return d.DB.QueryRow(d.q(query), args...) }

func (d dbh) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, d.q(query), args...)
}

func (d dbh) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.DB.QueryContext(ctx, d.q(query), args...)
}

func (d dbh) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(ctx, d.q(query), args...)
}

func (d dbh) Prepare(query string) (*sql.Stmt, error) { return d.DB.Prepare(d.q(query)) }

func (d dbh) Begin() (*sql.Tx, error) { return d.DB.Begin() }

// rebound caches rebind's results: the store's queries are a few dozen.
var rebound sync.Map

// rebind turns ? placeholders into PostgreSQL's $n, outside quoted text.
func rebind(query string) string {
	if v, ok := rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	rebound.Store(query, out)
	return out
}
