-- Requests keep their whole document as JSON; the columns beside it are what we filter and index on.
CREATE TABLE requests (
    id          TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,
    action      TEXT NOT NULL,
    status      TEXT NOT NULL,
    run_id      TEXT,
    idem_key    TEXT,
    idem_hash   TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    doc         TEXT NOT NULL
);
CREATE UNIQUE INDEX requests_idempotency ON requests (key_id, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX requests_status ON requests (status, id);
CREATE INDEX requests_action ON requests (action, id);
CREATE INDEX requests_run ON requests (run_id, id) WHERE run_id IS NOT NULL;
CREATE INDEX requests_key ON requests (key_id, id);

-- The audit log: a hash chain, one row per state change.
CREATE TABLE events (
    seq         BIGINT PRIMARY KEY,
    request_id  TEXT,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    data        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX events_request ON events (request_id, seq) WHERE request_id IS NOT NULL;

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL,
    approver_id     TEXT,
    secret_hash     TEXT NOT NULL UNIQUE,
    webhook_secret  TEXT,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
