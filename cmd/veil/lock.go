package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/veilhq/veil"
)

// lockDataDir takes an exclusive lock on dir/serve.lock, so a second
// `veil serve` on the same SQLite data folder refuses to start instead of
// running beside the first. The lock goes with the process, even on kill -9.
// Once serve listens, setURL writes its address into the file, so the
// commands that ask the running server (dlq, purge, erase) find it.
func lockDataDir(dir string) (unlock func(), setURL func(string), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data_dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "serve.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("lock data_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("another veil serve is already running on the data folder %s (it holds %s); stop it first, or give this one its own data_dir", dir, path)
		}
		return nil, nil, fmt.Errorf("lock data_dir: %w", err)
	}
	f.Truncate(0)
	setURL = func(u string) { f.Truncate(0); f.WriteAt([]byte(u+"\n"), 0) }
	unlock = func() { f.Truncate(0); syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }
	return unlock, setURL, nil
}

// serverURL is where the running `veil serve` of cfg answers: the address
// it wrote into its lock file, or else the config's listen address.
func serverURL(cfg *veil.Config) string {
	if serveRunning(cfg.DataDir) {
		if b, err := os.ReadFile(filepath.Join(cfg.DataDir, "serve.lock")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b))
		}
	}
	return listenURL(cfg)
}

// serveRunning reports whether a `veil serve` holds the data folder's lock.
func serveRunning(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "serve.lock"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
