//! The event log from the outside: the hash chain catches tampering and survives concurrent writers, the SSE
//! stream resumes without gaps or repeats and shows agents only their own events, and `/metrics` counts what
//! happened. Every scenario on every backend.

use serde_json::{Value, json};
use signoff_domain::{Event, Role};
use signoff_store::NewKey;
use signoff_testkit::{Backend, CallbackReceiver, TestApp, TestDatabase, error_code, on_every_backend, send};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::{Instant, timeout};

on_every_backend!(
    verify_names_the_first_altered_or_missing_event,
    only_admins_verify_the_audit_log,
    concurrent_writers_on_two_replicas_keep_the_chain_whole,
    verify_catches_a_fork_and_an_event_dropped_from_one_replicas_writes,
    stream_delivers_live_events_and_resumes_without_gaps_or_repeats,
    agents_stream_only_their_own_events,
    bad_stream_requests_get_a_json_error,
    idle_stream_sends_heartbeats_and_ends_at_shutdown,
    metrics_count_creations_decisions_and_pending,
);

/// How long any single read from the server may take before the test fails.
const READ: Duration = Duration::from_secs(10);

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_string()
}

async fn create(app: &TestApp, key: &str, body: Value) -> String {
    let (status, created) =
        timeout(READ, send(app.post("/v1/requests", key).json(&body))).await.expect("create answers in time");
    assert_eq!(status, 201, "{created}");
    id_of(&created)
}

async fn approve(app: &TestApp, id: &str) {
    let (status, body) = timeout(READ, app.decide(id, &app.approver_key, json!({"outcome": "approve"})))
        .await
        .expect("decide answers in time");
    assert_eq!(status, 200, "{body}");
}

async fn verify(app: &TestApp) -> Value {
    let (status, body) =
        timeout(READ, send(app.get("/v1/audit/verify", &app.admin_key))).await.expect("verify answers in time");
    assert_eq!(status, 200, "{body}");
    body
}

/// Every event in the log, oldest first, straight from the store.
async fn all_events(app: &TestApp) -> Vec<Event> {
    app.state.store.events_after(0, 100_000, None).await.expect("read the log")
}

/// The seqs of one request's events, as `/v1/requests/{id}/events` reports them.
async fn seqs_of_request(app: &TestApp, id: &str) -> Vec<i64> {
    let (status, events) = send(app.get(&format!("/v1/requests/{id}/events"), &app.admin_key)).await;
    assert_eq!(status, 200, "{events}");
    events.as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Direct access to the database, as someone with the file or the credentials would have it.

enum RawDb {
    Sqlite(rusqlite::Connection),
    Postgres(sqlx::PgConnection),
}

impl RawDb {
    async fn open(db: &TestDatabase) -> RawDb {
        match db.backend {
            Backend::Sqlite => {
                let path = db.url.strip_prefix("sqlite://").expect("a sqlite:// URL");
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                RawDb::Sqlite(conn)
            }
            Backend::Postgres => {
                RawDb::Postgres(sqlx::PgConnection::connect(&db.url).await.expect("connect to PostgreSQL"))
            }
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    async fn execute(&mut self, sql: &str) -> u64 {
        match self {
            RawDb::Sqlite(conn) => conn.execute(sql, []).unwrap_or_else(|e| panic!("{sql}: {e}")) as u64,
            RawDb::Postgres(conn) => {
                sqlx::query(sql).execute(&mut *conn).await.unwrap_or_else(|e| panic!("{sql}: {e}")).rows_affected()
            }
        }
    }

    async fn data_of(&mut self, seq: i64) -> String {
        let sql = format!("SELECT data FROM events WHERE seq = {seq}");
        match self {
            RawDb::Sqlite(conn) => conn.query_row(&sql, [], |row| row.get(0)).unwrap(),
            RawDb::Postgres(conn) => sqlx::query_scalar(&sql).fetch_one(&mut *conn).await.unwrap(),
        }
    }
}

/// A SQL string literal.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

// ---------------------------------------------------------------------------------------------------------------
// Audit chain

async fn verify_names_the_first_altered_or_missing_event(backend: Backend) {
    let (db, app) = TestApp::on(backend).await;
    let mut ids = Vec::new();
    for amount in [10, 20, 30] {
        ids.push(create(&app, &app.agent_key, json!({"action": "refund", "args": {"amount": amount}})).await);
    }
    approve(&app, &ids[0]).await;
    let (status, body) = app.decide(&ids[1], &app.approver_key, json!({"outcome": "reject", "comment": "no"})).await;
    assert_eq!(status, 200, "{body}");

    // 3 key_created, 3 × (created, routed), 2 decided.
    let events = all_events(&app).await;
    assert_eq!(events.len(), 11);
    let verified = verify(&app).await;
    assert_eq!(
        verified,
        json!({"ok": true, "events": 11, "head": events[10].hash, "first_bad_seq": null, "problem": null}),
    );

    let mut raw = RawDb::open(&db).await;
    // Altered content: the event itself no longer matches its hash.
    let original = raw.data_of(3).await;
    assert_eq!(raw.execute(r#"UPDATE events SET data = '{"forged":true}' WHERE seq = 3"#).await, 1);
    let verified = verify(&app).await;
    assert_eq!(verified["ok"], false, "{verified}");
    assert_eq!(verified["first_bad_seq"], 3, "{verified}");
    assert_eq!(verified["events"], 2, "the two events before it check out: {verified}");
    assert_eq!(verified["head"], events[1].hash, "the head is the last good event's hash: {verified}");
    let problem = verified["problem"].as_str().unwrap();
    assert!(problem.contains("event 3") && problem.contains("altered"), "{problem}");

    // Putting the original back makes the chain whole again: the check is about content, not about rows touched.
    raw.execute(&format!("UPDATE events SET data = {} WHERE seq = 3", quoted(&original))).await;
    assert_eq!(verify(&app).await["ok"], true);

    // Other columns are covered too: the actor, the time, the request.
    for (sql, seq) in [
        ("UPDATE events SET actor = 'someone-else' WHERE seq = 5", 5),
        ("UPDATE events SET at = at + 1 WHERE seq = 6", 6),
        ("UPDATE events SET kind = 'cancelled' WHERE seq = 10", 10),
    ] {
        let before = all_events(&app).await;
        raw.execute(sql).await;
        let verified = verify(&app).await;
        assert_eq!((verified["ok"].as_bool(), verified["first_bad_seq"].as_i64()), (Some(false), Some(seq)), "{sql}");
        // Undo it by writing the column back from the event as read before.
        let event = &before[seq as usize - 1];
        let undo = format!(
            "UPDATE events SET actor = {}, at = {}, kind = {} WHERE seq = {seq}",
            quoted(&event.actor),
            event.at.timestamp_micros(),
            quoted(event.kind.as_str()),
        );
        raw.execute(&undo).await;
        assert_eq!(verify(&app).await["ok"], true, "undoing `{sql}` restores the chain");
    }

    // A forger who also recomputes the altered event's own hash is caught at the next event, whose prev_hash no
    // longer matches.
    let mut forged = events[6].clone();
    assert_eq!(forged.seq, 7);
    forged.data = json!({"group": "nobody"});
    forged.hash = forged.compute_hash();
    raw.execute(&format!(
        "UPDATE events SET data = {}, hash = {} WHERE seq = 7",
        quoted(&forged.data.to_string()),
        quoted(&forged.hash)
    ))
    .await;
    let verified = verify(&app).await;
    assert_eq!((verified["ok"].as_bool(), verified["first_bad_seq"].as_i64()), (Some(false), Some(8)), "{verified}");
    assert!(verified["problem"].as_str().unwrap().contains("prev_hash"), "{verified}");
    raw.execute(&format!(
        "UPDATE events SET data = {}, hash = {} WHERE seq = 7",
        quoted(&events[6].data.to_string()),
        quoted(&events[6].hash)
    ))
    .await;
    assert_eq!(verify(&app).await["ok"], true);

    // A deleted event: the chain breaks at the event after the gap, which says which one is missing.
    assert_eq!(raw.execute("DELETE FROM events WHERE seq = 2").await, 1);
    let verified = verify(&app).await;
    assert_eq!(verified["ok"], false, "{verified}");
    assert_eq!(verified["first_bad_seq"], 3, "{verified}");
    assert_eq!(verified["events"], 1, "{verified}");
    assert_eq!(verified["head"], events[0].hash, "{verified}");
    let problem = verified["problem"].as_str().unwrap();
    assert!(problem.contains("event 3") && problem.contains("expected event 2"), "{problem}");
}

async fn only_admins_verify_the_audit_log(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    create(&app, &app.agent_key, json!({"action": "refund"})).await;
    for key in [&app.agent_key, &app.approver_key] {
        let (status, body) = send(app.get("/v1/audit/verify", key)).await;
        assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    }
    let (status, body) = send(app.http.get(format!("{}/v1/audit/verify", app.url))).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{body}");
    assert_eq!(verify(&app).await["ok"], true);
}

/// The servers that write one database at once: on PostgreSQL two replicas, each with its own connections; SQLite
/// has one process per file.
async fn replicas_on(backend: Backend) -> (TestDatabase, Vec<TestApp>) {
    let db = TestDatabase::new(backend).await;
    let mut apps = vec![TestApp::spawn(db.open().await).await];
    if backend == Backend::Postgres {
        let second = TestApp::replica(db.open().await, &apps[0]).await;
        apps.push(second);
    }
    (db, apps)
}

async fn concurrent_writers_on_two_replicas_keep_the_chain_whole(backend: Backend) {
    const REQUESTS: usize = 100;
    let (_db, apps) = replicas_on(backend).await;
    let replicas: Vec<&TestApp> = apps.iter().collect();
    let watcher = *replicas.last().unwrap();
    // An admin stream on the last replica, open through the storm, must see every event exactly once, in order.
    let mut stream = SseStream::connect(watcher.get("/v1/events", &watcher.admin_key)).await;

    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let creator = replicas[i % replicas.len()];
            let decider = replicas[(i + 1) % replicas.len()];
            let create =
                creator.post("/v1/requests", &creator.agent_key).json(&json!({"action": "refund", "args": {"i": i}}));
            let decide_url = format!("{}/v1/requests/", decider.url);
            let (http, approver) = (decider.http.clone(), decider.approver_key.clone());
            let outcome =
                if i % 2 == 0 { json!({"outcome": "approve"}) } else { json!({"outcome": "reject", "comment": "no"}) };
            tokio::spawn(async move {
                let (status, created) = send(create).await;
                assert_eq!(status, 201, "{created}");
                let id = id_of(&created);
                let (status, decided) =
                    send(http.post(format!("{decide_url}{id}/decision")).bearer_auth(approver).json(&outcome)).await;
                assert_eq!(status, 200, "{decided}");
                id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(timeout(Duration::from_secs(120), task).await.expect("the storm ends").unwrap());
    }

    let expected = 3 + 3 * REQUESTS;
    for replica in &replicas {
        let verified = verify(replica).await;
        assert_eq!(verified["ok"], true, "{verified}");
        assert_eq!(verified["events"], expected as u64, "{verified}");
    }
    let events = all_events(replicas[0]).await;
    assert_eq!(events.len(), expected);
    assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as i64 + 1), "seqs are 1..={expected} without gaps");
    for id in &ids {
        let kinds: Vec<_> = events
            .iter()
            .filter(|e| e.request_id.map(|r| r.to_string()).as_deref() == Some(id))
            .map(|e| e.kind.as_str())
            .collect();
        assert_eq!(kinds, ["created", "routed", "decided"], "request {id}");
    }

    let streamed = stream.events(expected, Duration::from_secs(30)).await;
    let streamed_seqs: Vec<i64> = streamed.iter().map(|e| e.seq).collect();
    let stored_seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(streamed_seqs, stored_seqs, "the stream saw every event once, in order");
    stream.assert_quiet(Duration::from_millis(2500)).await;
}

/// An event as a forger who knows the hash rule would insert it: every column, its own hash consistent.
fn insert_event(event: &Event) -> String {
    let text = |value: Option<String>| value.map_or("NULL".to_string(), |v| quoted(&v));
    format!(
        "INSERT INTO events (seq, request_id, kind, actor, data, at, prev_hash, hash, owner_key_id) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
        event.seq,
        text(event.request_id.map(|id| id.to_string())),
        quoted(event.kind.as_str()),
        quoted(&event.actor),
        quoted(&event.data.to_string()),
        event.at.timestamp_micros(),
        quoted(&event.prev_hash),
        quoted(&event.hash),
        text(event.owner_key_id.clone()),
    )
}

/// The chain the replicas write together still names a fork (two events claiming one place) and an event dropped
/// from the middle of what one replica wrote, whether or not the forger renumbers or rehashes around it.
async fn verify_catches_a_fork_and_an_event_dropped_from_one_replicas_writes(backend: Backend) {
    let (db, apps) = replicas_on(backend).await;
    let replicas: Vec<&TestApp> = apps.iter().collect();
    let last = *replicas.last().unwrap();
    // Both replicas write at once: each creates on one and decides on the other.
    let mut writes = Vec::new();
    for i in 0..20 {
        let (creator, decider) = (replicas[i % replicas.len()], replicas[(i + 1) % replicas.len()]);
        writes.push(async move {
            let id = create(creator, &creator.agent_key, json!({"action": "refund", "args": {"i": i}})).await;
            approve(decider, &id).await;
            (id, std::ptr::eq(decider, last))
        });
    }
    let decided = futures::future::join_all(writes).await;
    let events = all_events(replicas[0]).await;
    let n = events.len() as i64;
    assert_eq!(n, 3 + 3 * 20);
    assert_eq!(verify(last).await["ok"], true);

    // The middle one of the decisions the last replica wrote.
    let by_last: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.kind.as_str() == "decided"
                && decided
                    .iter()
                    .any(|(id, on_last)| *on_last && e.request_id.map(|r| r.to_string()) == Some(id.clone()))
        })
        .collect();
    let victim = by_last[by_last.len() / 2].clone();
    let k = victim.seq;
    assert!(1 < k && k < n, "an event from the middle of the chain");
    let mut raw = RawDb::open(&db).await;
    let expect_break = |verified: &Value, at: i64, words: &str| {
        assert_eq!(
            (verified["ok"].as_bool(), verified["first_bad_seq"].as_i64()),
            (Some(false), Some(at)),
            "{verified}"
        );
        assert!(verified["problem"].as_str().unwrap().contains(words), "{verified}");
    };

    // A fork appended at the head: a well-formed event whose prev_hash claims the place of event k.
    let mut sibling = victim.clone();
    sibling.seq = n + 1;
    sibling.data = json!({"outcome": "reject"});
    sibling.hash = sibling.compute_hash();
    raw.execute(&insert_event(&sibling)).await;
    for replica in &replicas {
        expect_break(&verify(replica).await, n + 1, "prev_hash");
    }
    assert_eq!(raw.execute(&format!("DELETE FROM events WHERE seq = {}", n + 1)).await, 1);
    assert_eq!(verify(last).await["ok"], true);

    // A fork in place: a twin of event k (same seq, same prev_hash, its own valid hash). The schema refuses two
    // events at one seq, so the forger drops that constraint first (PostgreSQL lets a table owner do this; SQLite's
    // rowid cannot hold two).
    if backend == Backend::Postgres {
        raw.execute("ALTER TABLE events DROP CONSTRAINT events_pkey").await;
        let mut twin = victim.clone();
        twin.data = json!({"outcome": "reject"});
        twin.hash = twin.compute_hash();
        raw.execute(&insert_event(&twin)).await;
        for replica in &replicas {
            // Whichever claimant is read first checks out; the second is named.
            let verified = verify(replica).await;
            expect_break(&verified, k, &format!("expected event {}", k + 1));
            assert_eq!(verified["events"], k, "{verified}");
        }
        assert_eq!(
            raw.execute(&format!("DELETE FROM events WHERE seq = {k} AND hash = {}", quoted(&twin.hash))).await,
            1
        );
        raw.execute("ALTER TABLE events ADD PRIMARY KEY (seq)").await;
        assert_eq!(verify(last).await["ok"], true);
    }

    // Event k dropped: the gap is named at the event after it.
    assert_eq!(raw.execute(&format!("DELETE FROM events WHERE seq = {k}")).await, 1);
    for replica in &replicas {
        let verified = verify(replica).await;
        expect_break(&verified, k + 1, &format!("expected event {k}"));
        assert_eq!(verified["events"], k - 1, "{verified}");
    }
    // …and renumbered to close the gap: the event now at k does not link to event k − 1.
    raw.execute(&format!("UPDATE events SET seq = -seq WHERE seq > {k}")).await;
    raw.execute("UPDATE events SET seq = -seq - 1 WHERE seq < 0").await;
    expect_break(&verify(last).await, k, "prev_hash");
    // …and relinked: the forger also rewrites the next event's prev_hash and hash. It is caught one event later,
    // and rehashing every event to the head is what a signed checkpoint catches (tests/audit_checkpoints.rs).
    let mut relinked = events[k as usize].clone();
    relinked.seq = k;
    relinked.prev_hash = events[k as usize - 2].hash.clone();
    relinked.hash = relinked.compute_hash();
    raw.execute(&format!(
        "UPDATE events SET prev_hash = {}, hash = {} WHERE seq = {k}",
        quoted(&relinked.prev_hash),
        quoted(&relinked.hash)
    ))
    .await;
    let verified = verify(last).await;
    expect_break(&verified, k + 1, "prev_hash");
    assert_eq!(verified["events"], k, "{verified}");
}

// ---------------------------------------------------------------------------------------------------------------
// Server-Sent Events

/// One `text/event-stream` frame.
#[derive(Debug, Default, Clone)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: Vec<String>,
    comments: Vec<String>,
}

/// One event as the stream delivered it, checked for consistency between the frame and its JSON.
#[derive(Debug, Clone)]
struct Streamed {
    seq: i64,
    kind: String,
    request_id: Option<String>,
    json: Value,
}

enum Next {
    Frame(Frame),
    Ended,
    TimedOut,
}

/// A client of `GET /v1/events` that parses the frames itself, with a deadline on every read.
struct SseStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    last_seq: i64,
}

impl SseStream {
    async fn connect(builder: reqwest::RequestBuilder) -> SseStream {
        let response = timeout(READ, builder.send()).await.expect("the stream answers in time").expect("connect");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        if status != 200 {
            let body = response.text().await.unwrap_or_default();
            panic!("GET /v1/events answered {status}: {body}");
        }
        assert!(content_type.starts_with("text/event-stream"), "content-type {content_type}");
        SseStream { response, buffer: Vec::new(), last_seq: 0 }
    }

    /// The next frame, waiting at most `within`.
    async fn next_frame(&mut self, within: Duration) -> Next {
        let deadline = Instant::now() + within;
        loop {
            if let Some(frame) = self.take_frame() {
                return Next::Frame(frame);
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Next::TimedOut,
                Ok(Ok(Some(bytes))) => self.buffer.extend_from_slice(&bytes),
                Ok(Ok(None)) => return Next::Ended,
                Ok(Err(error)) => panic!("the stream failed: {error}"),
            }
        }
    }

    /// Cuts one complete frame (ended by a blank line) off the buffer.
    fn take_frame(&mut self) -> Option<Frame> {
        let end = self.buffer.windows(2).position(|pair| pair == b"\n\n")?;
        let raw = String::from_utf8(self.buffer[..end].to_vec()).expect("frames are UTF-8");
        self.buffer.drain(..end + 2);
        let mut frame = Frame::default();
        for line in raw.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                frame.comments.push(comment.trim().to_string());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_string();
            match field {
                "id" => frame.id = Some(value),
                "event" => frame.event = Some(value),
                "data" => frame.data.push(value),
                other => panic!("unexpected SSE field `{other}` in {raw:?}"),
            }
        }
        Some(frame)
    }

    /// The next event (skipping comment-only frames such as heartbeats), or `None` if none comes `within`.
    async fn next_event(&mut self, within: Duration) -> Option<Streamed> {
        let deadline = Instant::now() + within;
        loop {
            match self.next_frame(deadline.saturating_duration_since(Instant::now())).await {
                Next::Frame(frame) if frame.data.is_empty() && frame.id.is_none() => continue,
                Next::Frame(frame) => return Some(self.check(frame)),
                Next::Ended => panic!("the stream ended"),
                Next::TimedOut => return None,
            }
        }
    }

    fn check(&mut self, frame: Frame) -> Streamed {
        let json: Value = serde_json::from_str(&frame.data.join("\n")).expect("data is one JSON event");
        let id = frame.id.as_deref().expect("every event has an id");
        let seq: i64 = id.parse().expect("the id is a sequence number");
        assert_eq!(json["seq"].as_i64(), Some(seq), "the id is the event's seq: {json}");
        let kind = frame.event.clone().expect("every event names its kind");
        assert_eq!(json["kind"].as_str(), Some(kind.as_str()), "the event field is the kind: {json}");
        assert!(json["hash"].as_str().is_some_and(|h| h.len() == 64), "{json}");
        assert!(seq > self.last_seq, "ids increase: {seq} came after {}", self.last_seq);
        self.last_seq = seq;
        Streamed { seq, kind, request_id: json["request_id"].as_str().map(String::from), json }
    }

    /// Exactly `count` events, each within `within` of the one before.
    async fn events(&mut self, count: usize, within: Duration) -> Vec<Streamed> {
        let mut events = Vec::new();
        while events.len() < count {
            match self.next_event(within).await {
                Some(event) => events.push(event),
                None => panic!(
                    "only {} of {count} events arrived: {:?}",
                    events.len(),
                    events.iter().map(|e: &Streamed| (e.seq, e.kind.clone())).collect::<Vec<_>>()
                ),
            }
        }
        events
    }

    /// Nothing more arrives for `quiet`.
    async fn assert_quiet(&mut self, quiet: Duration) {
        if let Some(extra) = self.next_event(quiet).await {
            panic!("an unexpected event arrived: {}", extra.json);
        }
    }
}

fn seqs(events: &[Streamed]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

async fn stream_delivers_live_events_and_resumes_without_gaps_or_repeats(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let mut stream = SseStream::connect(app.get("/v1/events", &app.agent_key)).await;
    let r1 = create(&app, &app.agent_key, json!({"action": "refund", "args": {"n": 1}})).await;
    let r2 = create(&app, &app.agent_key, json!({"action": "refund", "args": {"n": 2}})).await;
    let live = stream.events(4, READ).await;
    let described: Vec<_> = live.iter().map(|e| (e.kind.as_str(), e.request_id.clone().unwrap())).collect();
    assert_eq!(
        described,
        [("created", r1.clone()), ("routed", r1.clone()), ("created", r2.clone()), ("routed", r2.clone())]
    );
    let mut r1_and_r2 = [seqs_of_request(&app, &r1).await, seqs_of_request(&app, &r2).await].concat();
    r1_and_r2.sort();
    assert_eq!(seqs(&live), r1_and_r2, "the stream's ids are the stored seqs");
    assert_eq!(live[0].json["actor"], "agent:bot", "{}", live[0].json);
    let last_seen = live.last().unwrap().seq;
    drop(stream);

    // While disconnected: two more requests, and a decision on the first.
    let r3 = create(&app, &app.agent_key, json!({"action": "refund", "args": {"n": 3}})).await;
    approve(&app, &r1).await;
    let r4 = create(&app, &app.agent_key, json!({"action": "refund", "args": {"n": 4}})).await;
    let mut missed: Vec<i64> = Vec::new();
    for id in [&r1, &r2, &r3, &r4] {
        missed.extend(seqs_of_request(&app, id).await.into_iter().filter(|seq| *seq > last_seen));
    }
    missed.sort();
    assert_eq!(missed.len(), 5, "decided r1, created+routed r3 and r4");

    let resume = |builder: reqwest::RequestBuilder| builder.header("Last-Event-ID", last_seen.to_string());
    let mut resumed = SseStream::connect(resume(app.get("/v1/events", &app.agent_key))).await;
    let caught_up = resumed.events(missed.len(), READ).await;
    assert_eq!(seqs(&caught_up), missed, "exactly the missed events, none repeated");
    let kinds: Vec<_> = caught_up.iter().map(|e| (e.kind.as_str(), e.request_id.clone().unwrap())).collect();
    assert_eq!(
        kinds,
        [
            ("created", r3.clone()),
            ("routed", r3.clone()),
            ("decided", r1.clone()),
            ("created", r4.clone()),
            ("routed", r4.clone())
        ]
    );
    resumed.assert_quiet(Duration::from_millis(2500)).await;

    // The resumed stream goes on live.
    let r5 = create(&app, &app.agent_key, json!({"action": "refund", "args": {"n": 5}})).await;
    let next = resumed.events(2, READ).await;
    assert_eq!(seqs(&next), seqs_of_request(&app, &r5).await);

    // `?after=` resumes the same way; `Last-Event-ID` wins over it.
    let mut by_query = SseStream::connect(app.get(&format!("/v1/events?after={last_seen}"), &app.agent_key)).await;
    let from_query = by_query.events(missed.len() + 2, READ).await;
    assert_eq!(seqs(&from_query)[..missed.len()], missed[..]);
    by_query.assert_quiet(Duration::from_millis(500)).await;
    let mut both = SseStream::connect(resume(app.get("/v1/events?after=0", &app.agent_key))).await;
    assert_eq!(both.next_event(READ).await.expect("an event").seq, missed[0], "Last-Event-ID wins over ?after");

    // From the start, the agent's whole history: its own events only, no key events.
    let mut from_start = SseStream::connect(app.get("/v1/events", &app.agent_key)).await;
    let history = from_start.events(4 + missed.len() + 2, READ).await;
    assert!(history.iter().all(|e| e.request_id.is_some()), "no key events for an agent");
    from_start.assert_quiet(Duration::from_millis(500)).await;
}

async fn agents_stream_only_their_own_events(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let other = app.state.store.create_key(NewKey::new("other", Role::Agent), "test").await.expect("second agent key");
    let mut mine = SseStream::connect(app.get("/v1/events", &app.agent_key)).await;
    let mut theirs = SseStream::connect(app.get("/v1/events", &other.secret)).await;
    let mut approver = SseStream::connect(app.get("/v1/events", &app.approver_key)).await;
    let mut admin = SseStream::connect(app.get("/v1/events", &app.admin_key)).await;

    let a1 = create(&app, &app.agent_key, json!({"action": "refund", "args": {"who": "me"}})).await;
    let b1 = create(&app, &other.secret, json!({"action": "refund", "args": {"who": "them"}})).await;
    approve(&app, &b1).await;
    let a2 = create(&app, &app.agent_key, json!({"action": "email"})).await;

    let own = |events: &[Streamed], id: &str| events.iter().filter(|e| e.request_id.as_deref() == Some(id)).count();
    let got_mine = mine.events(4, READ).await;
    assert_eq!((own(&got_mine, &a1), own(&got_mine, &a2)), (2, 2), "{got_mine:?}");
    let got_theirs = theirs.events(3, READ).await;
    assert_eq!(own(&got_theirs, &b1), 3, "{got_theirs:?}");
    assert_eq!(
        got_theirs.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["created", "routed", "decided"],
        "{got_theirs:?}"
    );

    // Approvers and admins see everything, the key events included (4 keys, 3 + 4 = 7 request events).
    let stored = all_events(&app).await;
    assert_eq!(stored.len(), 4 + 7);
    for (who, stream) in [("approver", &mut approver), ("admin", &mut admin)] {
        let everything = stream.events(stored.len(), READ).await;
        assert_eq!(seqs(&everything), stored.iter().map(|e| e.seq).collect::<Vec<_>>(), "{who}");
        assert_eq!(everything.iter().filter(|e| e.kind == "key_created").count(), 4, "{who}");
        stream.assert_quiet(Duration::from_millis(500)).await;
    }
    mine.assert_quiet(Duration::from_millis(2500)).await;
    theirs.assert_quiet(Duration::from_millis(500)).await;

    // Resuming from an id that belongs to someone else's event still shows only one's own.
    let foreign = got_mine[0].seq;
    let mut resumed =
        SseStream::connect(app.get("/v1/events", &other.secret).header("Last-Event-ID", foreign.to_string())).await;
    let again = resumed.events(3, READ).await;
    assert_eq!(seqs(&again), seqs(&got_theirs));
    resumed.assert_quiet(Duration::from_millis(500)).await;
}

async fn bad_stream_requests_get_a_json_error(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    for bad in ["abc", "1.5", "12abc"] {
        let response =
            app.get("/v1/events", &app.agent_key).header("Last-Event-ID", bad).send().await.expect("answered");
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!((status, error_code(&body)), (400, "invalid_request"), "Last-Event-ID {bad}: {body}");
        assert!(content_type.starts_with("application/json"), "{content_type}");
        assert!(body["error"]["message"].as_str().unwrap().contains("Last-Event-ID"), "{body}");
    }
    let (status, body) = send(app.get("/v1/events?after=abc", &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"), "{body}");
    let (status, body) = send(app.get("/v1/events?since=5", &app.agent_key)).await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"), "{body}");
    let (status, body) = send(app.http.get(format!("{}/v1/events", app.url))).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{body}");
}

async fn idle_stream_sends_heartbeats_and_ends_at_shutdown(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let mut stream = SseStream::connect(app.get("/v1/events", &app.agent_key)).await;
    // The agent has no events: the first thing on the wire is a heartbeat (every 15 s).
    match stream.next_frame(Duration::from_secs(25)).await {
        Next::Frame(frame) => {
            assert!(frame.id.is_none() && frame.data.is_empty(), "{frame:?}");
            assert_eq!(frame.comments, ["heartbeat"], "{frame:?}");
        }
        Next::Ended => panic!("the stream ended"),
        Next::TimedOut => panic!("no heartbeat within 25 s"),
    }
    let stopping = tokio::spawn(app.stop());
    loop {
        match stream.next_frame(Duration::from_secs(10)).await {
            Next::Ended => break,
            Next::Frame(frame) => assert!(frame.data.is_empty(), "no events for this agent: {frame:?}"),
            Next::TimedOut => panic!("the stream did not end at shutdown"),
        }
    }
    timeout(Duration::from_secs(10), stopping).await.expect("the server stops with a stream open").unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Metrics

const METRICS_POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [finance] }
groups:
  finance: { notify: [email] }
defaults: { route: finance, timeout: 24h, on_timeout: reject }
rules:
  - name: small-expense
    when: action == "expense" && args.amount < 100
    decide: approve
  - name: big-expense
    when: action == "expense"
    route: finance
"#;

/// The samples of the text exposition, by series (name with labels as rendered).
async fn metrics(app: &TestApp) -> (String, BTreeMap<String, f64>) {
    let response = timeout(READ, app.http.get(format!("{}/metrics", app.url)).send()).await.unwrap().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    let samples = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
            (series.to_string(), value.parse().unwrap_or_else(|_| panic!("not a number: {line}")))
        })
        .collect();
    (text, samples)
}

async fn metrics_count_creations_decisions_and_pending(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (status, body) = app.apply_policy(METRICS_POLICY).await;
    assert_eq!(status, 201, "{body}");
    let (text, before) = metrics(&app).await;
    assert_eq!(before.get("signoff_requests_pending"), Some(&0.0), "{text}");
    assert_eq!(before.get("signoff_time_to_decision_seconds_count"), Some(&0.0), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");

    let expense = |amount: i64| json!({"action": "expense", "args": {"amount": amount}});
    let (status, small) = app.create(expense(50)).await;
    assert_eq!((status, small["status"].as_str()), (201, Some("approved")), "{small}");
    let big = create(&app, &app.agent_key, expense(500)).await;
    let rejected = create(&app, &app.agent_key, expense(700)).await;
    // Created once, retried once with the same idempotency key: counted once.
    let once = || send(app.post("/v1/requests", &app.agent_key).header("Idempotency-Key", "k900").json(&expense(900)));
    assert_eq!((once().await.0, once().await.0), (201, 200));
    create(&app, &app.agent_key, json!({"action": "email"})).await;
    approve(&app, &big).await;
    let (status, body) =
        app.decide(&rejected, &app.approver_key, json!({"outcome": "reject", "comment": "too much"})).await;
    assert_eq!(status, 200, "{body}");

    let (text, samples) = metrics(&app).await;
    let value = |series: &str| *samples.get(series).unwrap_or_else(|| panic!("no `{series}` in:\n{text}"));
    assert_eq!(value(r#"signoff_requests_created_total{mode="pre"}"#), 5.0, "a replayed create is not counted");
    assert_eq!(
        value(r#"signoff_requests_decided_total{outcome="approved",rule="small-expense",decided_by="policy"}"#),
        1.0
    );
    assert_eq!(
        value(r#"signoff_requests_decided_total{outcome="approved",rule="big-expense",decided_by="human"}"#),
        1.0
    );
    assert_eq!(
        value(r#"signoff_requests_decided_total{outcome="rejected",rule="big-expense",decided_by="human"}"#),
        1.0
    );
    let decided_series = samples.keys().filter(|s| s.starts_with("signoff_requests_decided_total")).count();
    assert_eq!(decided_series, 3, "{text}");
    // Pending: the 900 expense and the email (routed by the defaults).
    let (_, pending) = send(app.get("/v1/requests?status=pending", &app.admin_key)).await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2);
    assert_eq!(value("signoff_requests_pending"), 2.0);
    assert_eq!(value("signoff_waiters_parked"), 0.0);
    assert_eq!(value("signoff_time_to_decision_seconds_count"), 3.0);
    assert!(value("signoff_time_to_decision_seconds_sum") >= 0.0);
    assert_eq!(value(r#"signoff_time_to_decision_seconds_bucket{le="+Inf"}"#), 3.0);
    // The policy decision was instant: it falls in the smallest bucket.
    assert!(value(r#"signoff_time_to_decision_seconds_bucket{le="0.05"}"#) >= 1.0, "{text}");
    assert_eq!(value("signoff_timer_lag_seconds_count"), 0.0, "no timer fired");

    // The gauge follows the database, not this process: a cancel drops it.
    let (_, page) = send(app.get("/v1/requests?status=pending&action=email", &app.agent_key)).await;
    let email = id_of(&page["items"][0]);
    let (status, _) = send(app.post(&format!("/v1/requests/{email}/cancel"), &app.agent_key)).await;
    assert_eq!(status, 200);
    let (text, samples) = metrics(&app).await;
    assert_eq!(samples.get("signoff_requests_pending"), Some(&1.0), "{text}");
    assert_eq!(
        samples.get(r#"signoff_requests_decided_total{outcome="cancelled",rule="defaults",decided_by="agent"}"#),
        Some(&1.0),
        "{text}"
    );

    // Callback attempts, by result: the receiver refuses the first call, then accepts the retry.
    let receiver = CallbackReceiver::start(1, None).await;
    let called =
        create(&app, &app.agent_key, json!({"action": "expense", "args": {"amount": 5}, "callback_url": receiver.url}))
            .await;
    receiver.wait_for_accepted(1, Duration::from_secs(20)).await;
    let deadline = Instant::now() + READ;
    loop {
        let (text, samples) = metrics(&app).await;
        let failed = samples.get(r#"signoff_callback_attempts_total{result="failed"}"#);
        let delivered = samples.get(r#"signoff_callback_attempts_total{result="delivered"}"#);
        if (failed, delivered) == (Some(&1.0), Some(&1.0)) {
            break;
        }
        assert!(Instant::now() < deadline, "callback attempts for {called} not counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
