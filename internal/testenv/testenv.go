// Package testenv says which tests a run includes. `go test ./...` runs
// the quick ones, in a couple of minutes; the slow end-to-end, browser,
// kill -9, replica and hostile-load tests run when CI is set (.ci/run
// sets it, with -race) or VEIL_TEST_ALL=1 asks for them.
package testenv

import (
	"os"
	"testing"
)

// All reports whether this run includes the slow tests.
func All() bool { return os.Getenv("CI") != "" || os.Getenv("VEIL_TEST_ALL") != "" }

// Slow skips tb unless the run includes the slow tests; why says what it
// costs, for the skip message.
func Slow(tb testing.TB, why string) {
	tb.Helper()
	if !All() {
		tb.Skipf("slow (%s): VEIL_TEST_ALL=1 or CI=1 runs it", why)
	}
}
