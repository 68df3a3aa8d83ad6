-- The person responsible for an agent key (who never approves its requests).
ALTER TABLE api_keys ADD COLUMN owner_id TEXT;

-- Which claim of a delivery may record its attempt: a worker whose lease ran out records nothing.
ALTER TABLE deliveries ADD COLUMN lease_token TEXT;

-- Signed checkpoints of the event chain's head, so truncation and rewriting can be detected.
CREATE TABLE checkpoints (
    seq         BIGINT NOT NULL,
    head_hash   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    key_id      TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL,
    PRIMARY KEY (seq, key_id)
);
