-- Stored timers: when a pending request's next escalation or deadline falls due (NULL once decided).
ALTER TABLE requests ADD COLUMN next_timer_at BIGINT;
CREATE INDEX requests_timers ON requests (next_timer_at) WHERE next_timer_at IS NOT NULL;

-- Whose request an event is about, so an agent's event stream shows only its own.
ALTER TABLE events ADD COLUMN owner_key_id TEXT;

-- The callback outbox: one row per decision to deliver, written in the decision's transaction.
CREATE TABLE deliveries (
    id                TEXT PRIMARY KEY,
    request_id        TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    url               TEXT NOT NULL,
    body              TEXT NOT NULL,
    state             TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    first_attempt_at  BIGINT,
    next_attempt_at   BIGINT,
    last_status       BIGINT,
    last_error        TEXT,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_request ON deliveries (request_id);
