package main

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
)

// What a run leaves on the machine while it goes — servers, temporary
// folders (a soak's holds gigabytes), PostgreSQL schemas — is undone when
// the run ends early too: on Ctrl-C, on SIGTERM (a timeout), on a fatal
// error. Otherwise an interrupted run leaves them beside the next
// measurement.
type undo struct {
	once sync.Once
	f    func()
}

var (
	undoMu sync.Mutex
	undos  []*undo
)

// atExit registers f to run if the run ends before f has run, and returns
// the func that runs it now (at most once either way).
func atExit(f func()) func() {
	u := &undo{f: f}
	undoMu.Lock()
	undos = append(undos, u)
	undoMu.Unlock()
	return func() { u.once.Do(u.f) }
}

// exit runs what is still to undo, newest first (a server stops before
// the folder it writes to is removed), and exits with code.
func exit(code int) {
	undoMu.Lock()
	list := slices.Clone(undos)
	undoMu.Unlock()
	for _, u := range slices.Backward(list) {
		u.once.Do(u.f)
	}
	os.Exit(code)
}

// exitOnSignal makes an interrupt or SIGTERM end the run through exit.
func exitOnSignal() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "veil-load: %s: stopping the servers and removing the temporary data\n", s)
		exit(1)
	}()
}
