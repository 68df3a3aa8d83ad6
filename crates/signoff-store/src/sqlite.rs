//! The SQLite backend: one writer thread that commits concurrent writes together (group commit), and a pool of
//! readers. WAL with `synchronous = FULL`: a write is acknowledged only after its transaction is on disk.

use crate::DashboardSession;
use crate::keys::{self, CreatedKeySecret, NewKey};
use crate::{
    ASKS_TO_REMIND, ASKS_TO_UPDATE, AppliedPolicy, Change, ChangeFeed, ChangeListener, ClaimedNotification, Created,
    Delivery, DeliveryAttempt, DeliveryRecord, DeliveryState, GRANT_COLUMNS, GrantIssue, GrantRow, LIVE_GRANT,
    ListColumns, NOTIFICATION_COLUMNS, NOTIFICATION_COLUMNS_OF_N, NewDigest, NewRequestRecord, NotificationAttempt,
    NotificationOutcome, NotificationPlanner, PlannerSlot, ReplyCode, RequestFilter, RequestQuery, RequestUpdate,
    SAME_ASK, Store, StoreError, WrittenAsk, attempt_event, callback_for, decode_request, encode_json, from_micros,
    grant_from_row, lease_until, new_lease_token, new_link_id, new_notification_id, new_reply_code, notification_event,
    now, outbox_rows, person_from_db, policy_applied_event, reply_row, role_from_db, update_and_grant,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use signoff_domain::checkpoint::SignedCheckpoint;
use signoff_domain::{
    ApiKey, ApproverId, Event, EventKind, GENESIS_HASH, Grant, NewEvent, PolicyVersion, Request, RequestId, Status,
    hash_key_secret,
};
use signoff_domain::{Channel, NewAsk, Notification, NotificationPlan, NotificationState, Purpose};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, oneshot};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_policies.sql"),
    include_str!("../migrations/sqlite/0003_timers_callbacks.sql"),
    include_str!("../migrations/sqlite/0004_queues.sql"),
    include_str!("../migrations/sqlite/0005_people_checkpoints.sql"),
    include_str!("../migrations/sqlite/0006_notifications.sql"),
    include_str!("../migrations/sqlite/0007_links.sql"),
    include_str!("../migrations/sqlite/0008_dashboard_sessions.sql"),
    include_str!("../migrations/sqlite/0009_request_lists.sql"),
    include_str!("../migrations/sqlite/0010_reply_codes.sql"),
    include_str!("../migrations/sqlite/0011_digests.sql"),
    include_str!("../migrations/sqlite/0012_grants.sql"),
    include_str!("../migrations/sqlite/0013_fewer_indexes.sql"),
];
/// How many queued writes one transaction takes at most.
const MAX_BATCH: usize = 512;
/// Reads that run at once, each on its own pooled connection; more wait their turn instead of piling up
/// threads and connection caches.
const MAX_READERS: usize = 8;
/// Page cache per read-only connection, in KiB (SQLite's default is 2,000).
const READER_CACHE_KIB: usize = 256;

/// Runs inside the writer's transaction; returns what to do once the transaction has committed or failed.
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// SQLite storage. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    read_permits: tokio::sync::Semaphore,
    changes: ChangeFeed,
    planner: PlannerSlot,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let writer_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_writer(&writer_path))
            .await
            .map_err(|e| StoreError::other(e.to_string()))??;
        let (jobs, rx) = mpsc::channel(16 * MAX_BATCH);
        std::thread::Builder::new()
            .name("signoff-sqlite-writer".into())
            .spawn(move || run_writer(conn, rx))
            .map_err(|e| StoreError::other(e.to_string()))?;
        let changes = ChangeFeed::new(16_384);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                jobs,
                readers: Mutex::new(Vec::new()),
                read_permits: tokio::sync::Semaphore::new(MAX_READERS),
                changes,
                planner: PlannerSlot::default(),
            }),
        })
    }

    /// Runs `f` in the writer's next transaction (inside a savepoint of its own, so a refusal undoes only its
    /// own writes) and returns its result once that transaction is durably committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.queue(move |conn| match conn.execute_batch("SAVEPOINT job") {
            Ok(()) => {
                let result = f(conn);
                let end = if result.is_ok() { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
                conn.execute_batch(end).map_err(StoreError::from).and(result)
            }
            Err(e) => Err(e.into()),
        })
        .await
    }

    /// Like [`write`](Self::write) without the savepoint, for the hot writes (create, decide, timers), which
    /// check everything that may refuse them before their first write. A savepoint costs a copy of every page the
    /// job touches first (the sub-journal), which was a quarter of the writer's time. Should such a job still fail
    /// after writing (an I/O error, a constraint the checks missed), the whole transaction is rolled back and
    /// every write in it is told it was not carried out: nothing half-written is ever committed.
    async fn write_checked<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.queue(move |conn| run_checked(conn, f)).await
    }

    /// Queues `job` for the writer's next transaction; answers once that transaction has committed (or failed).
    async fn queue<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = job(conn);
            Box::new(move |committed: Result<(), StoreError>| {
                let _ = reply.send(committed.and(result));
            })
        });
        self.inner.jobs.send(job).await.map_err(|_| StoreError::other("the sqlite writer has stopped"))?;
        answer.await.map_err(|_| {
            StoreError::other("the write was not carried out: the database is busy or the writer stopped")
        })?
    }

    /// Whether `sql` (a query taking a time as `?1`) finds a row due at `at`.
    async fn any_due(&self, sql: &'static str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.read(move |conn| {
            Ok(conn.prepare_cached(sql)?.query_row([at.timestamp_micros()], |_| Ok(())).optional()?.is_some())
        })
        .await
    }

    /// Runs a point read on a pooled connection on the calling thread. For the lookup every call makes (its key),
    /// which reads a few cached pages: cheaper than the hop to a blocking thread and back. WAL readers never wait
    /// for the writer, so this does not stall the async worker.
    fn read_inline<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.inner.readers.lock().expect("reader pool").pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.inner.path)?,
        };
        let result = f(&conn);
        self.inner.readers.lock().expect("reader pool").push(conn);
        result
    }

    /// Runs `f` on a pooled read-only connection.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        let _permit = self.inner.read_permits.acquire().await.map_err(|e| StoreError::other(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().expect("reader pool").pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&inner.path)?,
            };
            let result = f(&conn);
            inner.readers.lock().expect("reader pool").push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::other(e.to_string()))?
    }
}

/// Runs `f` inside the writer's transaction without a savepoint; if it fails after changing a row, rolls the whole
/// transaction back (the writer then fails every job that ran in it). See [`SqliteStore::write_checked`].
fn run_checked<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
    let changes_before = conn.total_changes();
    let result = f(conn);
    if result.is_err() && conn.total_changes() != changes_before && !conn.is_autocommit() {
        tracing::error!("a checked write failed after writing; rolling back its whole transaction");
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::other(format!("cannot open sqlite database {}: {e}", path.display())))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    // Every statement the writer runs stays prepared (the default cache of 16 was smaller than its set).
    conn.set_prepared_statement_cache_capacity(256);
    migrate(&conn)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    // A small page cache per reader: each of the up to ten readers would otherwise grow its own 2 MiB copy of
    // the file's pages (already in the kernel's page cache) as the waiters' first reads touch request after
    // request, which the bench counted as about 1 KiB of RSS per parked waiter. The B-trees' interior pages,
    // which every point read walks, stay in it.
    conn.execute_batch(&format!("PRAGMA busy_timeout = 10000; PRAGMA cache_size = -{READER_CACHE_KIB};"))?;
    Ok(conn)
}

/// Applies the migrations newer than `PRAGMA user_version`, each in its own transaction.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;", index + 1))
            .map_err(|e| StoreError::other(format!("migration {} failed: {e}", index + 1)))?;
    }
    Ok(())
}

/// The writer loop: takes every queued job (up to a batch), runs them in one transaction, commits once.
///
/// Some SQLite errors (a full disk, an I/O error, an interrupted statement) roll back the whole transaction, not
/// only the failing statement. The writer notices (the connection is back in autocommit mode), fails every job of
/// the batch that ran in the lost transaction, and goes on with the rest in a new one: nothing is reported as
/// committed that was not, nor as failed that was.
fn run_writer(conn: Connection, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, batch.drain(..));
    }
}

fn run_batch(conn: &Connection, batch: impl Iterator<Item = Job>) {
    let lost = || StoreError::other("sqlite rolled the transaction back; the write was not carried out");
    let mut pending: Vec<Completion> = Vec::new();
    let mut in_transaction = false;
    for job in batch {
        if !in_transaction {
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                let error = StoreError::from(e);
                tracing::error!(%error, "sqlite writer could not begin a transaction");
                // Dropped unrun: its caller is told the write was not carried out.
                drop(job);
                continue;
            }
            in_transaction = true;
        }
        pending.push(job(conn));
        if conn.is_autocommit() {
            for complete in pending.drain(..) {
                complete(Err(lost()));
            }
            in_transaction = false;
        }
    }
    if !in_transaction {
        return;
    }
    let committed = conn.execute_batch("COMMIT").map_err(StoreError::from);
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for complete in pending {
        complete(committed.clone());
    }
}

/// Appends events to the hash chain inside the current transaction.
fn append_events(conn: &Connection, events: Vec<NewEvent>, owner: Option<&str>) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev_hash) = conn
        .prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS_HASH.to_string()));
    let at = now();
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (seq, request_id, kind, actor, data, at, prev_hash, hash, owner_key_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for event in events {
        seq += 1;
        let (event, data) = event.seal_encoded(seq, at, prev_hash, owner.map(String::from));
        insert.execute(params![
            event.seq,
            event.request_id.map(|id| id.to_string()),
            event.kind.as_str(),
            event.actor,
            data,
            event.at.timestamp_micros(),
            event.prev_hash,
            event.hash,
            event.owner_key_id,
        ])?;
        prev_hash = event.hash;
    }
    Ok(())
}

/// Writes a changed request with its events, enqueues its callback if it was just decided or flagged, and the notifications the
/// change causes.
fn save_request(
    conn: &Connection,
    planner: &PlannerSlot,
    before: &Request,
    request: &Request,
    events: Vec<NewEvent>,
) -> Result<(), StoreError> {
    let was = before.status;
    if events.is_empty() && request.status == was {
        return Ok(());
    }
    let columns = ListColumns::of(request);
    conn.prepare_cached(
        "UPDATE requests SET status = ?2, updated_at = ?3, doc = ?4, next_timer_at = ?5, route_group = ?6,
         decided_at = ?7, decided_by = ?8, rule = ?9, sampled = ?10 WHERE id = ?1",
    )?
    .execute(params![
        request.id.to_string(),
        request.status.as_str(),
        request.updated_at.timestamp_micros(),
        encode_json(request),
        request.next_timer_at().map(|at| at.timestamp_micros()),
        request.group,
        columns.decided_at,
        columns.decided_by,
        columns.rule,
        columns.sampled,
    ])?;
    append_events(conn, events, Some(&request.requested_by.key_id))?;
    enqueue_callback(conn, Some(before), request)?;
    enqueue_notifications(conn, planner.plan(Some(before), request), request)
}

/// Writes the notifications `plan` asks for (see [`outbox_rows`]).
fn enqueue_notifications(conn: &Connection, plan: NotificationPlan, request: &Request) -> Result<(), StoreError> {
    if !plan.update_sent && plan.asks.is_empty() && plan.remind.is_none() {
        return Ok(());
    }
    let id = request.id.to_string();
    let written_asks = |query: &str, params: &[&dyn rusqlite::ToSql]| -> Result<Vec<WrittenAsk>, StoreError> {
        let mut asks = conn.prepare_cached(&query.replace("{id}", "?1").replace("{group}", "?2"))?;
        let found =
            asks.query_map(params, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))?;
        Ok(found.collect::<Result<_, _>>()?)
    };
    let to_update = if plan.update_sent { written_asks(ASKS_TO_UPDATE, &[&id])? } else { Vec::new() };
    let to_remind = match &plan.remind {
        Some(remind) => written_asks(ASKS_TO_REMIND, &[&id, &remind.group])?,
        None => Vec::new(),
    };
    let at = now().timestamp_micros();
    let mut insert = conn.prepare_cached(
        "INSERT INTO notifications (id, request_id, owner_key_id, approver_id, channel, address, purpose, group_name,
         updates_id, state, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10, ?10)",
    )?;
    for row in outbox_rows(plan, to_update, to_remind) {
        insert.execute(params![
            new_notification_id(),
            request.id.to_string(),
            request.requested_by.key_id,
            row.approver_id,
            row.channel,
            row.address,
            row.purpose,
            row.group,
            row.updates_id,
            at
        ])?;
    }
    Ok(())
}

type NotificationRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    u32,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

fn row_to_notification(row: &rusqlite::Row<'_>) -> rusqlite::Result<NotificationRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
        row.get(13)?,
        row.get(14)?,
    ))
}

fn notification_from_row(row: NotificationRow) -> Result<Notification, StoreError> {
    let (
        id,
        request_id,
        approver,
        channel,
        address,
        purpose,
        group,
        updates_id,
        state,
        attempts,
        next,
        provider_ref,
        last_error,
        created,
        updated,
    ) = row;
    let corrupt = |what: &str| StoreError::other(format!("corrupt notification {id}: {what}"));
    Ok(Notification {
        request_id: request_id.parse().map_err(|_| corrupt("request id"))?,
        approver_id: person_from_db(approver)?,
        channel: Channel::from_name(&channel).ok_or_else(|| corrupt("channel"))?,
        address,
        purpose: Purpose::parse(&purpose).ok_or_else(|| corrupt("purpose"))?,
        group,
        updates_id,
        state: NotificationState::parse(&state).ok_or_else(|| corrupt("state"))?,
        attempts,
        next_attempt_at: next.map(from_micros),
        provider_ref,
        last_error,
        created_at: from_micros(created),
        updated_at: from_micros(updated),
        id,
    })
}

fn enqueue_callback(conn: &Connection, before: Option<&Request>, request: &Request) -> Result<(), StoreError> {
    let Some(delivery) = callback_for(before, request) else { return Ok(()) };
    let at = now().timestamp_micros();
    conn.prepare_cached(
        "INSERT INTO deliveries (id, request_id, key_id, url, body, state, created_at, next_attempt_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?6)",
    )?
    .execute(params![
        delivery.id,
        request.id.to_string(),
        request.requested_by.key_id,
        delivery.url,
        delivery.body,
        at
    ])?;
    Ok(())
}

fn grant_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
    ))
}

fn load_grant(conn: &Connection, id: &str) -> Result<Grant, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = ?1"))?
        .query_row([id], grant_row)
        .optional()?
        .ok_or(StoreError::NotFound)?;
    grant_from_row(row)
}

fn insert_grant(conn: &Connection, grant: &Grant) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO grants ({GRANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(params![
        grant.id,
        grant.rule,
        grant.key_id,
        Grant::scope_key(&grant.scope),
        grant.approver_id.to_string(),
        grant.channel.as_str(),
        grant.request_id.to_string(),
        grant.created_at.timestamp_micros(),
        grant.expires_at.timestamp_micros(),
        grant.revoked_at.map(|at| at.timestamp_micros()),
        grant.revoked_by,
        grant.uses as i64,
    ])?;
    Ok(())
}

fn load_request(conn: &Connection, id: RequestId) -> Result<Request, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM requests WHERE id = ?1")?
        .query_row([id.to_string()], |row| row.get(0))
        .optional()?;
    decode_request(&doc.ok_or(StoreError::NotFound)?)
}

type EventRow = (i64, Option<String>, String, String, String, i64, String, String, Option<String>);
type KeyRow = (String, String, String, Option<String>, Option<String>, i64, Option<i64>);

/// The columns `row_to_event` reads, in order.
const EVENT_COLUMNS: &str = "seq, request_id, kind, actor, data, at, prev_hash, hash, owner_key_id";

fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

fn event_from_row(
    (seq, request_id, kind, actor, data, at, prev_hash, hash, owner_key_id): EventRow,
) -> Result<Event, StoreError> {
    let corrupt = |what: &str| StoreError::other(format!("corrupt event {seq}: {what}"));
    Ok(Event {
        seq,
        request_id: request_id.map(|id| id.parse()).transpose().map_err(|_| corrupt("request id"))?,
        kind: serde_json::from_value::<EventKind>(serde_json::Value::String(kind)).map_err(|_| corrupt("kind"))?,
        actor,
        data: serde_json::from_str(&data).map_err(|_| corrupt("data"))?,
        owner_key_id,
        at: from_micros(at),
        prev_hash,
        hash,
    })
}

fn key_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn api_key((id, name, role, approver_id, owner_id, created_at, revoked_at): KeyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id,
        name,
        role: role_from_db(&role)?,
        approver_id: person_from_db(approver_id)?,
        owner_id: person_from_db(owner_id)?,
        created_at: from_micros(created_at),
        revoked_at: revoked_at.map(from_micros),
    })
}

const POLICY_COLUMNS: &str = "version, content_hash, source, created_at, created_by";

fn policy_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PolicyVersion> {
    Ok(PolicyVersion {
        version: row.get(0)?,
        content_hash: row.get(1)?,
        source: row.get(2)?,
        created_at: from_micros(row.get(3)?),
        created_by: row.get(4)?,
    })
}

fn current_policy(conn: &Connection) -> Result<Option<PolicyVersion>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY version DESC LIMIT 1"))?
        .query_row([], policy_from_row)
        .optional()?)
}

const KEY_COLUMNS: &str = "id, name, role, approver_id, owner_id, created_at, revoked_at";

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "sqlite", request_id = %record.request.id))]
    async fn create_request(&self, record: NewRequestRecord) -> Result<Created, StoreError> {
        let planner = self.inner.planner.clone();
        // Encoded before the job is queued, off the single writer thread (again only if a grant approves it).
        let mut doc = Some(encode_json(&record.request));
        let created = self.write_checked(move |conn| {
            let mut request = record.request;
            let mut events = record.events;
            if let Some(idem_key) = &record.idempotency_key {
                let existing: Option<(String, String)> = conn
                    .prepare_cached("SELECT doc, idem_hash FROM requests WHERE key_id = ?1 AND idem_key = ?2")?
                    .query_row([&request.requested_by.key_id, idem_key], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                if let Some((doc, hash)) = existing {
                    if hash != record.fingerprint {
                        return Err(StoreError::IdempotencyConflict);
                    }
                    return Ok(Created { request: decode_request(&doc)?, created: false });
                }
            }
            // Checked before the first write (see `write_checked`): the request this one revises must take it.
            let revised = match request.revises {
                Some(earlier) => {
                    let mut revised = load_request(conn, earlier).map_err(|error| match error {
                        StoreError::NotFound => signoff_domain::DomainError::no_request_to_revise(earlier).into(),
                        other => other,
                    })?;
                    let before = revised.clone();
                    let event = revised.accept_revision(&request, request.created_at)?;
                    Some((before, revised, event))
                }
                None => None,
            };
            if let Some(lookup) = record.standing.as_ref().filter(|_| request.status == Status::Pending) {
                let sql = LIVE_GRANT.replace("{key}", "?1").replace("{rule}", "?2").replace("{scope}", "?3");
                let at = now();
                let found = conn
                    .prepare_cached(&sql.replace("{now}", "?4"))?
                    .query_row(
                        params![
                            request.requested_by.key_id,
                            lookup.rule,
                            Grant::scope_key(&lookup.scope),
                            at.timestamp_micros()
                        ],
                        grant_row,
                    )
                    .optional()?;
                if let Some(row) = found {
                    let grant = grant_from_row(row)?;
                    events.extend(request.approve_by_grant(&grant, at));
                    doc = None;
                    conn.prepare_cached("UPDATE grants SET uses = uses + 1 WHERE id = ?1")?.execute([&grant.id])?;
                }
            }
            let columns = ListColumns::of(&request);
            conn.prepare_cached(
                "INSERT INTO requests (id, key_id, action, status, run_id, idem_key, idem_hash, created_at, updated_at, doc,
                 next_timer_at, route_group, decided_at, decided_by, rule, sampled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?
            .execute(params![
                request.id.to_string(),
                request.requested_by.key_id,
                request.action,
                request.status.as_str(),
                request.run_id,
                record.idempotency_key,
                record.fingerprint,
                request.created_at.timestamp_micros(),
                request.updated_at.timestamp_micros(),
                doc.unwrap_or_else(|| encode_json(&request)),
                request.next_timer_at().map(|at| at.timestamp_micros()),
                request.group,
                columns.decided_at,
                columns.decided_by,
                columns.rule,
                columns.sampled,
            ])?;
            append_events(conn, events, Some(&request.requested_by.key_id))?;
            if let Some((before, revised, event)) = revised {
                save_request(conn, &planner, &before, &revised, vec![event])?;
            }
            enqueue_callback(conn, None, &request)?;
            enqueue_notifications(conn, planner.plan(None, &request), &request)?;
            Ok(Created { request, created: true })
        })
        .await?;
        // Announced like any change, so event streams and waiters hear of a new request at once.
        if created.created {
            self.inner.changes.send(Change::Updated(Arc::new(created.request.clone())));
            if let Some(earlier) = created.request.revises {
                self.inner.changes.send(Change::Request(earlier));
            }
        }
        Ok(created)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "sqlite", request_id = %id))]
    async fn request(&self, id: RequestId) -> Result<Request, StoreError> {
        self.read(move |conn| load_request(conn, id)).await
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "sqlite"))]
    async fn list_requests(&self, filter: RequestFilter) -> Result<Vec<Request>, StoreError> {
        self.read(move |conn| {
            let mut sql = String::from("SELECT doc FROM requests WHERE 1 = 1");
            let mut values: Vec<String> = Vec::new();
            let mut condition = |column: &str, value: Option<String>| {
                if let Some(value) = value {
                    values.push(value);
                    sql.push_str(&format!(" AND {column} ?{}", values.len()));
                }
            };
            condition("status =", filter.status.map(|s| s.as_str().to_string()));
            condition("action =", filter.action);
            condition("run_id =", filter.run_id);
            condition("key_id =", filter.requested_by);
            condition("route_group =", filter.group);
            condition("id <", filter.before.map(|id| id.to_string()));
            if let Some(since) = filter.created_since {
                // The id bound lets the primary key stop the scan where the period begins.
                let floor = RequestId::floor_before(since);
                sql.push_str(&format!(" AND created_at >= {} AND id >= '{floor}'", since.timestamp_micros()));
            }
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", filter.limit));
            let mut statement = conn.prepare_cached(&sql)?;
            let docs = statement.query_map(params_from_iter(values.iter()), |row| row.get::<_, String>(0))?;
            docs.map(|doc| decode_request(&doc?)).collect()
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "sqlite"))]
    async fn find_requests(&self, query: RequestQuery) -> Result<Vec<Request>, StoreError> {
        self.read(move |conn| {
            let mut sql = String::from("SELECT doc FROM requests WHERE 1 = 1");
            let mut values: Vec<String> = Vec::new();
            let mut bind = |value: String| {
                values.push(value);
                format!("?{}", values.len())
            };
            if !query.statuses.is_empty() {
                let marks: Vec<String> = query.statuses.iter().map(|s| bind(s.as_str().to_string())).collect();
                sql.push_str(&format!(" AND status IN ({})", marks.join(", ")));
            }
            if let Some(groups) = query.groups {
                let marks: Vec<String> = groups.into_iter().map(&mut bind).collect();
                sql.push_str(&format!(" AND route_group IN ({})", marks.join(", ")));
            }
            if let Some(person) = query.decided_by {
                sql.push_str(&format!(" AND decided_by = {}", bind(person)));
            }
            if let Some(rule) = query.rule {
                sql.push_str(&format!(" AND rule = {}", bind(rule)));
            }
            if let Some(sampled) = query.sampled {
                sql.push_str(&format!(" AND sampled = {}", i32::from(sampled)));
            }
            if let Some(from) = query.decided_from {
                sql.push_str(&format!(" AND decided_at >= {}", from.timestamp_micros()));
            }
            if let Some(before) = query.decided_before {
                sql.push_str(&format!(" AND decided_at < {}", before.timestamp_micros()));
            }
            sql.push_str(&format!(
                " ORDER BY decided_at DESC NULLS LAST, id DESC LIMIT {} OFFSET {}",
                query.limit, query.offset
            ));
            let mut statement = conn.prepare(&sql)?;
            let docs = statement.query_map(params_from_iter(values.iter()), |row| row.get::<_, String>(0))?;
            docs.map(|doc| decode_request(&doc?)).collect()
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "sqlite", request_id = %id))]
    async fn update_request_granting(
        &self,
        id: RequestId,
        update: RequestUpdate,
        issue: Option<GrantIssue>,
    ) -> Result<(Request, Option<Grant>), StoreError> {
        let planner = self.inner.planner.clone();
        let (request, changed, refusal, grant) = self
            .write_checked(move |conn| {
                let mut request = load_request(conn, id)?;
                let before = request.clone();
                let (events, refusal, grant) = update_and_grant(&mut request, &before, update, issue, now());
                let changed = !events.is_empty();
                if let Some(grant) = &grant {
                    insert_grant(conn, grant)?;
                }
                save_request(conn, &planner, &before, &request, events)?;
                Ok((request, changed, refusal, grant))
            })
            .await?;
        if changed {
            self.inner.changes.send(Change::Updated(Arc::new(request.clone())));
        }
        match refusal {
            Some(refusal) => Err(StoreError::Domain(refusal)),
            None => Ok((request, grant)),
        }
    }

    async fn grant(&self, id: &str) -> Result<Grant, StoreError> {
        let id = id.to_string();
        self.read(move |conn| load_grant(conn, &id)).await
    }

    async fn grants(&self, all: bool, at: DateTime<Utc>) -> Result<Vec<Grant>, StoreError> {
        self.read(move |conn| {
            let live = if all { "" } else { "WHERE revoked_at IS NULL AND expires_at > ?1" };
            let sql = format!("SELECT {GRANT_COLUMNS} FROM grants {live} ORDER BY created_at DESC, id DESC LIMIT 1000");
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = if all {
                statement.query_map([], grant_row)?.collect::<Result<Vec<_>, _>>()?
            } else {
                statement.query_map([at.timestamp_micros()], grant_row)?.collect::<Result<Vec<_>, _>>()?
            };
            rows.into_iter().map(grant_from_row).collect()
        })
        .await
    }

    async fn revoke_grant(&self, id: &str, actor: &str) -> Result<Grant, StoreError> {
        let (id, actor) = (id.to_string(), actor.to_string());
        let grant = self
            .write(move |conn| {
                let mut grant = load_grant(conn, &id)?;
                if let Some(event) = grant.revoke(&actor, now()) {
                    conn.prepare_cached("UPDATE grants SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1")?.execute(
                        params![grant.id, grant.revoked_at.map(|at| at.timestamp_micros()), grant.revoked_by],
                    )?;
                    let owner = load_request(conn, grant.request_id)?.requested_by.key_id;
                    append_events(conn, vec![event], Some(&owner))?;
                }
                Ok(grant)
            })
            .await?;
        self.inner.changes.send(Change::Request(grant.request_id));
        Ok(grant)
    }

    async fn request_events(&self, id: RequestId) -> Result<Vec<Event>, StoreError> {
        self.read(move |conn| {
            let mut statement =
                conn.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE request_id = ?1 ORDER BY seq"))?;
            let rows = statement.query_map([id.to_string()], row_to_event)?;
            rows.map(|row| event_from_row(row?)).collect()
        })
        .await
    }

    async fn create_key(&self, key: NewKey, actor: &str) -> Result<CreatedKeySecret, StoreError> {
        keys::validate(&key)?;
        let actor = actor.to_string();
        self.write(move |conn| {
            let generated = keys::generate(key.role);
            let created_at = now();
            conn.prepare_cached(
                "INSERT INTO api_keys (id, name, role, approver_id, owner_id, secret_hash, webhook_secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                generated.id,
                key.name,
                key.role.as_str(),
                key.approver_id.as_ref().map(|id| id.as_str()),
                key.owner_id.as_ref().map(|id| id.as_str()),
                generated.secret_hash,
                generated.webhook_secret,
                created_at.timestamp_micros()
            ])?;
            let api_key = ApiKey {
                id: generated.id,
                name: key.name,
                role: key.role,
                approver_id: key.approver_id,
                owner_id: key.owner_id,
                created_at,
                revoked_at: None,
            };
            append_events(conn, vec![keys::created_event(&api_key, &actor)], None)?;
            Ok(CreatedKeySecret { key: api_key, secret: generated.secret, webhook_secret: generated.webhook_secret })
        })
        .await
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at"))?;
            let rows = statement.query_map([], key_from_row)?;
            rows.map(|row| api_key(row?)).collect()
        })
        .await
    }

    async fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash_key_secret(secret);
        self.read_inline(move |conn| {
            conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?1"))?
                .query_row([hash], key_from_row)
                .optional()?
                .map(api_key)
                .transpose()
        })
    }

    async fn revoke_key(&self, id: &str, actor: &str) -> Result<ApiKey, StoreError> {
        let (id, actor) = (id.to_string(), actor.to_string());
        self.write(move |conn| {
            let row = conn
                .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))?
                .query_row([&id], key_from_row)
                .optional()?
                .ok_or(StoreError::NotFound)?;
            let mut key = api_key(row)?;
            if key.revoked_at.is_none() {
                let at = now();
                conn.execute("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1", params![id, at.timestamp_micros()])?;
                key.revoked_at = Some(at);
                append_events(conn, vec![keys::revoked_event(&key, &actor)], None)?;
            }
            Ok(key)
        })
        .await
    }

    async fn apply_policy(&self, source: &str, content_hash: &str, actor: &str) -> Result<AppliedPolicy, StoreError> {
        let (source, content_hash, actor) = (source.to_string(), content_hash.to_string(), actor.to_string());
        self.write(move |conn| {
            if let Some(current) = current_policy(conn)?
                && current.content_hash == content_hash
            {
                return Ok(AppliedPolicy { policy: current, created: false });
            }
            let version: i64 =
                conn.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM policies", [], |row| row.get(0))?;
            let policy = PolicyVersion { version, content_hash, source, created_at: now(), created_by: actor };
            conn.execute(
                "INSERT INTO policies (version, content_hash, source, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![policy.version, policy.content_hash, policy.source, policy.created_at.timestamp_micros(), policy.created_by],
            )?;
            append_events(conn, vec![policy_applied_event(&policy)], None)?;
            Ok(AppliedPolicy { policy, created: true })
        })
        .await
    }

    async fn current_policy(&self) -> Result<Option<PolicyVersion>, StoreError> {
        self.read(current_policy).await
    }

    async fn current_policy_version(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COALESCE(MAX(version), 0) FROM policies")?
                .query_row([], |row| row.get(0))?)
        })
        .await
    }

    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached(&format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY version DESC"))?;
            let rows = statement.query_map([], policy_from_row)?;
            rows.map(|row| row.map_err(StoreError::from)).collect()
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "sqlite"))]
    async fn fire_due_timers(&self, at: DateTime<Utc>, limit: u32) -> Result<Vec<Request>, StoreError> {
        // Most ticks find nothing due: look on a reader before taking a turn of the single writer.
        if !self.any_due("SELECT 1 FROM requests WHERE next_timer_at <= ?1 LIMIT 1", at).await? {
            return Ok(Vec::new());
        }
        let planner = self.inner.planner.clone();
        let changed = self
            .write_checked(move |conn| {
                let docs: Vec<String> = conn
                    .prepare_cached(
                        "SELECT doc FROM requests WHERE next_timer_at <= ?1 ORDER BY next_timer_at LIMIT ?2",
                    )?
                    .query_map(params![at.timestamp_micros(), limit], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut changed = Vec::with_capacity(docs.len());
                for doc in docs {
                    let mut request = decode_request(&doc)?;
                    let before = request.clone();
                    let events = request.fire_timers(at);
                    save_request(conn, &planner, &before, &request, events)?;
                    changed.push(request);
                }
                Ok(changed)
            })
            .await?;
        for request in &changed {
            self.inner.changes.send(Change::Updated(Arc::new(request.clone())));
        }
        Ok(changed)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "sqlite"))]
    async fn claim_deliveries(
        &self,
        at: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        if !self
            .any_due("SELECT 1 FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?1 LIMIT 1", at)
            .await?
        {
            return Ok(Vec::new());
        }
        let lease_until = lease_until(at, lease);
        self.write(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT d.id, d.request_id, d.url, d.body, COALESCE(k.webhook_secret, ''), d.attempts, d.first_attempt_at
                     FROM deliveries d LEFT JOIN api_keys k ON k.id = d.key_id
                     WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 ORDER BY d.next_attempt_at LIMIT ?2",
                )?;
            let rows = statement
                .query_map(params![at.timestamp_micros(), limit], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, u32>(5)?,
                        row.get::<_, Option<i64>>(6)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut claimed = Vec::with_capacity(rows.len());
            for (id, request_id, url, body, secret, attempts, first_attempt_at) in rows {
                let lease = new_lease_token();
                conn.prepare_cached("UPDATE deliveries SET next_attempt_at = ?2, lease_token = ?3 WHERE id = ?1")?
                    .execute(params![id, lease_until, lease])?;
                let request_id =
                    request_id.parse().map_err(|_| StoreError::other(format!("corrupt delivery {id}")))?;
                claimed.push(Delivery {
                    id,
                    lease,
                    request_id,
                    url,
                    body,
                    secret,
                    attempts,
                    first_attempt_at: first_attempt_at.map(from_micros),
                });
            }
            Ok(claimed)
        })
        .await
    }

    async fn record_delivery_attempt(&self, delivery: &Delivery, result: DeliveryAttempt) -> Result<bool, StoreError> {
        let delivery = delivery.clone();
        self.write(move |conn| {
            let attempt = delivery.attempts + 1;
            // Only the claim that holds the lease records: a worker whose lease ran out (and was re-claimed) does not.
            let owner: Option<String> = conn
                .prepare_cached(
                    "UPDATE deliveries SET state = ?2, attempts = ?3, first_attempt_at = COALESCE(first_attempt_at, ?4),
                     next_attempt_at = ?5, last_status = ?6, last_error = ?7, updated_at = ?4, lease_token = NULL
                     WHERE id = ?1 AND lease_token = ?8 RETURNING key_id",
                )?
                .query_row(
                    params![
                        delivery.id,
                        result.state.as_str(),
                        attempt,
                        result.at.timestamp_micros(),
                        result.next_attempt_at.map(|at| at.timestamp_micros()),
                        result.status,
                        result.error,
                        delivery.lease,
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(owner) = owner else { return Ok(false) };
            let event = attempt_event(&delivery.id, delivery.request_id, attempt, &result);
            append_events(conn, vec![event], Some(&owner))?;
            Ok(true)
        })
        .await
    }

    async fn deliveries(&self, request_id: RequestId) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, url, state, attempts, created_at, next_attempt_at, last_status, last_error
                     FROM deliveries WHERE request_id = ?1 ORDER BY created_at",
            )?;
            let rows = statement
                .query_map([request_id.to_string()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, u32>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        row.get::<_, Option<u16>>(6)?,
                        row.get::<_, Option<String>>(7)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(webhook_id, url, state, attempts, created_at, next_attempt_at, last_status, last_error)| {
                    let state = crate::parse_delivery_state(&state)?;
                    Ok(DeliveryRecord {
                        webhook_id,
                        url,
                        state,
                        attempts,
                        created_at: from_micros(created_at),
                        next_attempt_at: next_attempt_at.filter(|_| state == DeliveryState::Pending).map(from_micros),
                        last_status,
                        last_error,
                    })
                })
                .collect()
        })
        .await
    }

    async fn events_after(&self, after_seq: i64, limit: u32, owner: Option<&str>) -> Result<Vec<Event>, StoreError> {
        let owner = owner.map(String::from);
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    &format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1 AND (?3 IS NULL OR owner_key_id = ?3) ORDER BY seq LIMIT ?2"),
                )?;
            let rows = statement.query_map(params![after_seq, limit, owner], row_to_event)?;
            rows.map(|row| event_from_row(row?)).collect()
        })
        .await
    }

    async fn chain_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?)
        })
        .await
    }

    async fn save_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError> {
        let checkpoint = checkpoint.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO checkpoints (seq, head_hash, at, key_id, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (seq, key_id) DO NOTHING",
            )?
            .execute(params![
                checkpoint.seq,
                checkpoint.head_hash,
                checkpoint.at.timestamp_micros(),
                checkpoint.key_id,
                checkpoint.public_key,
                checkpoint.signature
            ])?;
            Ok(())
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT seq, head_hash, at, key_id, public_key, signature FROM checkpoints ORDER BY seq, key_id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(SignedCheckpoint {
                    seq: row.get(0)?,
                    head_hash: row.get(1)?,
                    at: from_micros(row.get(2)?),
                    key_id: row.get(3)?,
                    public_key: row.get(4)?,
                    signature: row.get(5)?,
                })
            })?;
            rows.map(|row| row.map_err(StoreError::from)).collect()
        })
        .await
    }

    fn set_notification_planner(&self, planner: Arc<dyn NotificationPlanner>) {
        self.inner.planner.set(planner);
    }

    async fn claim_notifications(
        &self,
        at: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedNotification>, StoreError> {
        if !self
            .any_due("SELECT 1 FROM notifications WHERE state = 'pending' AND next_attempt_at <= ?1 LIMIT 1", at)
            .await?
        {
            return Ok(Vec::new());
        }
        let lease_until = lease_until(at, lease);
        self.write(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {NOTIFICATION_COLUMNS_OF_N}, a.state, a.provider_ref, n.digest_of FROM notifications n
                 LEFT JOIN notifications a ON a.id = n.updates_id
                 WHERE n.state = 'pending' AND n.next_attempt_at <= ?1 ORDER BY n.next_attempt_at LIMIT ?2"
            ))?;
            let rows = statement
                .query_map(params![at.timestamp_micros(), limit], |row| {
                    Ok((
                        row_to_notification(row)?,
                        row.get::<_, Option<String>>(15)?,
                        row.get::<_, Option<String>>(16)?,
                        row.get::<_, Option<String>>(17)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut claimed = Vec::with_capacity(rows.len());
            for (row, ask_state, ask_ref, digest_of) in rows {
                let notification = notification_from_row(row)?;
                let lease = new_lease_token();
                conn.prepare_cached("UPDATE notifications SET next_attempt_at = ?2, lease_token = ?3 WHERE id = ?1")?
                    .execute(params![notification.id, lease_until, lease])?;
                let ask = ask_state
                    .map(|state| {
                        NotificationState::parse(&state).ok_or_else(|| StoreError::other("corrupt notification state"))
                    })
                    .transpose()?
                    .map(|state| (state, ask_ref));
                let digest_of = crate::digest_of_from_db(digest_of)?;
                claimed.push(ClaimedNotification { notification, lease, ask, digest_of });
            }
            Ok(claimed)
        })
        .await
    }

    async fn record_notification_attempt(
        &self,
        claimed: &ClaimedNotification,
        attempt: NotificationAttempt,
    ) -> Result<bool, StoreError> {
        let claimed = claimed.clone();
        self.write(move |conn| {
            let counted = attempt.outcome.is_attempt();
            let provider_ref = match &attempt.outcome {
                NotificationOutcome::Sent { provider_ref } => provider_ref.clone(),
                _ => None,
            };
            let owner: Option<String> = conn
                .prepare_cached(
                    "UPDATE notifications SET state = ?2, attempts = attempts + ?3, next_attempt_at = ?4,
                     provider_ref = COALESCE(?5, provider_ref), last_error = COALESCE(?6, last_error), updated_at = ?7,
                     lease_token = NULL
                     WHERE id = ?1 AND lease_token = ?8 RETURNING owner_key_id",
                )?
                .query_row(
                    params![
                        claimed.notification.id,
                        attempt.outcome.state().as_str(),
                        u32::from(counted),
                        attempt.outcome.next_attempt_at().map(|at| at.timestamp_micros()),
                        provider_ref,
                        attempt.outcome.error(),
                        attempt.at.timestamp_micros(),
                        claimed.lease,
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(owner) = owner else { return Ok(false) };
            if counted {
                append_events(conn, vec![notification_event(&claimed, &attempt)], Some(&owner))?;
            }
            Ok(true)
        })
        .await
    }

    async fn digest_due_at(&self, group: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let group = group.to_string();
        self.read(move |conn| {
            let next: Option<i64> = conn
                .prepare_cached("SELECT next_at FROM digest_schedules WHERE group_name = ?1")?
                .query_row([group], |row| row.get(0))
                .optional()?;
            Ok(next.map(crate::from_micros))
        })
        .await
    }

    async fn schedule_digest(&self, group: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let group = group.to_string();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO digest_schedules (group_name, next_at) VALUES (?1, ?2) ON CONFLICT (group_name) DO NOTHING",
            )?
            .execute(params![group, at.timestamp_micros()])?;
            Ok(())
        })
        .await
    }

    async fn claim_digest(
        &self,
        group: &str,
        due: DateTime<Utc>,
        next: DateTime<Utc>,
        digests: Vec<NewDigest>,
    ) -> Result<bool, StoreError> {
        let group = group.to_string();
        self.write(move |conn| {
            let moved = conn
                .prepare_cached(
                    "UPDATE digest_schedules SET next_at = ?3, last_sent_at = ?2 WHERE group_name = ?1 AND next_at = ?2",
                )?
                .execute(params![group, due.timestamp_micros(), next.timestamp_micros()])?;
            if moved != 1 {
                return Ok(false);
            }
            let at = now().timestamp_micros();
            for digest in digests {
                let Some(first) = digest.requests.first() else { continue };
                let list = encode_json(&digest.requests);
                conn.prepare_cached(
                    "INSERT INTO notifications (id, request_id, owner_key_id, approver_id, channel, address, purpose,
                     group_name, state, next_attempt_at, created_at, updated_at, digest_of)
                     SELECT ?1, id, key_id, ?3, ?4, ?5, 'digest', ?6, 'pending', ?7, ?7, ?7, ?8 FROM requests
                     WHERE id = ?2",
                )?
                .execute(params![
                    new_notification_id(),
                    first.to_string(),
                    digest.ask.approver_id.map(|id| id.to_string()),
                    digest.ask.channel.as_str(),
                    digest.ask.address,
                    digest.ask.group,
                    at,
                    list
                ])?;
            }
            Ok(true)
        })
        .await
    }

    async fn add_asks(&self, request_id: RequestId, asks: Vec<NewAsk>) -> Result<u32, StoreError> {
        self.write(move |conn| {
            let owner: Option<String> = conn
                .prepare_cached("SELECT key_id FROM requests WHERE id = ?1 AND status = 'pending'")?
                .query_row([request_id.to_string()], |row| row.get(0))
                .optional()?;
            let Some(owner) = owner else { return Ok(0) };
            let same = SAME_ASK
                .replace("{id}", "?1")
                .replace("{group}", "?2")
                .replace("{channel}", "?3")
                .replace("{address}", "?4");
            let at = now().timestamp_micros();
            let mut written = 0;
            for ask in asks {
                let id = request_id.to_string();
                let exists =
                    conn.prepare_cached(&same)?.exists(params![id, ask.group, ask.channel.as_str(), ask.address])?;
                if exists {
                    continue;
                }
                conn.prepare_cached(
                    "INSERT INTO notifications (id, request_id, owner_key_id, approver_id, channel, address, purpose,
                     group_name, state, next_attempt_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'ask', ?7, 'pending', ?8, ?8, ?8)",
                )?
                .execute(params![
                    new_notification_id(),
                    id,
                    owner,
                    ask.approver_id.map(|id| id.to_string()),
                    ask.channel.as_str(),
                    ask.address,
                    ask.group,
                    at
                ])?;
                written += 1;
            }
            Ok(written)
        })
        .await
    }

    async fn notifications(&self, request_id: RequestId) -> Result<Vec<Notification>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE request_id = ?1 ORDER BY created_at, id"
            ))?;
            let rows = statement.query_map([request_id.to_string()], row_to_notification)?;
            rows.map(|row| notification_from_row(row?)).collect()
        })
        .await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COUNT(*) FROM requests WHERE status = 'pending'")?
                .query_row([], |row| row.get(0))?)
        })
        .await
    }

    async fn use_link(&self, nonce: &str, used_for: &str) -> Result<bool, StoreError> {
        let (nonce, used_for) = (nonce.to_string(), used_for.to_string());
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO used_links (nonce, request_id, used_at) VALUES (?1, ?2, ?3) ON CONFLICT (nonce) DO NOTHING",
                )?
                .execute(params![nonce, used_for, crate::now().timestamp_micros()])?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn link_used(&self, nonce: &str) -> Result<bool, StoreError> {
        let nonce = nonce.to_string();
        self.read(move |conn| {
            let mut statement = conn.prepare_cached("SELECT 1 FROM used_links WHERE nonce = ?1")?;
            Ok(statement.exists(params![nonce])?)
        })
        .await
    }

    async fn reply_code(&self, person: &ApproverId, request_id: RequestId) -> Result<ReplyCode, StoreError> {
        let (person, request_id) = (person.as_str().to_string(), request_id.to_string());
        self.write(move |conn| {
            let existing = conn
                .prepare_cached("SELECT code, link_id FROM reply_codes WHERE person = ?1 AND request_id = ?2")?
                .query_row(params![person, request_id], |row| Ok(ReplyCode { code: row.get(0)?, link_id: row.get(1)? }))
                .optional()?;
            if let Some(existing) = existing {
                return Ok(existing);
            }
            conn.prepare_cached(
                "DELETE FROM reply_codes WHERE person = ?1 AND NOT EXISTS \
                 (SELECT 1 FROM requests r WHERE r.id = reply_codes.request_id AND r.status = 'pending')",
            )?
            .execute(params![person])?;
            let taken = conn
                .prepare_cached("SELECT code FROM reply_codes WHERE person = ?1")?
                .query_map(params![person], |row| row.get::<_, String>(0))?
                .collect::<Result<std::collections::HashSet<_>, _>>()?;
            let reply = ReplyCode { code: new_reply_code(&taken), link_id: new_link_id() };
            conn.prepare_cached(
                "INSERT INTO reply_codes (person, code, request_id, link_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                person,
                reply.code,
                request_id,
                reply.link_id,
                crate::now().timestamp_micros()
            ])?;
            Ok(reply)
        })
        .await
    }

    async fn reply_code_request(&self, person: &ApproverId, code: &str) -> Result<Option<RequestId>, StoreError> {
        let (person, code) = (person.as_str().to_string(), code.to_string());
        self.read(move |conn| {
            let row = conn
                .prepare_cached("SELECT person, request_id FROM reply_codes WHERE person = ?1 AND code = ?2")?
                .query_row(params![person, code], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            row.map(|(person, request_id)| reply_row(person, request_id).map(|(_, id)| id)).transpose()
        })
        .await
    }

    async fn reply_link(&self, link_id: &str) -> Result<Option<(ApproverId, RequestId)>, StoreError> {
        let link_id = link_id.to_string();
        self.read(move |conn| {
            let row = conn
                .prepare_cached("SELECT person, request_id FROM reply_codes WHERE link_id = ?1")?
                .query_row(params![link_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            row.map(|(person, request_id)| reply_row(person, request_id)).transpose()
        })
        .await
    }

    async fn create_session(&self, session: &DashboardSession) -> Result<(), StoreError> {
        let session = session.clone();
        self.write(move |conn| {
            let created_at = session.created_at.timestamp_micros();
            conn.prepare_cached("DELETE FROM dashboard_sessions WHERE expires_at <= ?1")?
                .execute(params![created_at])?;
            conn.prepare_cached(
                "INSERT INTO dashboard_sessions (token_hash, person, key_id, csrf_token, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                session.token_hash,
                session.person.as_str(),
                session.key_id,
                session.csrf_token,
                created_at,
                session.expires_at.timestamp_micros()
            ])?;
            Ok(())
        })
        .await
    }

    async fn live_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<DashboardSession>, StoreError> {
        let token_hash = token_hash.to_string();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&crate::live_session_query("?1", "?2"))?
                .query_row(params![token_hash, now.timestamp_micros()], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
                })
                .optional()?;
            row.map(crate::session_from_row).transpose()
        })
        .await
    }

    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let token_hash = token_hash.to_string();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM dashboard_sessions WHERE token_hash = ?1")?
                .execute(params![token_hash])?;
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    fn listen(&self, listener: ChangeListener) {
        self.inner.changes.listen(listener);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc as std_mpsc;

    /// A job that runs `sql` and reports (by its index) whether it was acknowledged as committed.
    fn job(index: usize, sql: &'static str, answers: std_mpsc::Sender<(usize, bool)>) -> Job {
        Box::new(move |conn| {
            let ran = conn.execute_batch(sql).map_err(StoreError::from);
            Box::new(move |committed: Result<(), StoreError>| {
                let _ = answers.send((index, committed.and(ran).is_ok()));
            })
        })
    }

    #[test]
    fn a_transaction_rolled_back_mid_batch_fails_exactly_the_jobs_it_lost() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("t.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let (answers, answered) = std_mpsc::channel();
        // Job 1 is written, then job 2's error takes the whole transaction with it (as SQLITE_FULL or an I/O error
        // may); job 3 runs in a new transaction.
        let batch = vec![
            job(1, "INSERT INTO t VALUES (1)", answers.clone()),
            job(2, "ROLLBACK; SELECT * FROM no_such_table", answers.clone()),
            job(3, "INSERT INTO t VALUES (3)", answers),
        ];
        run_batch(&conn, batch.into_iter());
        let mut results: Vec<_> = answered.try_iter().collect();
        results.sort();
        assert_eq!(results, [(1, false), (2, false), (3, true)]);
        let rows: Vec<i64> =
            conn.prepare("SELECT n FROM t").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows, [3], "nothing acknowledged is missing, nothing refused is there");
    }

    /// A job without a savepoint that runs `sqls` in turn, the last of which may fail.
    fn checked_job(index: usize, sqls: &'static [&'static str], answers: std_mpsc::Sender<(usize, bool)>) -> Job {
        Box::new(move |conn| {
            let ran = run_checked(conn, |conn| {
                sqls.iter().try_for_each(|sql| conn.execute_batch(sql).map_err(StoreError::from))
            });
            Box::new(move |committed: Result<(), StoreError>| {
                let _ = answers.send((index, committed.and(ran).is_ok()));
            })
        })
    }

    #[test]
    fn a_checked_write_that_fails_after_writing_takes_its_transaction_with_it_and_one_that_fails_before_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("t.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let (answers, answered) = std_mpsc::channel();
        // Refused before writing anything: nothing to undo, the batch goes on.
        let refused_before = vec![
            job(1, "INSERT INTO t VALUES (1)", answers.clone()),
            checked_job(2, &["SELECT * FROM no_such_table"], answers.clone()),
            job(3, "INSERT INTO t VALUES (3)", answers.clone()),
        ];
        run_batch(&conn, refused_before.into_iter());
        // Refused after a write, with no savepoint to undo only itself: the whole transaction goes.
        let refused_after = vec![
            job(4, "INSERT INTO t VALUES (4)", answers.clone()),
            checked_job(5, &["INSERT INTO t VALUES (5)", "SELECT * FROM no_such_table"], answers.clone()),
            checked_job(6, &["INSERT INTO t VALUES (6)"], answers),
        ];
        run_batch(&conn, refused_after.into_iter());
        let mut results: Vec<_> = answered.try_iter().collect();
        results.sort();
        assert_eq!(results, [(1, true), (2, false), (3, true), (4, false), (5, false), (6, true)]);
        let rows: Vec<i64> = conn
            .prepare("SELECT n FROM t ORDER BY n")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows, [1, 3, 6], "no half-written job, and nothing reported committed that was not");
    }
}
