package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// progress shows a long command's progress on a terminal: one line on
// stderr, redrawn at most every progressEvery — what is done, the rate and,
// when the total is known, the time left. It stays silent when stderr is
// not a terminal (scripts, pipes, CI): a nil *progress does nothing.
type progress struct {
	w           io.Writer
	what, unit  string
	total, done int64 // total 0: unknown
	start, last time.Time
	now         func() time.Time
}

const progressEvery = 250 * time.Millisecond

// isTerminal reports whether w is a terminal (a variable: tests draw
// progress into a buffer).
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress starts a progress line of what, counted in unit, out of
// total (0: unknown); nil when stderr is not a terminal.
func newProgress(stderr io.Writer, what, unit string, total int64) *progress {
	if !isTerminal(stderr) {
		return nil
	}
	p := &progress{w: stderr, what: what, unit: unit, total: total, now: time.Now}
	p.start = p.now()
	return p
}

// add counts n more done.
func (p *progress) add(n int64) {
	if p != nil {
		p.set(p.done + n)
	}
}

// set says how much is done.
func (p *progress) set(done int64) {
	if p == nil {
		return
	}
	p.done = done
	if now := p.now(); now.Sub(p.last) >= progressEvery {
		p.last = now
		fmt.Fprintf(p.w, "\r\x1b[K%s", p.line(now))
	}
}

// finish draws the last figures and ends the line.
func (p *progress) finish() {
	if p != nil {
		fmt.Fprintf(p.w, "\r\x1b[K%s\n", p.line(p.now()))
	}
}

func (p *progress) line(now time.Time) string {
	s := fmt.Sprintf("%s: %d", p.what, p.done)
	if p.total > 0 {
		s += fmt.Sprintf(" of %d %s (%.0f%%)", p.total, p.unit, 100*float64(min(p.done, p.total))/float64(p.total))
	} else {
		s += " " + p.unit
	}
	elapsed := now.Sub(p.start)
	if elapsed < time.Second/10 || p.done == 0 {
		return s
	}
	rate := float64(p.done) / elapsed.Seconds()
	s += fmt.Sprintf(", %.0f/s", rate)
	if p.total > p.done {
		s += fmt.Sprintf(", %s left", (time.Duration(float64(p.total-p.done) / rate * float64(time.Second))).Round(time.Second))
	}
	return s
}

// progressReader counts what is read from r on p.
type progressReader struct {
	r io.Reader
	p *progress
}

func (pr progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(int64(n))
	return n, err
}
