package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuSample is the CPU time spent so far, by whom: the veil processes this
// command started (a binary named veil), its other children (the bare handler, sinks), itself,
// PostgreSQL's processes, and the machine's idle and stolen time. Where a
// phase's time goes is the difference of two samples.
type cpuSample struct {
	at                             time.Time
	veil, children, self, postgres time.Duration
	idle, steal                    time.Duration // the machine's, all CPUs; idle counts I/O wait
	switches                       uint64        // the machine's context switches since boot
	machine                        bool          // /proc/stat was read
}

// userHZ is the unit of /proc's CPU times: USER_HZ, 100 on Linux for
// every architecture Go builds this for.
const userHZ = 100

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// sampleCPU reads /proc. Off Linux, or where /proc cannot be read, every
// figure is zero and printCPU prints nothing.
func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	me := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process ended meanwhile
		}
		// pid (comm) state ppid … utime stime: comm may hold spaces, so
		// the fields count from its closing parenthesis.
		start, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if start < 0 || end < start {
			continue
		}
		comm := string(b[start+1 : end])
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 13 {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:start])))
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		t := ticks(ut + st)
		switch {
		case pid == me:
			s.self += t
		case comm == "postgres":
			s.postgres += t
		case ppid == me && comm == "veil":
			s.veil += t
		case ppid == me:
			s.children += t
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			switch {
			case len(f) > 8 && f[0] == "cpu": // cpu  user nice system idle iowait irq softirq steal …
				idle, _ := strconv.ParseUint(f[4], 10, 64)
				iowait, _ := strconv.ParseUint(f[5], 10, 64)
				steal, _ := strconv.ParseUint(f[8], 10, 64)
				s.idle, s.steal, s.machine = ticks(idle+iowait), ticks(steal), true
			case len(f) == 2 && f[0] == "ctxt":
				s.switches, _ = strconv.ParseUint(f[1], 10, 64)
			}
		}
	}
	return s
}

// printCPU prints where the CPU went between two samples, in cores (a
// process that used less than a hundredth of one is left out) and, for
// veil and PostgreSQL, in CPU time per event.
func printCPU(before, after cpuSample, events int64) {
	wall := after.at.Sub(before.at)
	if wall <= 0 || !after.machine {
		return
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / wall.Seconds() }
	var parts []string
	for _, p := range []struct {
		name     string
		d        time.Duration
		perEvent bool
	}{
		{"veil", after.veil - before.veil, true},
		{"postgres", after.postgres - before.postgres, true},
		{"bare handler or sink", after.children - before.children, false},
		{"load generator", after.self - before.self, false},
	} {
		if cores(p.d) < 0.01 {
			continue
		}
		part := fmt.Sprintf("%s %.2f", p.name, cores(p.d))
		if p.perEvent && events > 0 {
			part += fmt.Sprintf(" (%.0f µs/event)", float64(p.d.Microseconds())/float64(events))
		}
		parts = append(parts, part)
	}
	switches := ""
	if events > 0 && after.switches > before.switches {
		switches = fmt.Sprintf(", %.1f context switches per event", float64(after.switches-before.switches)/float64(events))
	}
	fmt.Printf("  cpu, in cores: %s; machine idle %.2f, stolen %.2f%s\n", strings.Join(parts, ", "),
		cores(after.idle-before.idle), cores(after.steal-before.steal), switches)
}
