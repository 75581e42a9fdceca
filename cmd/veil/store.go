package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/redact"
)

// runMigrate applies the store's numbered migrations (serve does it at
// start) and says where the schema stands.
func runMigrate(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usage(fs, stderr, "migrate takes flags only")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	st := newStore(cfg, newLogger(io.Discard))
	var p *progress
	st.OnMigrate = func(m audit.Migration, i, n int) {
		if i == 0 {
			p = newProgress(stderr, "migrating", "migrations", int64(n))
		}
		p.set(int64(i)) // the one named next is under way
	}
	err = st.Open()
	if err == nil {
		p.set(int64(len(st.Migrated)))
	}
	p.finish()
	if err != nil {
		return err
	}
	defer st.Close()
	for _, m := range st.Migrated {
		fmt.Fprintf(stdout, "applied %04d_%s\n", m.Version, m.Name)
	}
	if n, err := backfillLinks(ctx, cfg, st); err != nil {
		return err
	} else if n > 0 {
		fmt.Fprintf(stdout, "linked the records of %d stored events to their people\n", n)
	}
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s store at schema version %d\n", st.Driver(), v)
	return nil
}

// runStoreCopy copies the config's SQLite store into a PostgreSQL database
// and verifies the copy's audit chain.
func runStoreCopy(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	to := fs.String("to", "", "the PostgreSQL connection string of the new, empty database (postgres://user@host:5432/db)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *to == "" {
		return c.usage(fs, stderr, "name the destination with --to DSN")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if cfg.Storage.Driver != veil.DriverSQLite {
		return fmt.Errorf("storage.driver is %s: store copy moves a SQLite deployment into PostgreSQL", cfg.Storage.Driver)
	}
	if serveRunning(cfg.DataDir) {
		return fmt.Errorf("a veil serve holds %s: stop it first, so the copy is of a store nobody writes to", cfg.DataDir)
	}
	src, err := openStore(cfg, newLogger(io.Discard))
	if err != nil {
		return err
	}
	defer src.Close()
	vault := cfg.Keys.VaultKey()
	pseudonym := cfg.Keys.PseudonymKey()
	dst := audit.NewPostgresStore(*to, vault, pseudonym)
	if err := dst.Open(); err != nil {
		return err
	}
	defer dst.Close()
	want, err := src.Counts(ctx)
	if err != nil {
		return err
	}
	var p *progress
	cur := ""
	err = src.CopyTo(ctx, dst, func(table string, n int64, finished bool) {
		if table != cur {
			p, cur = newProgress(stderr, "copying "+table, "rows", want[table]), table
		}
		p.set(n)
		if finished {
			p.finish()
			fmt.Fprintf(stdout, "copied %s: %d rows\n", table, n)
		}
	})
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	got, err := dst.Counts(ctx)
	if err != nil {
		return err
	}
	for t, n := range want {
		if t == "meta" {
			continue // the vault key check is written by each store itself
		}
		if got[t] != n {
			return fmt.Errorf("copy: %s has %d rows in PostgreSQL, %d in SQLite", t, got[t], n)
		}
	}
	rows, err := verifyChain(ctx, dst, stderr, "verifying the copy's audit chain")
	if err != nil {
		return fmt.Errorf("the copy does not verify: %w", err)
	}
	fmt.Fprintf(stdout, "OK: the copy's audit chain verifies (%d rows). Set storage.driver: postgres and storage.dsn, then start serve.\n", rows)
	return nil
}

// backfillLinks links the people of the events stored before Veil kept
// subject links, once, reading each payload's references in memory.
func backfillLinks(ctx context.Context, cfg *veil.Config, st *audit.Store) (int, error) {
	return st.BackfillLinks(ctx, func(e *veil.Event) []string {
		src := cfg.Source(e.Source)
		if src == nil || e.Payload == nil {
			return nil
		}
		sch, err := ats.New(src)
		if err != nil {
			return nil
		}
		doc, err := redact.Parse(e.Payload)
		if err != nil {
			return nil
		}
		defer doc.Release()
		in := sch.Describe(http.Header{}, e.Payload)
		return veil.SubjectRefs(src.Name, sch.Normalize(e.EventType, doc), in.Subject, cfg.Subjects.LinkByEmail)
	})
}
