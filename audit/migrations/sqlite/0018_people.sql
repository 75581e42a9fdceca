-- 0018 (people): who acts on the data. Local users (an argon2id hash of
-- the password, never the password), per-person and per-service API
-- tokens (a keyed hash of the secret), console sessions (a keyed hash of
-- the cookie: every replica knows a session, and a logout ends it on all
-- of them), single sign-on logins under way (state, nonce and PKCE
-- verifier, used once), and the approvals of a held delivery that needs
-- more than one person's.
CREATE TABLE users (
	name         TEXT PRIMARY KEY,
	password     TEXT NOT NULL,
	roles        TEXT NOT NULL,
	must_change  INTEGER NOT NULL DEFAULT 1,
	failures     INTEGER NOT NULL DEFAULT 0,
	locked_until INTEGER NOT NULL DEFAULT 0,
	disabled     INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL
);
CREATE TABLE api_tokens (
	name       TEXT PRIMARY KEY,
	digest     BLOB NOT NULL UNIQUE,
	roles      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	expires_at INTEGER NOT NULL DEFAULT 0,
	revoked_at INTEGER NOT NULL DEFAULT 0,
	last_used  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sessions (
	id          BLOB PRIMARY KEY,
	actor       TEXT NOT NULL,
	roles       TEXT NOT NULL,
	subject     TEXT NOT NULL,
	csrf        TEXT NOT NULL,
	via         TEXT NOT NULL,
	must_change INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	seen_at     INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_actor ON sessions(actor);
CREATE TABLE auth_pending (
	id         BLOB PRIMARY KEY,
	data       TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE TABLE approvals (
	delivery_id TEXT NOT NULL,
	actor       TEXT NOT NULL,
	at          INTEGER NOT NULL,
	PRIMARY KEY (delivery_id, actor)
);
-- Who last changed each policy package, by the digest of its files: the
-- person who did may not approve that destination's held deliveries when
-- it needs two (four eyes). A load whose package digests match what is
-- here (a restart, a second replica) changes nothing.
CREATE TABLE policy_changes (
	package    TEXT PRIMARY KEY,
	digest     TEXT NOT NULL,
	actor      TEXT NOT NULL,
	changed_at INTEGER NOT NULL
);
