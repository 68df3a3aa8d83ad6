-- Every index is a B-tree each write touches. `created_at` ranges are now bounded by the time-ordered id (UUIDv7)
-- on the primary key, so this index only cost writes.
DROP INDEX requests_created;
