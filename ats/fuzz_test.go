package ats

import (
	"strings"
	"testing"

	"github.com/veilhq/veil"
)

// The seed corpora run in every `go test`; `go test -fuzz=FuzzX ./ats`
// explores further (README, Development).

func FuzzParseGreenhouseSignature(f *testing.F) {
	for _, s := range []string{"sha256 b178f8b093d0cc7b3a1dcc7c16edc4ac6ceb4e1b105b2695412ef20cb6f150b3", "sha256 ", "sha1 00", "", " sha256  zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if sig, err := parseGreenhouseSignature(v); err == nil && len(sig) != 32 {
			t.Fatalf("accepted a %d-byte signature", len(sig))
		}
	})
}

func FuzzParseAshbySignature(f *testing.F) {
	for _, s := range []string{"sha256=7df186298c7bac7e770af45c7853f82b5861fb4278c72d3db4105f6ca74afcfb", "sha256=", "=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if sig, err := parseAshbySignature(v); err == nil && len(sig) != 32 {
			t.Fatalf("accepted a %d-byte signature", len(sig))
		}
	})
}

func FuzzParseStandardSignatures(f *testing.F) {
	for _, s := range []string{"v1,gDp2ReLVK2H6K6zlaF/mnkh0eTb8Vht8dS1v7gAZ94U=", "v1,a v1,b", "v1a,xyz v1,", "v1,,,,", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, sig := range parseStandardSignatures(v) {
			if len(sig) != 32 {
				t.Fatalf("accepted a %d-byte signature", len(sig))
			}
		}
	})
}

func FuzzParseSmartRecruitersSignatures(f *testing.F) {
	for _, s := range []string{"v1=" + strings.Repeat("ab", 32), "v1=" + strings.Repeat("ab", 32) + ";v1=00", ";;;", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		sigs := parseSmartRecruitersSignatures(v)
		if len(sigs) > 16 {
			t.Fatalf("accepted %d signatures, want at most 16", len(sigs))
		}
		for _, sig := range sigs {
			if len(sig) != 32 {
				t.Fatalf("accepted a %d-byte signature", len(sig))
			}
		}
	})
}

func FuzzParseHMACSignature(f *testing.F) {
	f.Add(strings.Repeat("AB", 32), "", "hex")
	f.Add("sha256=q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=", "sha256=", "base64")
	f.Add("", "x", "base64")
	f.Fuzz(func(t *testing.T, v, prefix, enc string) {
		if sig, err := parseHMACSignature(v, prefix, enc); err == nil && len(sig) != 32 {
			t.Fatalf("accepted a %d-byte signature", len(sig))
		}
	})
}

func FuzzParseLeverBody(f *testing.F) {
	for _, s := range samples(f) {
		if s.vendor == veil.VendorLever {
			f.Add(s.body)
		}
	}
	f.Add([]byte(`{"token":"t","triggeredAt":1e3,"signature":"s"}`))
	f.Add([]byte(`{"token":1,"triggeredAt":"1","signature":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		parseLeverBody(body) // must not panic
	})
}
