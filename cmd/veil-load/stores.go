package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// runStores loads ingest with fan-out on SQLite, on PostgreSQL with one
// replica, and on PostgreSQL with three replicas sharing the database, one
// after the other in the same run.
func runStores(ctx context.Context, bin, pgDSN string, body []byte, workers int, d time.Duration) {
	fmt.Printf("stores: %d B body, concurrency %d, %s per phase, decided for 3 destinations\n", len(body), workers, d)
	dests := destinationsFor(true, "")
	stop, u, _, err := startVeilExtra(bin, dests, "", false)
	if err != nil {
		fatal(err)
	}
	w := watchVeils([]string{u}, d)
	lite := runOn(ctx, []string{u + "/hooks/greenhouse"}, body, workers, d, 0)
	w.end(lite)
	stop()
	lite.print("sqlite")
	w.print()

	for _, replicas := range []int{1, 3} {
		dsn, drop := pgSchema(pgDSN)
		extra := fmt.Sprintf("storage: {driver: postgres, dsn: %q}", dsn)
		var urls, bases []string
		var stops []func()
		for range replicas {
			stop, u, _, err := startVeilExtra(bin, dests, extra, false)
			if err != nil {
				fatal(err)
			}
			stops = append(stops, stop)
			urls = append(urls, u+"/hooks/greenhouse")
			bases = append(bases, u)
		}
		w := watchVeils(bases, d)
		r := runOn(ctx, urls, body, workers, d, 0)
		w.end(r)
		for _, s := range stops {
			s()
		}
		drop()
		r.print(fmt.Sprintf("postgres, %d replica(s)", replicas))
		w.print()
		fmt.Printf("ratio: %.1f%% of the SQLite rate\n", 100*r.rps/lite.rps)
	}
}

// veilWatch is what a phase's veils did over it: the CPU by whom, their
// writers' batches and, with -profile, their CPU by part.
type veilWatch struct {
	urls       []string
	cpu, after cpuSample
	writers    writerSample
	stats      string
	prof       *profiles
	events     int64
}

// watchVeils begins watching the veils at urls over a phase of length d.
func watchVeils(urls []string, d time.Duration) *veilWatch {
	return &veilWatch{urls: urls, writers: sampleWriters(urls), cpu: sampleCPU(), prof: startProfiles(urls, d)}
}

// end closes the watch on the phase's result r, while the veils still run.
func (w *veilWatch) end(r *result) {
	w.after, w.events = sampleCPU(), r.ok
	w.stats = writerStats(w.writers, sampleWriters(w.urls), len(w.urls), r.elapsed)
	w.prof.wait()
}

// print prints what end gathered, under the phase's own line.
func (w *veilWatch) print() {
	printCPU(w.cpu, w.after, w.events)
	fmt.Println(w.stats)
	w.prof.print(w.after.veil-w.cpu.veil, w.events)
}

// writerSample is what the store writers of some replicas had committed
// so far, from their metrics; the difference of two is a phase's.
type writerSample struct{ batches, writes, seconds float64 }

func sampleWriters(urls []string) writerSample {
	var w writerSample
	for _, u := range urls {
		m := scrape(u + "/metrics")
		w.batches += m["veil_store_commit_batch_size_count"]
		w.writes += m["veil_store_commit_batch_size_sum"]
		w.seconds += m["veil_store_commit_seconds_sum"]
	}
	return w
}

// writerStats says what the writers of n replicas did between two samples
// a phase of length d apart: how many batches they committed, how many
// writes a batch held, and how much of the phase each writer spent in them.
func writerStats(before, after writerSample, n int, d time.Duration) string {
	batches, writes, seconds := after.batches-before.batches, after.writes-before.writes, after.seconds-before.seconds
	if batches <= 0 || n == 0 {
		return "  writers: no batches"
	}
	return fmt.Sprintf("  writers: %.0f batches, %.1f writes and %.2f ms a batch, each writer busy %.0f%% of the phase",
		batches, writes/batches, 1000*seconds/batches, 100*seconds/float64(n)/d.Seconds())
}

// pgSchema makes a schema for one phase and returns its DSN and a func
// that drops it.
func pgSchema(dsn string) (string, func()) {
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "veil_load_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		fatal(fmt.Errorf("PostgreSQL at -postgres: %w", err))
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema, atExit(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
}
