package audit

// People: local users, API tokens, console sessions, pending single
// sign-on logins and the approvals of held deliveries (migration 0018).
// Secrets are never stored: a password as its argon2id hash (made by
// package auth), a token or a session cookie as a keyed hash.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// accessDigest is the keyed hash a token, a session cookie or a pending
// login's state is stored as: keyed by the vault key, so a copy of the
// database alone cannot test guesses.
func (s *Store) accessDigest(secret string) []byte {
	m := hmac.New(sha256.New, s.vaultKey)
	m.Write([]byte("veil/access/v1\x00"))
	m.Write([]byte(secret))
	return m.Sum(nil)
}

func roleList(roles []string) string { return strings.Join(veil.SortRoles(roles), ",") }

func parseRoleList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func unixOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// ErrUnknownUser is a user name with no user.
var ErrUnknownUser = veil.Errorf(veil.ENOTFOUND, "No such user.")

// AddUser creates a local user whose password hash is hash, to be changed
// at first login; audited (user_added, by actor).
func (s *Store) AddUser(ctx context.Context, name string, roles []string, hash, actor string) error {
	if err := veil.CheckUserName(name); err != nil {
		return err
	}
	return s.write(ctx, func(tx *wtx) error {
		var n int
		if err := tx.queryRowText(`SELECT count(*) FROM users WHERE name = ?`, name).Scan(&n); err != nil {
			return fmt.Errorf("read users: %w", err)
		}
		if n > 0 {
			return veil.Errorf(veil.ECONFLICT, "A user named %s exists already.", name)
		}
		if _, err := tx.execText(`INSERT INTO users (name, password, roles, must_change, created_at) VALUES (?, ?, ?, 1, ?)`,
			name, hash, roleList(roles), s.Now().UnixNano()); err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionUserAdded, Actor: actor, Outcome: "added",
			Detail: "user=" + name + " roles=" + roleList(roles)})
	})
}

// SetPassword replaces a user's password hash and unlocks her; mustChange
// asks for another at the next login (a reset). Audited as
// password_changed or, when reset, password_reset.
func (s *Store) SetPassword(ctx context.Context, name, hash string, mustChange bool, actor string) error {
	action := veil.ActionPasswordChanged
	if mustChange {
		action = veil.ActionPasswordReset
	}
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.execText(`UPDATE users SET password = ?, must_change = ?, failures = 0, locked_until = 0 WHERE name = ?`,
			hash, boolInt(mustChange), name)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrUnknownUser
		}
		return s.appendTx(tx, &veil.AuditEntry{Action: action, Actor: actor, Outcome: "changed", Detail: "user=" + name})
	})
}

// RemoveUser deletes a local user and ends her sessions; audited.
func (s *Store) RemoveUser(ctx context.Context, name, actor string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.execText(`DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("remove user: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrUnknownUser
		}
		if _, err := tx.execText(`DELETE FROM sessions WHERE actor = ?`, veil.ActorUser+name); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionUserRemoved, Actor: actor, Outcome: "removed", Detail: "user=" + name})
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Users lists the local users by name.
func (s *Store) Users(ctx context.Context) ([]veil.User, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, roles, created_at, locked_until, must_change, disabled FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []veil.User
	for rows.Next() {
		var u veil.User
		var roles string
		var created, locked int64
		var must, disabled int
		if err := rows.Scan(&u.Name, &roles, &created, &locked, &must, &disabled); err != nil {
			return nil, fmt.Errorf("read user: %w", err)
		}
		u.Roles, u.CreatedAt, u.LockedUntil = parseRoleList(roles), unixOrZero(created), unixOrZero(locked)
		u.MustChange, u.Disabled = must == 1, disabled == 1
		out = append(out, u)
	}
	return out, rows.Err()
}

// UserLogin returns a user and her password hash, for checking a login.
func (s *Store) UserLogin(ctx context.Context, name string) (veil.User, string, error) {
	var u veil.User
	var hash, roles string
	var locked int64
	var must, disabled int
	err := s.rdb.QueryRowContext(ctx, `SELECT name, password, roles, locked_until, must_change, disabled FROM users WHERE name = ?`, name).
		Scan(&u.Name, &hash, &roles, &locked, &must, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return u, "", ErrUnknownUser
	} else if err != nil {
		return u, "", fmt.Errorf("read user: %w", err)
	}
	u.Roles, u.LockedUntil, u.MustChange, u.Disabled = parseRoleList(roles), unixOrZero(locked), must == 1, disabled == 1
	return u, hash, nil
}

// LoginFailed counts a wrong password for name; the threshold-th failure
// in a row locks her out until now+lockFor, with one user_locked row (a
// lockout, not a row per attempt). It reports whether she is locked now.
func (s *Store) LoginFailed(ctx context.Context, name string, threshold int, lockFor time.Duration) (bool, error) {
	var locked bool
	err := s.write(ctx, func(tx *wtx) error {
		now := s.Now()
		var failures int
		var until int64
		err := tx.queryRowText(`SELECT failures, locked_until FROM users WHERE name = ?`, name).Scan(&failures, &until)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read user: %w", err)
		}
		if until > now.UnixNano() {
			locked = true
			return nil
		}
		failures++
		if failures < threshold {
			_, err := tx.execText(`UPDATE users SET failures = ? WHERE name = ?`, failures, name)
			return err
		}
		locked = true
		if _, err := tx.execText(`UPDATE users SET failures = 0, locked_until = ? WHERE name = ?`, now.Add(lockFor).UnixNano(), name); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		return s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionUserLocked, Actor: veil.ActorUser + name, Outcome: "locked",
			Detail: fmt.Sprintf("user=%s after %d wrong passwords in a row, until %s", name, threshold, now.Add(lockFor).UTC().Format(time.RFC3339))})
	})
	return locked, err
}

// LoginSucceeded clears name's count of wrong passwords.
func (s *Store) LoginSucceeded(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *wtx) error {
		_, err := tx.execText(`UPDATE users SET failures = 0 WHERE name = ? AND failures > 0`, name)
		return err
	})
}

// CreateToken creates an API token named name with roles, good until
// expires (zero: until revoked), and returns its secret: shown once, kept
// as a keyed hash. A live token's name is ECONFLICT; a revoked or expired
// one's is reused. Audited (token_created, by actor).
func (s *Store) CreateToken(ctx context.Context, name string, roles []string, expires time.Time, actor string) (string, error) {
	if err := veil.CheckTokenName(name); err != nil {
		return "", err
	}
	if len(roles) == 0 {
		return "", veil.Errorf(veil.EINVALID, "Give the token at least one role.")
	}
	b := make([]byte, 32)
	rand.Read(b)
	secret := "vt_" + base64.RawURLEncoding.EncodeToString(b)
	err := s.write(ctx, func(tx *wtx) error {
		now := s.Now()
		var revoked, exp int64
		err := tx.queryRowText(`SELECT revoked_at, expires_at FROM api_tokens WHERE name = ?`, name).Scan(&revoked, &exp)
		switch {
		case err == nil && revoked == 0 && (exp == 0 || exp > now.UnixNano()):
			return veil.Errorf(veil.ECONFLICT, "A live token named %s exists already; revoke it first.", name)
		case err == nil:
			if _, err := tx.execText(`DELETE FROM api_tokens WHERE name = ?`, name); err != nil {
				return fmt.Errorf("replace token: %w", err)
			}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("read tokens: %w", err)
		}
		var expNano int64
		if !expires.IsZero() {
			expNano = expires.UnixNano()
		}
		if _, err := tx.execText(`INSERT INTO api_tokens (name, digest, roles, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			name, s.accessDigest(secret), roleList(roles), now.UnixNano(), actor, expNano); err != nil {
			return fmt.Errorf("insert token: %w", err)
		}
		detail := "token=" + name + " roles=" + roleList(roles)
		if !expires.IsZero() {
			detail += " expires=" + expires.UTC().Format(time.RFC3339)
		}
		return s.appendTx(tx, &veil.AuditEntry{Time: now, Action: veil.ActionTokenCreated, Actor: actor, Outcome: "created", Detail: detail})
	})
	return secret, err
}

// RevokeToken stops a token working at once, on every replica (each use
// reads the store); audited. An unknown or already revoked name is
// ENOTFOUND.
func (s *Store) RevokeToken(ctx context.Context, name, actor string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.execText(`UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at = 0`, s.Now().UnixNano(), name)
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return veil.Errorf(veil.ENOTFOUND, "No live token is named %s.", name)
		}
		return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionTokenRevoked, Actor: actor, Outcome: "revoked", Detail: "token=" + name})
	})
}

// Tokens lists the API tokens, live, expired and revoked, by name.
func (s *Store) Tokens(ctx context.Context) ([]veil.APIToken, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, roles, created_at, created_by, expires_at, revoked_at, last_used FROM api_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []veil.APIToken
	for rows.Next() {
		var t veil.APIToken
		var roles string
		var created, exp, revoked, used int64
		if err := rows.Scan(&t.Name, &roles, &created, &t.CreatedBy, &exp, &revoked, &used); err != nil {
			return nil, fmt.Errorf("read token: %w", err)
		}
		t.Roles, t.CreatedAt, t.ExpiresAt = parseRoleList(roles), unixOrZero(created), unixOrZero(exp)
		t.RevokedAt, t.LastUsed = unixOrZero(revoked), unixOrZero(used)
		out = append(out, t)
	}
	return out, rows.Err()
}

// ErrUnknownToken is a token that is not a live API token's.
var ErrUnknownToken = veil.Errorf(veil.EUNAUTHORIZED, "Unknown, expired or revoked token.")

// TokenPrincipal returns who a live API token acts as (token:NAME), or
// ErrUnknownToken. It notes the use at most once a minute per token.
func (s *Store) TokenPrincipal(ctx context.Context, secret string) (*veil.Principal, error) {
	var name, roles string
	var exp, used int64
	err := s.rdb.QueryRowContext(ctx, `SELECT name, roles, expires_at, last_used FROM api_tokens WHERE digest = ? AND revoked_at = 0`,
		s.accessDigest(secret)).Scan(&name, &roles, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownToken
	} else if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	now := s.Now()
	if exp != 0 && now.UnixNano() >= exp {
		return nil, ErrUnknownToken
	}
	if now.UnixNano()-used > int64(time.Minute) {
		err := s.write(ctx, func(tx *wtx) error {
			_, err := tx.execText(`UPDATE api_tokens SET last_used = ? WHERE name = ?`, now.UnixNano(), name)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("note token use: %w", err)
		}
	}
	return &veil.Principal{Actor: veil.ActorToken + name, Roles: parseRoleList(roles)}, nil
}

// CreateSession stores a console session under the keyed hash of its
// cookie value id.
func (s *Store) CreateSession(ctx context.Context, id string, se *veil.Session) error {
	return s.write(ctx, func(tx *wtx) error {
		now := se.Created.UnixNano()
		// Sweep the sessions that ended, so the table holds live ones.
		if _, err := tx.execText(`DELETE FROM sessions WHERE expires_at <= ?`, now); err != nil {
			return fmt.Errorf("sweep sessions: %w", err)
		}
		if _, err := tx.execText(`DELETE FROM auth_pending WHERE expires_at <= ?`, now); err != nil {
			return fmt.Errorf("sweep pending logins: %w", err)
		}
		_, err := tx.execText(`INSERT INTO sessions (id, actor, roles, subject, csrf, via, must_change, created_at, seen_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, s.accessDigest(id), se.Actor, roleList(se.Roles), se.Subject, se.CSRF, se.Via,
			boolInt(se.MustChange), se.Created.UnixNano(), se.Seen.UnixNano(), se.Expires.UnixNano())
		if err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return nil
	})
}

// Session returns the session of cookie value id as stored, nil when
// there is none (never was, or logged out). Whether it has ended (idle,
// past its absolute expiry) is the caller's to judge, by its clock.
func (s *Store) Session(ctx context.Context, id string) (*veil.Session, error) {
	se := &veil.Session{}
	var roles string
	var must int
	var created, seen, expires int64
	err := s.rdb.QueryRowContext(ctx, `SELECT actor, roles, subject, csrf, via, must_change, created_at, seen_at, expires_at FROM sessions WHERE id = ?`,
		s.accessDigest(id)).Scan(&se.Actor, &roles, &se.Subject, &se.CSRF, &se.Via, &must, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	se.Roles, se.MustChange = parseRoleList(roles), must == 1
	se.Created, se.Seen, se.Expires = unixOrZero(created), unixOrZero(seen), unixOrZero(expires)
	return se, nil
}

// TouchSession marks the session of cookie value id as used at at (its
// idle expiry counts from then), and clears its must-change mark when
// changed is set (the person chose a new password).
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time, changed bool) error {
	return s.write(ctx, func(tx *wtx) error {
		q := `UPDATE sessions SET seen_at = ? WHERE id = ?`
		if changed {
			q = `UPDATE sessions SET seen_at = ?, must_change = 0 WHERE id = ?`
		}
		_, err := tx.execText(q, at.UnixNano(), s.accessDigest(id))
		return err
	})
}

// EndSession deletes the session of cookie value id (a logout): the
// cookie is refused from then on, on every replica.
func (s *Store) EndSession(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *wtx) error {
		_, err := tx.execText(`DELETE FROM sessions WHERE id = ?`, s.accessDigest(id))
		return err
	})
}

// DefaultMaxPending bounds the logins under way when MaxPending is 0: a
// flood of login starts costs at most this many rows, each gone after its
// ttl.
const DefaultMaxPending = 10_000

// PutPending keeps a login under way (single sign-on's state, nonce and
// verifier, as data) under the keyed hash of key for ttl from now. The
// ended ones are swept first; past MaxPending (DefaultMaxPending) live
// ones it refuses
// (EUNAVAILABLE).
func (s *Store) PutPending(ctx context.Context, key, data string, now time.Time, ttl time.Duration) error {
	return s.write(ctx, func(tx *wtx) error {
		if _, err := tx.execText(`DELETE FROM auth_pending WHERE expires_at <= ?`, now.UnixNano()); err != nil {
			return fmt.Errorf("sweep pending logins: %w", err)
		}
		var n int
		if err := tx.queryRowText(`SELECT count(*) FROM auth_pending`).Scan(&n); err != nil {
			return fmt.Errorf("count pending logins: %w", err)
		}
		limit := s.MaxPending
		if limit == 0 {
			limit = DefaultMaxPending
		}
		if n >= limit {
			return veil.Errorf(veil.EUNAVAILABLE, "Too many logins are under way.")
		}
		_, err := tx.execText(`INSERT INTO auth_pending (id, data, expires_at) VALUES (?, ?, ?)`, s.accessDigest(key), data, now.Add(ttl).UnixNano())
		return err
	})
}

// TakePending returns and deletes the login under way kept under key,
// and when it expires: a second take of the same key (a replayed state)
// finds nothing (ok false).
func (s *Store) TakePending(ctx context.Context, key string) (data string, expires time.Time, ok bool, err error) {
	err = s.write(ctx, func(tx *wtx) error {
		var exp int64
		err := tx.queryRowText(`DELETE FROM auth_pending WHERE id = ? RETURNING data, expires_at`, s.accessDigest(key)).Scan(&data, &exp)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("take pending login: %w", err)
		}
		ok, expires = true, unixOrZero(exp)
		return nil
	})
	return data, expires, ok, err
}

// PolicyLoaded audits a policy set now serving (policy_loaded, by actor)
// and notes, per package whose files' digest differs from the one last
// noted, that actor changed it. The audit row names the changed packages.
func (s *Store) PolicyLoaded(ctx context.Context, actor, digest string, files int, packages map[string]string) error {
	return s.write(ctx, func(tx *wtx) error {
		rows, err := tx.queryText(`SELECT package, digest FROM policy_changes`)
		if err != nil {
			return fmt.Errorf("read policy changes: %w", err)
		}
		known := map[string]string{}
		for rows.Next() {
			var p, d string
			if err := rows.Scan(&p, &d); err != nil {
				rows.Close()
				return err
			}
			known[p] = d
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var changed []string
		for p, d := range packages {
			if known[p] != d {
				changed = append(changed, p)
			}
		}
		slices.Sort(changed)
		now := s.Now().UnixNano()
		for _, p := range changed {
			if _, err := tx.execText(`DELETE FROM policy_changes WHERE package = ?`, p); err != nil {
				return err
			}
			if _, err := tx.execText(`INSERT INTO policy_changes (package, digest, actor, changed_at) VALUES (?, ?, ?, ?)`,
				p, packages[p], actor, now); err != nil {
				return fmt.Errorf("note policy change: %w", err)
			}
		}
		detail := fmt.Sprintf("digest=%s files=%d", digest, files)
		if len(changed) > 0 {
			detail += " changed=" + strings.Join(changed, ",")
		}
		return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionPolicyLoaded, Actor: actor, Outcome: "loaded", Detail: detail})
	})
}

// PolicyChanger returns who last changed package pkg's files ("" when
// no load noted it).
func (s *Store) PolicyChanger(ctx context.Context, pkg string) (string, error) {
	var actor string
	err := s.rdb.QueryRowContext(ctx, `SELECT actor FROM policy_changes WHERE package = ?`, pkg).Scan(&actor)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return actor, err
}

// Approvals returns who approved each of the held deliveries ids so far.
func (s *Store) Approvals(ctx context.Context, ids []string) (map[string][]veil.Approval, error) {
	out := map[string][]veil.Approval{}
	if len(ids) == 0 {
		return out, nil
	}
	in, args := inList(ids)
	rows, err := s.rdb.QueryContext(ctx, `SELECT delivery_id, actor, at FROM approvals WHERE delivery_id IN `+in+` ORDER BY at, actor`, args...)
	if err != nil {
		return nil, fmt.Errorf("read approvals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a veil.Approval
		var at int64
		if err := rows.Scan(&id, &a.Actor, &at); err != nil {
			return nil, err
		}
		a.At = unixOrZero(at)
		out[id] = append(out[id], a)
	}
	return out, rows.Err()
}
