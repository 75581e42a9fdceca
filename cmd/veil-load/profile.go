package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// With -profile, every veil this command starts serves pprof on a loopback
// port of its own (VEIL_PPROF_ADDR), and each phase takes a CPU profile of
// every veil over the phase, to print where veil's CPU went by part.
var (
	profileVeil bool
	profileDir  string // with -profile-out: where each profile is written
	pprofMu     sync.Mutex
	pprofOf     = map[string]string{} // veil's URL -> its pprof address
)

// pprofEnv returns the environment entry for a veil about to start, or
// "" without -profile, and a func that records which URL it got.
func pprofEnv() (string, func(url string)) {
	if !profileVeil {
		return "", func(string) {}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // veil listens on it in a moment
	return "VEIL_PPROF_ADDR=" + addr, func(url string) {
		pprofMu.Lock()
		pprofOf[url] = "http://" + addr
		pprofMu.Unlock()
	}
}

// parts name what a CPU sample was doing, by the first of these functions
// found on its stack, leaf first.
var parts = []struct{ name, fn string }{
	{"checkpointer", "audit.(*Store).checkpointer"},
	{"writer", "audit.(*Store).writer"},
	{"webhook handlers", "proxy.(*Server).handleHook"},
	{"http server", "net/http.(*conn).serve"},
	{"deliveries", "veil/delivery."},
	{"collector", "runtime.gcBgMarkWorker"},
}

// profiles are CPU profiles being taken of some veils over a phase.
type profiles struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	byPar map[string]time.Duration
	total time.Duration
	err   error
}

// startProfiles begins a CPU profile of each veil at urls lasting d, or
// returns nil without -profile.
func startProfiles(urls []string, d time.Duration) *profiles {
	if !profileVeil {
		return nil
	}
	p := &profiles{byPar: map[string]time.Duration{}}
	secs := max(1, int(d.Seconds())-1)
	for _, u := range urls {
		pprofMu.Lock()
		addr := pprofOf[u]
		pprofMu.Unlock()
		if addr == "" {
			p.add(nil, fmt.Errorf("%s was not started by this command", u)) // under p.mu: profiles already begun may report
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.add(fetchProfile(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", addr, secs)))
		}()
	}
	return p
}

func fetchProfile(url string) (*profile.Profile, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	prof, err := profile.Parse(resp.Body)
	if err != nil || profileDir == "" {
		return prof, err
	}
	f, err := os.CreateTemp(profileDir, "veil-*.pprof")
	if err != nil {
		return nil, err
	}
	if err := prof.Write(f); err != nil {
		f.Close()
		return nil, err
	}
	fmt.Printf("  profile written to %s\n", f.Name())
	return prof, f.Close()
}

func (p *profiles) add(prof *profile.Profile, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.err = err
		return
	}
	cpu := -1
	for i, st := range prof.SampleType {
		if st.Type == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		p.err = fmt.Errorf("the profile has no cpu samples")
		return
	}
	for _, s := range prof.Sample {
		v := time.Duration(s.Value[cpu])
		p.total += v
		p.byPar[partOf(s)] += v
	}
}

func partOf(s *profile.Sample) string {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function == nil {
				continue
			}
			for _, pt := range parts {
				if strings.Contains(l.Function.Name, pt.fn) {
					return pt.name
				}
			}
		}
	}
	return "runtime and other"
}

// wait waits for the profiles to arrive: before the veils stop.
func (p *profiles) wait() {
	if p != nil {
		p.wg.Wait()
	}
}

// print waits for the profiles and prints each part's share of veil's
// samples and, scaled to the CPU time /proc counted for veil over the
// phase (a profile misses samples when the cores are busy), its CPU time
// per event.
func (p *profiles) print(veilCPU time.Duration, events int64) {
	if p == nil {
		return
	}
	p.wg.Wait()
	if p.err != nil || p.total == 0 {
		fmt.Printf("  veil by part: no profile (%v)\n", p.err)
		return
	}
	var out []string
	for _, name := range append(partNames(), "runtime and other") {
		share := float64(p.byPar[name]) / float64(p.total)
		if share < 0.005 {
			continue
		}
		per := ""
		if events > 0 && veilCPU > 0 {
			per = fmt.Sprintf(" %.0f µs/event,", share*float64(veilCPU.Microseconds())/float64(events))
		}
		out = append(out, fmt.Sprintf("%s%s %.0f%%", name, per, 100*share))
	}
	fmt.Printf("  veil by part (CPU profile): %s\n", strings.Join(out, "; "))
}

func partNames() []string {
	var n []string
	for _, pt := range parts {
		n = append(n, pt.name)
	}
	return n
}
