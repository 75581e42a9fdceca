package auth_test

import (
	"strings"
	"testing"

	"github.com/veilhq/veil/auth"
)

// TestPassword: a hash checks its own password only, carries its
// parameters in PHC form, and each hash has its own salt.
func TestPassword(t *testing.T) {
	h := auth.HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash %q is not argon2id in PHC form", h)
	}
	if !auth.CheckPassword(h, "correct horse battery") || auth.CheckPassword(h, "correct horse batterY") || auth.CheckPassword(h, "") {
		t.Fatal("the hash does not check exactly its password")
	}
	if h == auth.HashPassword("correct horse battery") {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", "$argon2id$v=19$m=99999999,t=3,p=2$c2FsdA$aGFzaA", "plain"} {
		if auth.CheckPassword(bad, "plain") {
			t.Fatalf("%q checked", bad)
		}
	}
	if auth.CheckNewPassword("short") == nil || auth.CheckNewPassword("twelve chars") != nil {
		t.Fatal("the length rule")
	}
}

// BenchmarkCheckPassword is what one local login costs the server.
func BenchmarkCheckPassword(b *testing.B) {
	h := auth.HashPassword("correct horse battery")
	for b.Loop() {
		auth.CheckPassword(h, "correct horse battery")
	}
}
