-- What the dashboard's lists (Expired, Review, History) filter and sort on, kept in step with the document: when and
-- by whom a request was decided, the policy rule that placed it, and whether a post-execution report was sampled.
ALTER TABLE requests ADD COLUMN decided_at INTEGER;
ALTER TABLE requests ADD COLUMN decided_by TEXT;
ALTER TABLE requests ADD COLUMN rule TEXT;
ALTER TABLE requests ADD COLUMN sampled INTEGER;
-- Requests stored before: read from their documents (to the second; later writes keep microseconds).
UPDATE requests SET
    decided_at = CAST(strftime('%s', json_extract(doc, '$.decision.at')) AS INTEGER) * 1000000,
    decided_by = json_extract(doc, '$.decision.by.approver_id'),
    rule = json_extract(doc, '$.policy.rule'),
    sampled = json_extract(doc, '$.sampled');
CREATE INDEX requests_decided ON requests (decided_at, id);
