-- Email action links are single use: the nonce of each link used, recorded before its decision is made.
CREATE TABLE used_links (
    nonce       TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL,
    used_at     BIGINT NOT NULL
);
