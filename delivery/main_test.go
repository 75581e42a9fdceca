package delivery_test

import (
	"testing"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

const testConfig = `
admin_token: test-admin-token
keys:
  vault: "zo7zdE/t4WyHDdH59rTYZgFoaCq+Tdsx/Ko3z1mHH7s="
  pseudonym: "q1Vo1AS+SjXQkZRDfzRpy0g0u2rzRyHAEOfOcL8PGGY="
sources:
  - {name: greenhouse, vendor: greenhouse, secret: gh-fixture-secret-Qm7v2Lx9}
`

func mustConfig(tb testing.TB) *veil.Config {
	tb.Helper()
	cfg, err := veil.ParseConfig([]byte(testConfig), func(string) (string, bool) { return "", false }, ats.Vendors())
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}
