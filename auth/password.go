package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/veilhq/veil"
)

// argon2id parameters: RFC 9106's second recommended option (64 MiB, 3
// passes), one lane per core of a small machine. A login costs some 60 ms
// of one core; the throttles bound how many a flood can make us compute.
const (
	argonTime    = 3
	argonMemory  = 64 << 10 // KiB
	argonThreads = 2
	argonKeyLen  = 32
)

// HashPassword returns the PHC string of password's argon2id hash with a
// fresh salt: $argon2id$v=19$m=65536,t=3,p=2$salt$hash.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword reports whether password matches the PHC string hash,
// with the parameters the hash names (so they can be raised later).
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var mem, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil || mem > 1<<20 || t > 16 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	hashing <- struct{}{} // at most a few hashes at once: 64 MiB each
	defer func() { <-hashing }()
	got := argon2.IDKey([]byte(password), salt, t, mem, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// hashing bounds the password checks in progress, whatever the number of
// logins at once: a flood of them queues for the CPU instead of
// allocating 64 MiB each.
var hashing = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// NewPassword returns a random password for a new or reset user: 20
// characters of base64, 120 bits, to be changed at first login.
func NewPassword() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// MinPasswordLength is the shortest password a person may choose.
const MinPasswordLength = 12

// CheckNewPassword says what is wrong with a chosen password, nil if
// nothing.
func CheckNewPassword(password string) error {
	if len(password) < MinPasswordLength {
		return veil.Errorf(veil.EINVALID, "Choose a password of at least %d characters.", MinPasswordLength)
	}
	if len(password) > 1024 {
		return veil.Errorf(veil.EINVALID, "A password is at most 1024 characters.")
	}
	return nil
}

// UserStore is what local logins need of the store (audit.Store).
type UserStore interface {
	UserLogin(ctx context.Context, name string) (veil.User, string, error)
	LoginFailed(ctx context.Context, name string, threshold int, lockFor time.Duration) (bool, error)
	LoginSucceeded(ctx context.Context, name string) error
}

// Lockout: LockAfter wrong passwords in a row lock a user out for
// LockFor, on every replica (the count is in the store).
const (
	LockAfter = 5
	LockFor   = 15 * time.Minute
)

// Login errors.
var (
	ErrBadLogin = errors.New("wrong user name or password")
	ErrLocked   = errors.New("locked out after repeated wrong passwords")
)

// dummyHash is checked against when the user does not exist, so an
// unknown name costs as long as a wrong password.
var dummyHash = sync.OnceValue(func() string { return HashPassword("veil: no such user") })

// LocalLogin checks name's password: the user, or ErrBadLogin (unknown,
// disabled, or a wrong password: counted towards a lockout), or ErrLocked
// (while locked, even the right password is refused).
func LocalLogin(ctx context.Context, st UserStore, name, password string, now time.Time) (veil.User, error) {
	u, hash, err := st.UserLogin(ctx, name)
	if veil.ErrorCode(err) == veil.ENOTFOUND {
		CheckPassword(dummyHash(), password)
		return u, ErrBadLogin
	} else if err != nil {
		return u, err
	}
	if !u.LockedUntil.IsZero() && now.Before(u.LockedUntil) {
		return u, ErrLocked
	}
	if u.Disabled || !CheckPassword(hash, password) {
		locked, err := st.LoginFailed(ctx, name, LockAfter, LockFor)
		if err != nil {
			return u, err
		}
		if locked {
			return u, ErrLocked
		}
		return u, ErrBadLogin
	}
	if err := st.LoginSucceeded(ctx, name); err != nil {
		return u, err
	}
	return u, nil
}
