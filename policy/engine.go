package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Reporter is told of every load and rejection; cmd/veil wires it to the
// audit log (policy never imports audit).
type Reporter interface {
	// PolicyLoaded is told of a set now serving, asked for by actor ("veil"
	// for the file watcher, a start or SIGHUP), with the digest of each
	// package's files, so who changed which destination's policy is known.
	PolicyLoaded(digest string, files int, actor string, packages map[string]string)
	PolicyRejected(digest string, reason string)
}

// Engine holds the running policy set and replaces it when the files change
// or on Reload. A set that fails to load never replaces the running one.
type Engine struct {
	// Dir is the policy folder.
	Dir string
	// Logger receives load and reload messages; nil discards.
	Logger *slog.Logger
	// Reporter, when set, is told of loads and rejections.
	Reporter Reporter
	// Debounce is how long file changes settle before a reload; 0 means 200ms.
	Debounce time.Duration
	// Check, when set, must accept a set before it serves (e.g. every
	// package the config names exists); a refused set is rejected.
	Check func(*Set) error
	// Timeout bounds each decision of the sets it loads; 0 means
	// DefaultTimeout.
	Timeout time.Duration

	set    atomic.Pointer[Set]
	mu     sync.Mutex // serialises reloads
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewEngine returns an engine for the policies under dir.
func NewEngine(dir string) *Engine { return &Engine{Dir: dir} }

// Open loads the set; unlike a reload, a failure here is returned.
func (e *Engine) Open(ctx context.Context) error {
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	if e.Debounce <= 0 {
		e.Debounce = 200 * time.Millisecond
	}
	return e.Reload(ctx)
}

// Current returns the running set (nil before a successful Open).
func (e *Engine) Current() *Set { return e.set.Load() }

// Reload loads the folder again. On success the new set serves the next
// decision; on failure the running set stays, the rejection is reported and
// the error returned.
func (e *Engine) Reload(ctx context.Context) error { return e.ReloadAs(ctx, "veil") }

// ReloadAs is Reload asked for by actor (a person through the console, the
// API or veil policy reload), who the audit log names for it.
func (e *Engine) ReloadAs(ctx context.Context, actor string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	digest, _, _ := digestDir(e.Dir)
	if cur := e.set.Load(); cur != nil && digest != "" && cur.Digest == digest {
		return nil // nothing changed (an editor's touch, a second event)
	}
	s, err := Load(ctx, e.Dir)
	if err == nil && e.Timeout > 0 {
		s.Timeout = e.Timeout
	}
	if err == nil && e.Check != nil {
		err = e.Check(s)
	}
	if err != nil {
		e.Logger.Error("policy set rejected; the running set stays", "digest", digest, "err", err)
		if e.Reporter != nil {
			e.Reporter.PolicyRejected(digest, err.Error())
		}
		return err
	}
	e.set.Store(s)
	e.Logger.Info("policy set loaded", "digest", s.Digest, "files", s.Files)
	if e.Reporter != nil {
		e.Reporter.PolicyLoaded(s.Digest, s.Files, actor, s.PackageDigests())
	}
	return nil
}

// Start watches the folder and reloads when its files change, until Stop.
func (e *Engine) Start(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policies: %w", err)
	}
	err = filepath.WalkDir(e.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = w.Add(path)
		}
		return err
	})
	if err != nil {
		w.Close()
		return fmt.Errorf("watch policies: %w", err)
	}
	ctx, e.cancel = context.WithCancel(ctx)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer w.Close()
		var settle <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) {
					_ = w.Add(ev.Name) // a new sub-folder; not a folder is harmless
				}
				settle = time.After(e.Debounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				e.Logger.Warn("watch policies", "err", err)
			case <-settle:
				settle = nil
				_ = e.Reload(ctx) // reported inside
			}
		}
	}()
	return nil
}

// Stop ends the watcher started by Start and waits for it.
func (e *Engine) Stop() {
	if e.cancel != nil {
		e.cancel()
		e.wg.Wait()
	}
}

// Ready reports an error until a set is loaded, for /readyz.
func (e *Engine) Ready() error {
	if e.set.Load() == nil {
		return errors.New("no policy set loaded")
	}
	return nil
}
