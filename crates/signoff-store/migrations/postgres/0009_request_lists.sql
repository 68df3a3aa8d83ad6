-- What the dashboard's lists (Expired, Review, History) filter and sort on, kept in step with the document: when and
-- by whom a request was decided, the policy rule that placed it, and whether a post-execution report was sampled.
ALTER TABLE requests ADD COLUMN decided_at BIGINT;
ALTER TABLE requests ADD COLUMN decided_by TEXT;
ALTER TABLE requests ADD COLUMN rule TEXT;
ALTER TABLE requests ADD COLUMN sampled BOOLEAN;
-- Requests stored before: read from their documents.
UPDATE requests SET
    decided_at = (EXTRACT(EPOCH FROM (doc::jsonb #>> '{decision,at}')::timestamptz) * 1000000)::BIGINT,
    decided_by = doc::jsonb #>> '{decision,by,approver_id}',
    rule = doc::jsonb #>> '{policy,rule}',
    sampled = (doc::jsonb ->> 'sampled')::BOOLEAN;
CREATE INDEX requests_decided ON requests (decided_at, id);
