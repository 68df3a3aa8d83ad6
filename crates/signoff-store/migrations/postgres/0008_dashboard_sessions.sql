-- Dashboard sign-ins: one row per session, found by the SHA-256 of its cookie (the cookie itself is never stored).
-- A session signed in with an API key names it (key_id), and lives only as long as that key is not revoked.
CREATE TABLE dashboard_sessions (
    token_hash  TEXT PRIMARY KEY,
    person      TEXT NOT NULL,
    key_id      TEXT,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
