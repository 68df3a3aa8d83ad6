-- Standing approvals: a person's approval of one request that also approves, until `expires_at` or revocation, the
-- same agent key's later requests under the same rule whose scoped fields (`scope`, canonical JSON of the fields and
-- their values) are equal. Times are microseconds since the epoch.
CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    scope       TEXT NOT NULL,
    approver_id TEXT NOT NULL,
    channel     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    revoked_by  TEXT,
    uses        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX grants_match ON grants (key_id, rule, expires_at);
CREATE INDEX grants_expiry ON grants (expires_at);
