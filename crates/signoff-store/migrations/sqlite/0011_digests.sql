-- Digests: when each digest group's next digest is due. A digest is taken by moving `next_at` on from the value it
-- was read at, in the transaction that writes its notifications, so each digest time is sent once across restarts
-- and replicas.
CREATE TABLE digest_schedules (
    group_name    TEXT PRIMARY KEY,
    next_at       BIGINT NOT NULL,
    last_sent_at  BIGINT
);
-- A digest notification lists several requests (a JSON array of their ids; its `request_id` is the oldest of them).
ALTER TABLE notifications ADD COLUMN digest_of TEXT;
