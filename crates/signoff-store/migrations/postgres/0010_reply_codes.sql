-- SMS reply codes: each person's short code for a request they were asked about (`A 4821`), unique among that
-- person's codes, and the id of the short signed link the message carries. A person's codes for requests that are no
-- longer pending are dropped when they are given a new one, so a code is unique among their open requests.
CREATE TABLE reply_codes (
    person      TEXT NOT NULL,
    code        TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    link_id     TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (person, code),
    UNIQUE (person, request_id)
);
