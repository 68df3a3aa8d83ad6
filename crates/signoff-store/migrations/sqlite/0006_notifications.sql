-- The notification outbox: one row per person, channel and purpose, written in the transaction of the change that
-- causes it (routed, escalated, decided), sent by the notification worker with retries.
CREATE TABLE notifications (
    id               TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    owner_key_id     TEXT NOT NULL,
    approver_id      TEXT,
    channel          TEXT NOT NULL,
    address          TEXT NOT NULL,
    purpose          TEXT NOT NULL,
    group_name       TEXT NOT NULL,
    updates_id       TEXT,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_token      TEXT,
    provider_ref     TEXT,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_request ON notifications (request_id, created_at);
