-- Every applied policy document, in order; the highest version is in force.
CREATE TABLE policies (
    version       INTEGER PRIMARY KEY,
    content_hash  TEXT NOT NULL,
    source        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL
);
CREATE INDEX requests_created ON requests (created_at);
