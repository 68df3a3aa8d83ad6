-- Appends a transaction's events to the hash chain as its last statement: takes the chain lock (held to commit, so
-- seq order is commit order and the chain never forks), reads the head, and hashes each event after the one before.
-- Everything else a write does runs before, without the lock, so replicas wait for each other only here.
-- p_canonical holds each event's canonical JSON up to its last member, "seq" (see `Event::canonical_before_seq`);
-- the hash is the SHA-256 of prev_hash, a newline, and that text followed by `,"seq":N}`, as `Event::compute_hash`.
CREATE FUNCTION signoff_append_events(
    p_request_ids TEXT[], p_kinds TEXT[], p_actors TEXT[], p_data TEXT[], p_at BIGINT[], p_owners TEXT[],
    p_canonical TEXT[]
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    last_seq BIGINT;
    prev TEXT;
    prevs TEXT[] := '{}';
    hashes TEXT[] := '{}';
BEGIN
    -- The chain lock (0x51670FF0), the same key every write took first before this migration.
    PERFORM pg_advisory_xact_lock(1365708784);
    SELECT e.seq, e.hash INTO last_seq, prev FROM events e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        last_seq := 0;
        prev := repeat('0', 64);
    END IF;
    FOR i IN 1 .. coalesce(cardinality(p_canonical), 0) LOOP
        prevs := array_append(prevs, prev);
        prev := encode(sha256(convert_to(
            prev || E'\n' || p_canonical[i] || ',"seq":' || (last_seq + i)::text || '}', 'UTF8')), 'hex');
        hashes := array_append(hashes, prev);
    END LOOP;
    INSERT INTO events (seq, request_id, kind, actor, data, at, prev_hash, hash, owner_key_id)
    SELECT last_seq + e.ord, e.request_id, e.kind, e.actor, e.data, e.at, e.prev_hash, e.hash, e.owner
    FROM unnest(p_request_ids, p_kinds, p_actors, p_data, p_at, prevs, hashes, p_owners)
         WITH ORDINALITY AS e(request_id, kind, actor, data, at, prev_hash, hash, owner, ord);
    RETURN last_seq + coalesce(cardinality(p_canonical), 0);
END $$;
