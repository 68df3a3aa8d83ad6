//! The PostgreSQL backend, for several replicas on one database. A write transaction's events are appended to the one
//! hash chain by its last statement, `signoff_append_events` (migration 0013): it takes the chain lock, a
//! transaction-scoped advisory lock held to commit, so appends are serialised across replicas and `seq` order is
//! commit order; everything before it (row locks, the request, outbox and notification rows, the events' canonical
//! bytes) runs without it. It is the last lock any writer takes. Creates and updates, the hot path, go through one writer task per replica that commits every queued one in
//! one transaction (group commit; each in a savepoint of its own), locking the requests a batch changes in id order
//! first, so two replicas' batches cannot deadlock. Changes are announced with NOTIFY so every replica wakes its own
//! waiters.

use crate::DashboardSession;
use crate::keys::{self, CreatedKeySecret, NewKey};
use crate::{
    ASKS_TO_REMIND, ASKS_TO_UPDATE, AppliedPolicy, Change, ChangeFeed, ChangeListener, ClaimedNotification, Created,
    Delivery, DeliveryAttempt, DeliveryRecord, DeliveryState, GRANT_COLUMNS, GrantIssue, GrantRow, LIVE_GRANT,
    ListColumns, NOTIFICATION_COLUMNS, NOTIFICATION_COLUMNS_OF_N, NewDigest, NewRequestRecord, NotificationAttempt,
    NotificationOutcome, NotificationPlanner, PlannerSlot, ReplyCode, RequestFilter, RequestQuery, RequestUpdate,
    SAME_ASK, Store, StoreError, WrittenAsk, attempt_event, callback_for, decode_request, encode_json, from_micros,
    grant_from_row, lease_until, new_link_id, new_notification_id, new_reply_code, notification_event, now,
    outbox_rows, person_from_db, policy_applied_event, reply_row, role_from_db, update_and_grant,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use signoff_domain::checkpoint::SignedCheckpoint;
use signoff_domain::{
    ApiKey, ApproverId, DomainError, Event, EventKind, Grant, NewEvent, PolicyVersion, Request, RequestId, Status,
    canonical_before_seq, hash_key_secret,
};
use signoff_domain::{Channel, NewAsk, Notification, NotificationPlan, NotificationState, Purpose};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Row};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// The NOTIFY channel that carries ids of changed requests.
const CHANGES_CHANNEL: &str = "signoff_changes";
/// The first key of the two-key advisory lock that serialises assigning one person's SMS reply codes.
const REPLY_CODE_LOCK: i32 = 0x5167_0FF1;
/// The advisory lock that serialises applying policy versions across replicas.
const POLICY_LOCK: i64 = 0x5167_0FF2;

/// What a transaction sends in its last statements ([`commit`]): the events it appends, each with the key it is
/// about, and the ids of the requests it changed, announced with NOTIFY once it commits.
#[derive(Default)]
struct Pending {
    events: Vec<(NewEvent, Option<String>)>,
    notices: Vec<String>,
}

impl Pending {
    fn new() -> Self {
        Pending::default()
    }

    fn len(&self) -> (usize, usize) {
        (self.events.len(), self.notices.len())
    }

    fn truncate(&mut self, (events, notices): (usize, usize)) {
        self.events.truncate(events);
        self.notices.truncate(notices);
    }
}

/// PostgreSQL storage. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    changes: Arc<ChangeFeed>,
    jobs: mpsc::Sender<Job>,
    planner: PlannerSlot,
}

/// A create or update waiting for the writer's next transaction.
enum Job {
    Create(Box<NewRequestRecord>, oneshot::Sender<Result<Created, StoreError>>),
    Update(RequestId, RequestUpdate, Option<GrantIssue>, oneshot::Sender<Result<(Request, Option<Grant>), StoreError>>),
}

/// How many queued writes one transaction takes at most.
const MAX_BATCH: usize = 256;

/// Answers a job once its transaction has committed (or failed).
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

fn writer_stopped() -> StoreError {
    StoreError::other("the postgres writer has stopped")
}

impl PostgresStore {
    /// Connects, applies migrations and starts listening for changes from every replica.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| StoreError::other(format!("cannot connect to postgres: {e}")))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::other(format!("postgres migration failed: {e}")))?;
        let changes = Arc::new(ChangeFeed::new(16_384));
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        tokio::spawn(forward_notifications(listener, changes.clone()));
        let (jobs, queue) = mpsc::channel(16 * MAX_BATCH);
        let planner = PlannerSlot::default();
        tokio::spawn(run_writer(pool.clone(), queue, planner.clone()));
        Ok(PostgresStore { pool, changes, jobs, planner })
    }
}

/// Forwards NOTIFY payloads into the local broadcast; after a reconnect, says notices may have been missed.
async fn forward_notifications(mut listener: PgListener, changes: Arc<ChangeFeed>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Ok(id) = notification.payload().parse() {
                    changes.send(Change::Request(id));
                }
            }
            Ok(None) => {
                changes.send(Change::Unknown);
            }
            Err(error) => {
                tracing::warn!(%error, "postgres listener failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                changes.send(Change::Unknown);
            }
        }
    }
}

/// Appends `pending` to the chain as the transaction's last statement, then commits. Every other lock the
/// transaction needs is held before: the chain lock is the last any writer takes, and its holder only inserts events
/// and commits, so no writer waits for one that waits for it.
async fn commit(mut tx: sqlx::Transaction<'static, sqlx::Postgres>, pending: Pending) -> Result<(), StoreError> {
    if !pending.notices.is_empty() {
        sqlx::query("SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id")
            .bind(CHANGES_CHANNEL)
            .bind(&pending.notices)
            .execute(&mut *tx)
            .await?;
    }
    let pending = pending.events;
    if !pending.is_empty() {
        let at = now();
        let canonical: Vec<String> = pending
            .iter()
            .map(|(event, owner)| {
                canonical_before_seq(event.request_id, event.kind, &event.actor, &event.data, owner.as_deref(), at)
            })
            .collect();
        sqlx::query("SELECT signoff_append_events($1, $2, $3, $4, $5, $6, $7)")
            .bind(pending.iter().map(|(e, _)| e.request_id.map(|id| id.to_string())).collect::<Vec<_>>())
            .bind(pending.iter().map(|(e, _)| e.kind.as_str()).collect::<Vec<_>>())
            .bind(pending.iter().map(|(e, _)| e.actor.as_str()).collect::<Vec<_>>())
            .bind(pending.iter().map(|(e, _)| e.data.to_string()).collect::<Vec<_>>())
            .bind(vec![at.timestamp_micros(); pending.len()])
            .bind(pending.iter().map(|(_, owner)| owner.as_deref()).collect::<Vec<_>>())
            .bind(canonical)
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx.commit().await?)
}

/// The writer: takes every queued create and update (up to a batch), runs them in one transaction, commits once.
async fn run_writer(pool: PgPool, mut queue: mpsc::Receiver<Job>, planner: PlannerSlot) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (mut plain, mut others) = (Vec::new(), Vec::new());
        for job in batch.drain(..) {
            match job {
                Job::Create(record, reply) if is_plain_create(&record) => plain.push((record, reply)),
                other => others.push(other),
            }
        }
        run_batch(&pool, &planner, plain, others).await;
    }
}

/// Runs one batch: the plain creates by one multi-row insert (see [`insert_plain`]), then every other job in a
/// savepoint of its own, then commits. Should a statement of the plain creates fail, their writes are not kept: the
/// transaction is rolled back and the whole batch runs again with a savepoint per job, so only the job at fault fails.
async fn run_batch(pool: &PgPool, planner: &PlannerSlot, plain: Vec<PlainCreate>, others: Vec<Job>) {
    let (mut tx, mut preloaded) = match begin_batch(pool, batch_locks(&others)).await {
        Ok(begun) => begun,
        Err(error) => {
            for job in as_jobs(plain).chain(others) {
                job.fail(error.clone());
            }
            return;
        }
    };
    let mut pending = Pending::new();
    let mut completions: Vec<Completion> = Vec::with_capacity(plain.len() + others.len());
    if !plain.is_empty() {
        match insert_plain(&mut tx, planner, &plain).await {
            Ok(found) => completions.extend(answer_plain(plain, found, &mut pending)),
            Err(error) => {
                tracing::debug!(%error, "a batch's multi-row create failed; running each job in a savepoint");
                drop(tx);
                return run_savepointed(pool, planner, as_jobs(plain).chain(others).collect()).await;
            }
        }
    }
    let broken = run_jobs(&mut tx, planner, &mut preloaded, &mut pending, others, &mut completions).await;
    finish(tx, pending, broken, completions).await;
}

/// Runs a batch with a savepoint per job (the path every job took before the multi-row create).
async fn run_savepointed(pool: &PgPool, planner: &PlannerSlot, jobs: Vec<Job>) {
    let (mut tx, mut preloaded) = match begin_batch(pool, batch_locks(&jobs)).await {
        Ok(begun) => begun,
        Err(error) => {
            for job in jobs {
                job.fail(error.clone());
            }
            return;
        }
    };
    let mut pending = Pending::new();
    let mut completions: Vec<Completion> = Vec::with_capacity(jobs.len());
    let broken = run_jobs(&mut tx, planner, &mut preloaded, &mut pending, jobs, &mut completions).await;
    finish(tx, pending, broken, completions).await;
}

/// Commits (unless the transaction broke) and answers every job.
async fn finish(
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pending: Pending,
    broken: Option<StoreError>,
    completions: Vec<Completion>,
) {
    let committed = match broken {
        Some(error) => Err(error),
        None => commit(tx, pending).await,
    };
    for complete in completions {
        complete(committed.clone());
    }
}

/// Runs `jobs` one after another; returns the error that broke the transaction, if one did (every job after it
/// fails with it, and nothing commits). A create runs in a savepoint of its own, so a refusal after it wrote undoes
/// only itself. An update runs without one: it reads its request before its first write and can refuse only there
/// (a refusal of the change itself is answered beside the request, whose due timers' effect still commits), so a
/// failure after it wrote is the database's, which breaks the transaction.
async fn run_jobs(
    tx: &mut PgConnection,
    planner: &PlannerSlot,
    preloaded: &mut Preloaded,
    pending: &mut Pending,
    jobs: Vec<Job>,
    completions: &mut Vec<Completion>,
) -> Option<StoreError> {
    let mut broken = None;
    let mut opening = "SAVEPOINT job";
    for job in jobs {
        if let Some(error) = &broken {
            job.fail(StoreError::clone(error));
            continue;
        }
        let savepoint = matches!(job, Job::Create(..));
        if savepoint {
            if let Err(error) = simple_query(tx, opening).await.map_err(StoreError::from) {
                job.fail(error.clone());
                broken = Some(error);
                continue;
            }
            // Released with the next savepoint's opening (or by the commit).
            opening = "RELEASE SAVEPOINT job; SAVEPOINT job";
        }
        let appended = pending.len();
        let (completion, outcome) = job.run(tx, planner, preloaded, pending).await;
        if let Outcome::Failed(error) = &outcome {
            pending.truncate(appended);
            if savepoint {
                if let Err(error) = sqlx::query("ROLLBACK TO SAVEPOINT job").execute(&mut *tx).await {
                    broken = Some(error.into());
                }
            } else if !matches!(error, StoreError::NotFound) {
                broken = Some(error.clone());
            }
        }
        completions.push(completion);
    }
    broken
}

/// How a job ended, before its transaction did.
enum Outcome {
    Done,
    /// Refused or failed, with this error (what its caller is answered unless the transaction fails).
    Failed(StoreError),
}

impl Outcome {
    fn of<T>(result: &Result<T, StoreError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Done,
            Err(error) => Outcome::Failed(error.clone()),
        }
    }
}

/// Inserts the requests of a batch's plain creates (see [`Job::is_plain_create`]) in one statement, then writes the
/// callbacks and notifications of those it inserted. Returns, for each create in order, `None` if it was inserted,
/// or the answer of the idempotent retry (its original, or the conflict) that inserted nothing. Only reads `jobs`,
/// so that should a statement fail, the caller can run them again.
async fn insert_plain(
    conn: &mut PgConnection,
    planner: &PlannerSlot,
    jobs: &[PlainCreate],
) -> Result<Vec<Option<Result<Created, StoreError>>>, StoreError> {
    let records: Vec<&NewRequestRecord> = jobs.iter().map(|(record, _)| &**record).collect();
    let n = records.len();
    let (mut ids, mut keys, mut actions, mut statuses, mut runs, mut idem_keys, mut idem_hashes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut created, mut updated, mut docs, mut timers, mut groups) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut decided_at, mut decided_by, mut rules, mut sampled) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for record in &records {
        let request = &record.request;
        let columns = ListColumns::of(request);
        ids.push(request.id.to_string());
        keys.push(request.requested_by.key_id.as_str());
        actions.push(request.action.as_str());
        statuses.push(request.status.as_str());
        runs.push(request.run_id.as_deref());
        idem_keys.push(record.idempotency_key.as_deref());
        idem_hashes.push(record.fingerprint.as_str());
        created.push(request.created_at.timestamp_micros());
        updated.push(request.updated_at.timestamp_micros());
        docs.push(encode_json(request));
        timers.push(request.next_timer_at().map(|at| at.timestamp_micros()));
        groups.push(request.group.as_deref());
        decided_at.push(columns.decided_at);
        decided_by.push(columns.decided_by);
        rules.push(columns.rule);
        sampled.push(columns.sampled);
    }
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO requests (id, key_id, action, status, run_id, idem_key, idem_hash, created_at, updated_at, doc,
         next_timer_at, route_group, decided_at, decided_by, rule, sampled)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::int8[], $9::int8[], $10::text[], $11::int8[], $12::text[], $13::int8[], $14::text[],
                              $15::text[], $16::bool[])
         ON CONFLICT (key_id, idem_key) WHERE idem_key IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(&ids)
    .bind(keys)
    .bind(actions)
    .bind(statuses)
    .bind(runs)
    .bind(idem_keys)
    .bind(idem_hashes)
    .bind(created)
    .bind(updated)
    .bind(docs)
    .bind(timers)
    .bind(groups)
    .bind(decided_at)
    .bind(decided_by)
    .bind(rules)
    .bind(sampled)
    .fetch_all(&mut *conn)
    .await?;
    let all_inserted = inserted.len() == n;
    let inserted: std::collections::HashSet<String> =
        if all_inserted { Default::default() } else { inserted.into_iter().collect() };
    let mut found = Vec::with_capacity(n);
    for (record, id) in records.iter().zip(&ids) {
        if all_inserted || inserted.contains(id) {
            enqueue_callback(conn, None, &record.request).await?;
            enqueue_notifications(conn, planner.plan(None, &record.request), &record.request).await?;
            found.push(None);
        } else {
            let key_id = &record.request.requested_by.key_id;
            let original = idempotent_original(conn, key_id, record.idempotency_key.as_deref(), &record.fingerprint);
            found.push(Some(original.await));
        }
    }
    Ok(found)
}

/// Answers the plain creates once their transaction ends, queuing the events and notices of those inserted.
fn answer_plain(
    jobs: Vec<PlainCreate>,
    found: Vec<Option<Result<Created, StoreError>>>,
    pending: &mut Pending,
) -> impl Iterator<Item = Completion> {
    let mut completions: Vec<Completion> = Vec::with_capacity(jobs.len());
    for ((record, reply), found) in jobs.into_iter().zip(found) {
        let result = match found {
            Some(answer) => answer,
            None => {
                let NewRequestRecord { request, events, .. } = *record;
                append_events(pending, events, Some(&request.requested_by.key_id));
                notify(pending, request.id);
                Ok(Created { request, created: true })
            }
        };
        completions.push(Box::new(move |committed: Result<(), StoreError>| drop(reply.send(committed.and(result)))));
    }
    completions.into_iter()
}

/// The original of an idempotent retry whose insert found its key taken (perhaps by a concurrent create that has
/// now committed, or by an earlier create of the same statement), or the conflict if it asked for something else.
async fn idempotent_original(
    conn: &mut PgConnection,
    key_id: &str,
    idempotency_key: Option<&str>,
    fingerprint: &str,
) -> Result<Created, StoreError> {
    let row = sqlx::query("SELECT doc, idem_hash FROM requests WHERE key_id = $1 AND idem_key = $2")
        .bind(key_id)
        .bind(idempotency_key)
        .fetch_one(&mut *conn)
        .await?;
    let hash: Option<String> = row.get("idem_hash");
    if hash.as_deref() != Some(fingerprint) {
        return Err(StoreError::IdempotencyConflict);
    }
    Ok(Created { request: decode_request(row.get("doc"))?, created: false })
}

/// Runs statements without parameters in one round trip (a query without arguments goes by the simple protocol).
async fn simple_query(conn: &mut PgConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(conn, sql).await.map(drop)
}

/// Begins a batch's transaction and locks every request its updates (and revisions) change, in id order, so two
/// replicas' batches never hold one request each while waiting for the other's; the same statement reads their
/// documents, so a job need not read its request again.
async fn begin_batch(
    pool: &PgPool,
    ids: Vec<String>,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Preloaded), StoreError> {
    let mut tx = pool.begin().await?;
    let mut preloaded = Preloaded::default();
    if !ids.is_empty() {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, doc FROM requests WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
        preloaded.docs = rows.into_iter().collect();
    }
    Ok((tx, preloaded))
}

/// The documents of the requests a batch locked as it began, as they were then. A job takes its request's once:
/// the next job on the same request reads it again, seeing what the first wrote (or, if its savepoint was rolled
/// back, what was there before).
#[derive(Default)]
struct Preloaded {
    docs: std::collections::HashMap<String, String>,
}

impl Preloaded {
    /// The locked request `id`: its preloaded document if no job took it yet, else read (and locked) again.
    async fn take(&mut self, conn: &mut PgConnection, id: RequestId) -> Result<Request, StoreError> {
        match self.docs.remove(&id.to_string()) {
            Some(doc) => decode_request(&doc),
            None => load_request(conn, id, true).await,
        }
    }
}

/// The requests a batch changes, sorted and without repeats.
fn batch_locks(batch: &[Job]) -> Vec<String> {
    let mut ids: Vec<String> = batch
        .iter()
        .filter_map(|job| match job {
            Job::Create(record, _) => record.request.revises.map(|id| id.to_string()),
            Job::Update(id, ..) => Some(id.to_string()),
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A create that neither revises a request nor looks for a standing approval: all it writes is its request row (and
/// its callback and notifications, if any), so a batch's plain creates share one insert ([`insert_plain`]).
fn is_plain_create(record: &NewRequestRecord) -> bool {
    record.request.revises.is_none() && (record.standing.is_none() || record.request.status != Status::Pending)
}

/// A plain create taken from the queue, with where to answer it.
type PlainCreate = (Box<NewRequestRecord>, oneshot::Sender<Result<Created, StoreError>>);

fn as_jobs(plain: Vec<PlainCreate>) -> impl Iterator<Item = Job> {
    plain.into_iter().map(|(record, reply)| Job::Create(record, reply))
}

impl Job {
    fn fail(self, error: StoreError) {
        match self {
            Job::Create(_, reply) => drop(reply.send(Err(error))),
            Job::Update(_, _, _, reply) => drop(reply.send(Err(error))),
        }
    }

    /// Runs the job (see [`run_jobs`]); returns how to answer once the transaction ends, and how the job ended.
    async fn run(
        self,
        conn: &mut PgConnection,
        planner: &PlannerSlot,
        preloaded: &mut Preloaded,
        pending: &mut Pending,
    ) -> (Completion, Outcome) {
        match self {
            Job::Create(record, reply) => {
                let result = insert_request(conn, planner, preloaded, pending, *record).await;
                let ok = Outcome::of(&result);
                (Box::new(move |committed| drop(reply.send(committed.and(result)))), ok)
            }
            Job::Update(id, update, issue, reply) => {
                let result = apply_update(conn, planner, preloaded, pending, id, update, issue).await;
                let ok = Outcome::of(&result);
                let answer = result.and_then(|(request, refusal, grant)| match refusal {
                    Some(refusal) => Err(StoreError::Domain(refusal)),
                    None => Ok((request, grant)),
                });
                (Box::new(move |committed| drop(reply.send(committed.and(answer)))), ok)
            }
        }
    }
}

/// Inserts a request with its events, or finds the original of an idempotent retry.
async fn insert_request(
    conn: &mut PgConnection,
    planner: &PlannerSlot,
    preloaded: &mut Preloaded,
    pending: &mut Pending,
    record: NewRequestRecord,
) -> Result<Created, StoreError> {
    let mut request = record.request;
    let mut events = record.events;
    // Locked, as a revocation locks it: a revocation that committed before is seen (the lock re-reads the row), and
    // one that did not commits after this create.
    let mut used_grant = None;
    if let Some(lookup) = record.standing.as_ref().filter(|_| request.status == Status::Pending) {
        let sql = LIVE_GRANT.replace("{key}", "$1").replace("{rule}", "$2").replace("{scope}", "$3") + " FOR UPDATE";
        let at = now();
        let found: Option<GrantRow> = sqlx::query_as(&sql.replace("{now}", "$4"))
            .bind(&request.requested_by.key_id)
            .bind(&lookup.rule)
            .bind(Grant::scope_key(&lookup.scope))
            .bind(at.timestamp_micros())
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = found {
            let grant = grant_from_row(row)?;
            events.extend(request.approve_by_grant(&grant, at));
            used_grant = Some(grant.id);
        }
    }
    let columns = ListColumns::of(&request);
    let inserted = sqlx::query(
        "INSERT INTO requests (id, key_id, action, status, run_id, idem_key, idem_hash, created_at, updated_at, doc,
         next_timer_at, route_group, decided_at, decided_by, rule, sampled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (key_id, idem_key) WHERE idem_key IS NOT NULL DO NOTHING",
    )
    .bind(request.id.to_string())
    .bind(&request.requested_by.key_id)
    .bind(&request.action)
    .bind(request.status.as_str())
    .bind(&request.run_id)
    .bind(&record.idempotency_key)
    .bind(&record.fingerprint)
    .bind(request.created_at.timestamp_micros())
    .bind(request.updated_at.timestamp_micros())
    .bind(encode_json(&request))
    .bind(request.next_timer_at().map(|at| at.timestamp_micros()))
    .bind(&request.group)
    .bind(columns.decided_at)
    .bind(&columns.decided_by)
    .bind(&columns.rule)
    .bind(columns.sampled)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        // The idempotency key was taken, perhaps by a concurrent create that has now committed.
        let key_id = &request.requested_by.key_id;
        return idempotent_original(conn, key_id, record.idempotency_key.as_deref(), &record.fingerprint).await;
    }
    if let Some(grant_id) = used_grant {
        sqlx::query("UPDATE grants SET uses = uses + 1 WHERE id = $1").bind(grant_id).execute(&mut *conn).await?;
    }
    append_events(pending, events, Some(&request.requested_by.key_id));
    if let Some(earlier) = request.revises {
        let mut revised = preloaded.take(conn, earlier).await.map_err(|error| match error {
            StoreError::NotFound => DomainError::no_request_to_revise(earlier).into(),
            other => other,
        })?;
        let before = revised.clone();
        let event = revised.accept_revision(&request, request.created_at)?;
        save_request(conn, planner, pending, &before, &revised, vec![event]).await?;
    }
    enqueue_callback(conn, None, &request).await?;
    enqueue_notifications(conn, planner.plan(None, &request), &request).await?;
    notify(pending, request.id);
    Ok(Created { request, created: true })
}

/// Applies a domain change to a locked request (after its due timers) and writes it with its events. A refusal is
/// returned beside the request, so the timers' effect still commits.
async fn apply_update(
    conn: &mut PgConnection,
    planner: &PlannerSlot,
    preloaded: &mut Preloaded,
    pending: &mut Pending,
    id: RequestId,
    update: RequestUpdate,
    issue: Option<GrantIssue>,
) -> Result<(Request, Option<DomainError>, Option<Grant>), StoreError> {
    let mut request = preloaded.take(conn, id).await?;
    let before = request.clone();
    let (events, refusal, grant) = update_and_grant(&mut request, &before, update, issue, now());
    if let Some(grant) = &grant {
        insert_grant(conn, grant).await?;
    }
    save_request(conn, planner, pending, &before, &request, events).await?;
    Ok((request, refusal, grant))
}

async fn insert_grant(conn: &mut PgConnection, grant: &Grant) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&grant.id)
    .bind(&grant.rule)
    .bind(&grant.key_id)
    .bind(Grant::scope_key(&grant.scope))
    .bind(grant.approver_id.to_string())
    .bind(grant.channel.as_str())
    .bind(grant.request_id.to_string())
    .bind(grant.created_at.timestamp_micros())
    .bind(grant.expires_at.timestamp_micros())
    .bind(grant.revoked_at.map(|at| at.timestamp_micros()))
    .bind(&grant.revoked_by)
    .bind(grant.uses as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn load_grant(conn: &mut PgConnection, id: &str, for_update: bool) -> Result<Grant, StoreError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<GrantRow> = sqlx::query_as(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1{lock}"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    grant_from_row(row.ok_or(StoreError::NotFound)?)
}

/// Queues events for the transaction's last statement (see [`commit`]).
fn append_events(pending: &mut Pending, events: Vec<NewEvent>, owner: Option<&str>) {
    pending.events.extend(events.into_iter().map(|event| (event, owner.map(String::from))));
}

/// Writes a changed request with its events, enqueues its callback if it was just decided or flagged, and announces it.
async fn save_request(
    conn: &mut PgConnection,
    planner: &PlannerSlot,
    pending: &mut Pending,
    before: &Request,
    request: &Request,
    events: Vec<NewEvent>,
) -> Result<(), StoreError> {
    let was = before.status;
    if events.is_empty() && request.status == was {
        return Ok(());
    }
    let columns = ListColumns::of(request);
    sqlx::query(
        "UPDATE requests SET status = $2, updated_at = $3, doc = $4, next_timer_at = $5, route_group = $6,
         decided_at = $7, decided_by = $8, rule = $9, sampled = $10 WHERE id = $1",
    )
    .bind(request.id.to_string())
    .bind(request.status.as_str())
    .bind(request.updated_at.timestamp_micros())
    .bind(encode_json(request))
    .bind(request.next_timer_at().map(|at| at.timestamp_micros()))
    .bind(&request.group)
    .bind(columns.decided_at)
    .bind(&columns.decided_by)
    .bind(&columns.rule)
    .bind(columns.sampled)
    .execute(&mut *conn)
    .await?;
    append_events(pending, events, Some(&request.requested_by.key_id));
    enqueue_callback(conn, Some(before), request).await?;
    enqueue_notifications(conn, planner.plan(Some(before), request), request).await?;
    notify(pending, request.id);
    Ok(())
}

/// Writes the notifications `plan` asks for (see [`outbox_rows`]).
async fn enqueue_notifications(
    conn: &mut PgConnection,
    plan: NotificationPlan,
    request: &Request,
) -> Result<(), StoreError> {
    if !plan.update_sent && plan.asks.is_empty() && plan.remind.is_none() {
        return Ok(());
    }
    let mut to_update: Vec<WrittenAsk> = Vec::new();
    if plan.update_sent {
        to_update = sqlx::query_as(&ASKS_TO_UPDATE.replace("{id}", "$1"))
            .bind(request.id.to_string())
            .fetch_all(&mut *conn)
            .await?;
    }
    let mut to_remind: Vec<WrittenAsk> = Vec::new();
    if let Some(remind) = &plan.remind {
        to_remind = sqlx::query_as(&ASKS_TO_REMIND.replace("{id}", "$1").replace("{group}", "$2"))
            .bind(request.id.to_string())
            .bind(&remind.group)
            .fetch_all(&mut *conn)
            .await?;
    }
    let at = now().timestamp_micros();
    for row in outbox_rows(plan, to_update, to_remind) {
        sqlx::query(
            "INSERT INTO notifications (id, request_id, owner_key_id, approver_id, channel, address, purpose, group_name,
             updates_id, state, next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $10, $10)",
        )
        .bind(new_notification_id())
        .bind(request.id.to_string())
        .bind(&request.requested_by.key_id)
        .bind(row.approver_id)
        .bind(row.channel)
        .bind(row.address)
        .bind(row.purpose)
        .bind(row.group)
        .bind(row.updates_id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn notification_from_row(row: &sqlx::postgres::PgRow) -> Result<Notification, StoreError> {
    let id: String = row.get("id");
    let corrupt = |what: &str| StoreError::other(format!("corrupt notification {id}: {what}"));
    let request_id: String = row.get("request_id");
    let channel: String = row.get("channel");
    let purpose: String = row.get("purpose");
    let state: String = row.get("state");
    Ok(Notification {
        request_id: request_id.parse().map_err(|_| corrupt("request id"))?,
        approver_id: person_from_db(row.get("approver_id"))?,
        channel: Channel::from_name(&channel).ok_or_else(|| corrupt("channel"))?,
        address: row.get("address"),
        purpose: Purpose::parse(&purpose).ok_or_else(|| corrupt("purpose"))?,
        group: row.get("group_name"),
        updates_id: row.get("updates_id"),
        state: NotificationState::parse(&state).ok_or_else(|| corrupt("state"))?,
        attempts: row.get::<i64, _>("attempts") as u32,
        next_attempt_at: row.get::<Option<i64>, _>("next_attempt_at").map(from_micros),
        provider_ref: row.get("provider_ref"),
        last_error: row.get("last_error"),
        created_at: from_micros(row.get("created_at")),
        updated_at: from_micros(row.get("updated_at")),
        id,
    })
}

async fn enqueue_callback(
    conn: &mut PgConnection,
    before: Option<&Request>,
    request: &Request,
) -> Result<(), StoreError> {
    let Some(delivery) = callback_for(before, request) else { return Ok(()) };
    sqlx::query(
        "INSERT INTO deliveries (id, request_id, key_id, url, body, state, created_at, next_attempt_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $6)",
    )
    .bind(&delivery.id)
    .bind(request.id.to_string())
    .bind(&request.requested_by.key_id)
    .bind(&delivery.url)
    .bind(&delivery.body)
    .bind(now().timestamp_micros())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Tells every replica (this one too) that a request changed, once the transaction commits (see [`commit`]).
fn notify(pending: &mut Pending, id: RequestId) {
    pending.notices.push(id.to_string());
}

async fn load_request(conn: &mut PgConnection, id: RequestId, for_update: bool) -> Result<Request, StoreError> {
    let sql = if for_update {
        "SELECT doc FROM requests WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT doc FROM requests WHERE id = $1"
    };
    let doc: Option<String> = sqlx::query_scalar(sql).bind(id.to_string()).fetch_optional(&mut *conn).await?;
    decode_request(&doc.ok_or(StoreError::NotFound)?)
}

fn event_from_row(row: &sqlx::postgres::PgRow) -> Result<Event, StoreError> {
    let seq: i64 = row.get("seq");
    let corrupt = |what: &str| StoreError::other(format!("corrupt event {seq}: {what}"));
    let request_id: Option<String> = row.get("request_id");
    let kind: String = row.get("kind");
    let data: String = row.get("data");
    Ok(Event {
        seq,
        request_id: request_id.map(|id| id.parse()).transpose().map_err(|_| corrupt("request id"))?,
        kind: serde_json::from_value::<EventKind>(serde_json::Value::String(kind)).map_err(|_| corrupt("kind"))?,
        actor: row.get("actor"),
        data: serde_json::from_str(&data).map_err(|_| corrupt("data"))?,
        owner_key_id: row.get("owner_key_id"),
        at: from_micros(row.get("at")),
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
    })
}

fn key_from_row(row: &sqlx::postgres::PgRow) -> Result<ApiKey, StoreError> {
    let role: String = row.get("role");
    Ok(ApiKey {
        id: row.get("id"),
        name: row.get("name"),
        role: role_from_db(&role)?,
        approver_id: person_from_db(row.get("approver_id"))?,
        owner_id: person_from_db(row.get("owner_id"))?,
        created_at: from_micros(row.get("created_at")),
        revoked_at: row.get::<Option<i64>, _>("revoked_at").map(from_micros),
    })
}

const POLICY_COLUMNS: &str = "version, content_hash, source, created_at, created_by";

fn policy_from_row(row: &sqlx::postgres::PgRow) -> PolicyVersion {
    PolicyVersion {
        version: row.get("version"),
        content_hash: row.get("content_hash"),
        source: row.get("source"),
        created_at: from_micros(row.get("created_at")),
        created_by: row.get("created_by"),
    }
}

const KEY_COLUMNS: &str = "id, name, role, approver_id, owner_id, created_at, revoked_at";
/// The columns `event_from_row` reads.
const EVENT_COLUMNS: &str = "seq, request_id, kind, actor, data, at, prev_hash, hash, owner_key_id";

#[async_trait]
impl Store for PostgresStore {
    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "postgres", request_id = %record.request.id))]
    async fn create_request(&self, record: NewRequestRecord) -> Result<Created, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Create(Box::new(record), reply)).await.map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "postgres", request_id = %id))]
    async fn request(&self, id: RequestId) -> Result<Request, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_request(&mut conn, id, false).await
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "postgres"))]
    async fn list_requests(&self, filter: RequestFilter) -> Result<Vec<Request>, StoreError> {
        let mut query = sqlx::QueryBuilder::new("SELECT doc FROM requests WHERE TRUE");
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(action) = filter.action {
            query.push(" AND action = ").push_bind(action);
        }
        if let Some(run_id) = filter.run_id {
            query.push(" AND run_id = ").push_bind(run_id);
        }
        if let Some(key_id) = filter.requested_by {
            query.push(" AND key_id = ").push_bind(key_id);
        }
        if let Some(group) = filter.group {
            query.push(" AND route_group = ").push_bind(group);
        }
        if let Some(before) = filter.before {
            query.push(" AND id < ").push_bind(before.to_string());
        }
        if let Some(since) = filter.created_since {
            query.push(" AND created_at >= ").push_bind(since.timestamp_micros());
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(filter.limit));
        let docs: Vec<String> = query.build_query_scalar().fetch_all(&self.pool).await?;
        docs.iter().map(|doc| decode_request(doc)).collect()
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "postgres"))]
    async fn find_requests(&self, query: RequestQuery) -> Result<Vec<Request>, StoreError> {
        let mut sql = sqlx::QueryBuilder::new("SELECT doc FROM requests WHERE TRUE");
        if !query.statuses.is_empty() {
            let statuses: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
            sql.push(" AND status = ANY(").push_bind(statuses).push(")");
        }
        if let Some(groups) = query.groups {
            sql.push(" AND route_group = ANY(").push_bind(groups).push(")");
        }
        if let Some(person) = query.decided_by {
            sql.push(" AND decided_by = ").push_bind(person);
        }
        if let Some(rule) = query.rule {
            sql.push(" AND rule = ").push_bind(rule);
        }
        if let Some(sampled) = query.sampled {
            sql.push(" AND sampled = ").push_bind(sampled);
        }
        if let Some(from) = query.decided_from {
            sql.push(" AND decided_at >= ").push_bind(from.timestamp_micros());
        }
        if let Some(before) = query.decided_before {
            sql.push(" AND decided_at < ").push_bind(before.timestamp_micros());
        }
        sql.push(" ORDER BY decided_at DESC NULLS LAST, id DESC LIMIT ").push_bind(i64::from(query.limit));
        sql.push(" OFFSET ").push_bind(i64::from(query.offset));
        let docs: Vec<String> = sql.build_query_scalar().fetch_all(&self.pool).await?;
        docs.iter().map(|doc| decode_request(doc)).collect()
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "postgres", request_id = %id))]
    async fn update_request_granting(
        &self,
        id: RequestId,
        update: RequestUpdate,
        issue: Option<GrantIssue>,
    ) -> Result<(Request, Option<Grant>), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Update(id, update, issue, reply)).await.map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }

    async fn grant(&self, id: &str) -> Result<Grant, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_grant(&mut conn, id, false).await
    }

    async fn grants(&self, all: bool, at: DateTime<Utc>) -> Result<Vec<Grant>, StoreError> {
        let live = if all { "" } else { "WHERE revoked_at IS NULL AND expires_at > $1" };
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants {live} ORDER BY created_at DESC, id DESC LIMIT 1000");
        let mut query = sqlx::query_as::<_, GrantRow>(&sql);
        if !all {
            query = query.bind(at.timestamp_micros());
        }
        query.fetch_all(&self.pool).await?.into_iter().map(grant_from_row).collect()
    }

    async fn revoke_grant(&self, id: &str, actor: &str) -> Result<Grant, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut pending = Pending::new();
        let mut grant = load_grant(&mut tx, id, true).await?;
        if let Some(event) = grant.revoke(actor, now()) {
            sqlx::query("UPDATE grants SET revoked_at = $2, revoked_by = $3 WHERE id = $1")
                .bind(&grant.id)
                .bind(grant.revoked_at.map(|at| at.timestamp_micros()))
                .bind(&grant.revoked_by)
                .execute(&mut *tx)
                .await?;
            let owner = load_request(&mut tx, grant.request_id, false).await?.requested_by.key_id;
            append_events(&mut pending, vec![event], Some(&owner));
            notify(&mut pending, grant.request_id);
        }
        commit(tx, pending).await?;
        Ok(grant)
    }

    async fn request_events(&self, id: RequestId) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE request_id = $1 ORDER BY seq"))
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn create_key(&self, key: NewKey, actor: &str) -> Result<CreatedKeySecret, StoreError> {
        keys::validate(&key)?;
        let generated = keys::generate(key.role);
        let created_at = now();
        let mut tx = self.pool.begin().await?;
        let mut pending = Pending::new();
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, approver_id, owner_id, secret_hash, webhook_secret, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&generated.id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(key.approver_id.as_ref().map(|id| id.as_str()))
        .bind(key.owner_id.as_ref().map(|id| id.as_str()))
        .bind(&generated.secret_hash)
        .bind(&generated.webhook_secret)
        .bind(created_at.timestamp_micros())
        .execute(&mut *tx)
        .await?;
        let api_key = ApiKey {
            id: generated.id,
            name: key.name,
            role: key.role,
            approver_id: key.approver_id,
            owner_id: key.owner_id,
            created_at,
            revoked_at: None,
        };
        append_events(&mut pending, vec![keys::created_event(&api_key, actor)], None);
        commit(tx, pending).await?;
        Ok(CreatedKeySecret { key: api_key, secret: generated.secret, webhook_secret: generated.webhook_secret })
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1"))
            .bind(hash_key_secret(secret))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn revoke_key(&self, id: &str, actor: &str) -> Result<ApiKey, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut pending = Pending::new();
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut key = key_from_row(&row)?;
        if key.revoked_at.is_none() {
            let at = now();
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
                .bind(id)
                .bind(at.timestamp_micros())
                .execute(&mut *tx)
                .await?;
            key.revoked_at = Some(at);
            append_events(&mut pending, vec![keys::revoked_event(&key, actor)], None);
        }
        commit(tx, pending).await?;
        Ok(key)
    }

    async fn apply_policy(&self, source: &str, content_hash: &str, actor: &str) -> Result<AppliedPolicy, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut pending = Pending::new();
        // One version at a time across replicas.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(POLICY_LOCK).execute(&mut *tx).await?;
        let current = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY version DESC LIMIT 1"))
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| policy_from_row(&row));
        if let Some(current) = current
            && current.content_hash == content_hash
        {
            return Ok(AppliedPolicy { policy: current, created: false });
        }
        let version: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM policies").fetch_one(&mut *tx).await?;
        let policy = PolicyVersion {
            version,
            content_hash: content_hash.to_string(),
            source: source.to_string(),
            created_at: now(),
            created_by: actor.to_string(),
        };
        sqlx::query(
            "INSERT INTO policies (version, content_hash, source, created_at, created_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(policy.version)
        .bind(&policy.content_hash)
        .bind(&policy.source)
        .bind(policy.created_at.timestamp_micros())
        .bind(&policy.created_by)
        .execute(&mut *tx)
        .await?;
        append_events(&mut pending, vec![policy_applied_event(&policy)], None);
        commit(tx, pending).await?;
        Ok(AppliedPolicy { policy, created: true })
    }

    async fn current_policy(&self) -> Result<Option<PolicyVersion>, StoreError> {
        let row = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY version DESC LIMIT 1"))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(policy_from_row))
    }

    async fn current_policy_version(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM policies").fetch_one(&self.pool).await?)
    }

    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY version DESC"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(policy_from_row).collect())
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "postgres"))]
    async fn fire_due_timers(&self, at: DateTime<Utc>, limit: u32) -> Result<Vec<Request>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut pending = Pending::new();
        // SKIP LOCKED: replicas firing at once take disjoint rows; the row lock also orders a timer against a
        // concurrent decision, and the domain ignores a timer on a decided request.
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM requests WHERE next_timer_at <= $1 ORDER BY next_timer_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(at.timestamp_micros())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut changed = Vec::with_capacity(docs.len());
        for doc in docs {
            let mut request = decode_request(&doc)?;
            let before = request.clone();
            let events = request.fire_timers(at);
            save_request(&mut tx, &self.planner, &mut pending, &before, &request, events).await?;
            changed.push(request);
        }
        commit(tx, pending).await?;
        Ok(changed)
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(backend = "postgres"))]
    async fn claim_deliveries(
        &self,
        at: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let lease_until = lease_until(at, lease);
        let rows = sqlx::query(
            "UPDATE deliveries d SET next_attempt_at = $3, lease_token = md5(random()::text || d.id)
             FROM (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1
                   ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
             WHERE d.id = due.id
             RETURNING d.id, d.lease_token, d.request_id, d.url, d.body, d.attempts, d.first_attempt_at,
                       (SELECT COALESCE(k.webhook_secret, '') FROM api_keys k WHERE k.id = d.key_id) AS secret",
        )
        .bind(at.timestamp_micros())
        .bind(i64::from(limit))
        .bind(lease_until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.get("id");
                let request_id: String = row.get("request_id");
                let attempts: i64 = row.get("attempts");
                Ok(Delivery {
                    request_id: request_id.parse().map_err(|_| StoreError::other(format!("corrupt delivery {id}")))?,
                    id,
                    lease: row.get("lease_token"),
                    url: row.get("url"),
                    body: row.get("body"),
                    secret: row.get::<Option<String>, _>("secret").unwrap_or_default(),
                    attempts: attempts as u32,
                    first_attempt_at: row.get::<Option<i64>, _>("first_attempt_at").map(from_micros),
                })
            })
            .collect()
    }

    async fn record_delivery_attempt(&self, delivery: &Delivery, result: DeliveryAttempt) -> Result<bool, StoreError> {
        let attempt = delivery.attempts + 1;
        let mut tx = self.pool.begin().await?;
        let mut pending = Pending::new();
        let owner: Option<String> = sqlx::query_scalar(
            "UPDATE deliveries SET state = $2, attempts = $3, first_attempt_at = COALESCE(first_attempt_at, $4),
             next_attempt_at = $5, last_status = $6, last_error = $7, updated_at = $4, lease_token = NULL
             WHERE id = $1 AND lease_token = $8 RETURNING key_id",
        )
        .bind(&delivery.id)
        .bind(result.state.as_str())
        .bind(i64::from(attempt))
        .bind(result.at.timestamp_micros())
        .bind(result.next_attempt_at.map(|at| at.timestamp_micros()))
        .bind(result.status.map(i64::from))
        .bind(&result.error)
        .bind(&delivery.lease)
        .fetch_optional(&mut *tx)
        .await?;
        // Only the claim that holds the lease records: a worker whose lease ran out (and was re-claimed) does not.
        let Some(owner) = owner else { return Ok(false) };
        let event = attempt_event(&delivery.id, delivery.request_id, attempt, &result);
        append_events(&mut pending, vec![event], Some(&owner));
        commit(tx, pending).await?;
        Ok(true)
    }

    async fn deliveries(&self, request_id: RequestId) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, url, state, attempts, created_at, next_attempt_at, last_status, last_error
             FROM deliveries WHERE request_id = $1 ORDER BY created_at",
        )
        .bind(request_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let state = crate::parse_delivery_state(row.get("state"))?;
                Ok(DeliveryRecord {
                    webhook_id: row.get("id"),
                    url: row.get("url"),
                    state,
                    attempts: row.get::<i64, _>("attempts") as u32,
                    created_at: from_micros(row.get("created_at")),
                    next_attempt_at: row
                        .get::<Option<i64>, _>("next_attempt_at")
                        .filter(|_| state == DeliveryState::Pending)
                        .map(from_micros),
                    last_status: row.get::<Option<i64>, _>("last_status").map(|s| s as u16),
                    last_error: row.get("last_error"),
                })
            })
            .collect()
    }

    async fn events_after(&self, after_seq: i64, limit: u32, owner: Option<&str>) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 AND ($3::text IS NULL OR owner_key_id = $3)
                 ORDER BY seq LIMIT $2"
        ))
        .bind(after_seq)
        .bind(i64::from(limit))
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn chain_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetch_optional(&self.pool).await?)
    }

    async fn save_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO checkpoints (seq, head_hash, at, key_id, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (seq, key_id) DO NOTHING",
        )
        .bind(checkpoint.seq)
        .bind(&checkpoint.head_hash)
        .bind(checkpoint.at.timestamp_micros())
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.public_key)
        .bind(&checkpoint.signature)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, head_hash, at, key_id, public_key, signature FROM checkpoints ORDER BY seq, key_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| SignedCheckpoint {
                seq: row.get("seq"),
                head_hash: row.get("head_hash"),
                at: from_micros(row.get("at")),
                key_id: row.get("key_id"),
                public_key: row.get("public_key"),
                signature: row.get("signature"),
            })
            .collect())
    }

    fn set_notification_planner(&self, planner: Arc<dyn NotificationPlanner>) {
        self.planner.set(planner);
    }

    async fn claim_notifications(
        &self,
        at: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedNotification>, StoreError> {
        let lease_until = lease_until(at, lease);
        let rows = sqlx::query(&format!(
            "UPDATE notifications n SET next_attempt_at = $3, lease_token = md5(random()::text || n.id)
             FROM (SELECT id FROM notifications WHERE state = 'pending' AND next_attempt_at <= $1
                   ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
             WHERE n.id = due.id
             RETURNING {NOTIFICATION_COLUMNS_OF_N}, n.lease_token, n.digest_of,
                       (SELECT a.state FROM notifications a WHERE a.id = n.updates_id) AS ask_state,
                       (SELECT a.provider_ref FROM notifications a WHERE a.id = n.updates_id) AS ask_ref"
        ))
        .bind(at.timestamp_micros())
        .bind(i64::from(limit))
        .bind(lease_until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let ask_state: Option<String> = row.get("ask_state");
                let ask = ask_state
                    .map(|state| {
                        NotificationState::parse(&state).ok_or_else(|| StoreError::other("corrupt notification state"))
                    })
                    .transpose()?
                    .map(|state| (state, row.get::<Option<String>, _>("ask_ref")));
                Ok(ClaimedNotification {
                    notification: notification_from_row(row)?,
                    lease: row.get("lease_token"),
                    ask,
                    digest_of: crate::digest_of_from_db(row.get("digest_of"))?,
                })
            })
            .collect()
    }

    async fn record_notification_attempt(
        &self,
        claimed: &ClaimedNotification,
        attempt: NotificationAttempt,
    ) -> Result<bool, StoreError> {
        let counted = attempt.outcome.is_attempt();
        let provider_ref = match &attempt.outcome {
            NotificationOutcome::Sent { provider_ref } => provider_ref.clone(),
            _ => None,
        };
        let mut tx = self.pool.begin().await?;
        let mut pending = Pending::new();
        let owner: Option<String> = sqlx::query_scalar(
            "UPDATE notifications SET state = $2, attempts = attempts + $3, next_attempt_at = $4,
             provider_ref = COALESCE($5, provider_ref), last_error = COALESCE($6, last_error), updated_at = $7,
             lease_token = NULL
             WHERE id = $1 AND lease_token = $8 RETURNING owner_key_id",
        )
        .bind(&claimed.notification.id)
        .bind(attempt.outcome.state().as_str())
        .bind(i64::from(counted))
        .bind(attempt.outcome.next_attempt_at().map(|at| at.timestamp_micros()))
        .bind(provider_ref)
        .bind(attempt.outcome.error())
        .bind(attempt.at.timestamp_micros())
        .bind(&claimed.lease)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(owner) = owner else { return Ok(false) };
        if counted {
            append_events(&mut pending, vec![notification_event(claimed, &attempt)], Some(&owner));
        }
        commit(tx, pending).await?;
        Ok(true)
    }

    async fn digest_due_at(&self, group: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar("SELECT next_at FROM digest_schedules WHERE group_name = $1")
            .bind(group)
            .fetch_optional(&self.pool)
            .await?;
        Ok(next.map(crate::from_micros))
    }

    async fn schedule_digest(&self, group: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO digest_schedules (group_name, next_at) VALUES ($1, $2) ON CONFLICT (group_name) DO NOTHING",
        )
        .bind(group)
        .bind(at.timestamp_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_digest(
        &self,
        group: &str,
        due: DateTime<Utc>,
        next: DateTime<Utc>,
        digests: Vec<NewDigest>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A second replica's update waits for this row lock, then finds `next_at` moved on and changes nothing.
        let moved = sqlx::query(
            "UPDATE digest_schedules SET next_at = $3, last_sent_at = $2 WHERE group_name = $1 AND next_at = $2",
        )
        .bind(group)
        .bind(due.timestamp_micros())
        .bind(next.timestamp_micros())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            return Ok(false);
        }
        let at = now().timestamp_micros();
        for digest in digests {
            let Some(first) = digest.requests.first() else { continue };
            sqlx::query(
                "INSERT INTO notifications (id, request_id, owner_key_id, approver_id, channel, address, purpose,
                 group_name, state, next_attempt_at, created_at, updated_at, digest_of)
                 SELECT $1, id, key_id, $3, $4, $5, 'digest', $6, 'pending', $7, $7, $7, $8 FROM requests WHERE id = $2",
            )
            .bind(new_notification_id())
            .bind(first.to_string())
            .bind(digest.ask.approver_id.map(|id| id.to_string()))
            .bind(digest.ask.channel.as_str())
            .bind(&digest.ask.address)
            .bind(&digest.ask.group)
            .bind(at)
            .bind(encode_json(&digest.requests))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn add_asks(&self, request_id: RequestId, asks: Vec<NewAsk>) -> Result<u32, StoreError> {
        let mut tx = self.pool.begin().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT key_id FROM requests WHERE id = $1 AND status = 'pending' FOR UPDATE")
                .bind(request_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(owner) = owner else { return Ok(0) };
        let same = SAME_ASK
            .replace("{id}", "$1")
            .replace("{group}", "$2")
            .replace("{channel}", "$3")
            .replace("{address}", "$4");
        let at = now().timestamp_micros();
        let mut written = 0;
        for ask in asks {
            let exists = sqlx::query(&same)
                .bind(request_id.to_string())
                .bind(&ask.group)
                .bind(ask.channel.as_str())
                .bind(&ask.address)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if exists {
                continue;
            }
            sqlx::query(
                "INSERT INTO notifications (id, request_id, owner_key_id, approver_id, channel, address, purpose,
                 group_name, state, next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'ask', $7, 'pending', $8, $8, $8)",
            )
            .bind(new_notification_id())
            .bind(request_id.to_string())
            .bind(&owner)
            .bind(ask.approver_id.map(|id| id.to_string()))
            .bind(ask.channel.as_str())
            .bind(&ask.address)
            .bind(&ask.group)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            written += 1;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn notifications(&self, request_id: RequestId) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE request_id = $1 ORDER BY created_at, id"
        ))
        .bind(request_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification_from_row).collect()
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM requests WHERE status = 'pending'").fetch_one(&self.pool).await?;
        Ok(count as u64)
    }

    async fn use_link(&self, nonce: &str, used_for: &str) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO used_links (nonce, request_id, used_at) VALUES ($1, $2, $3) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(used_for)
        .bind(crate::now().timestamp_micros())
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn link_used(&self, nonce: &str) -> Result<bool, StoreError> {
        let row =
            sqlx::query("SELECT 1 FROM used_links WHERE nonce = $1").bind(nonce).fetch_optional(&self.pool).await?;
        Ok(row.is_some())
    }

    async fn reply_code(&self, person: &ApproverId, request_id: RequestId) -> Result<ReplyCode, StoreError> {
        let (person, request_id) = (person.as_str(), request_id.to_string());
        let mut tx = self.pool.begin().await?;
        // One assignment per person at a time, across replicas: the codes they hold are read and added to together.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(REPLY_CODE_LOCK)
            .bind(person)
            .execute(&mut *tx)
            .await?;
        let existing = sqlx::query("SELECT code, link_id FROM reply_codes WHERE person = $1 AND request_id = $2")
            .bind(person)
            .bind(&request_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            return Ok(ReplyCode { code: row.try_get(0)?, link_id: row.try_get(1)? });
        }
        sqlx::query(
            "DELETE FROM reply_codes WHERE person = $1 AND NOT EXISTS \
             (SELECT 1 FROM requests r WHERE r.id = reply_codes.request_id AND r.status = 'pending')",
        )
        .bind(person)
        .execute(&mut *tx)
        .await?;
        let taken = sqlx::query_scalar::<_, String>("SELECT code FROM reply_codes WHERE person = $1")
            .bind(person)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let reply = ReplyCode { code: new_reply_code(&taken), link_id: new_link_id() };
        sqlx::query(
            "INSERT INTO reply_codes (person, code, request_id, link_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(person)
        .bind(&reply.code)
        .bind(&request_id)
        .bind(&reply.link_id)
        .bind(crate::now().timestamp_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(reply)
    }

    async fn reply_code_request(&self, person: &ApproverId, code: &str) -> Result<Option<RequestId>, StoreError> {
        let row = sqlx::query("SELECT person, request_id FROM reply_codes WHERE person = $1 AND code = $2")
            .bind(person.as_str())
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok::<_, StoreError>(reply_row(row.try_get(0)?, row.try_get(1)?)?.1)).transpose()
    }

    async fn reply_link(&self, link_id: &str) -> Result<Option<(ApproverId, RequestId)>, StoreError> {
        let row = sqlx::query("SELECT person, request_id FROM reply_codes WHERE link_id = $1")
            .bind(link_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| reply_row(row.try_get(0)?, row.try_get(1)?)).transpose()
    }

    async fn create_session(&self, session: &DashboardSession) -> Result<(), StoreError> {
        let created_at = session.created_at.timestamp_micros();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1").bind(created_at).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (token_hash, person, key_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.token_hash)
        .bind(session.person.as_str())
        .bind(&session.key_id)
        .bind(&session.csrf_token)
        .bind(created_at)
        .bind(session.expires_at.timestamp_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn live_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<DashboardSession>, StoreError> {
        let row: Option<crate::SessionRow> = sqlx::query_as(&crate::live_session_query("$1", "$2"))
            .bind(token_hash)
            .bind(now.timestamp_micros())
            .fetch_optional(&self.pool)
            .await?;
        row.map(crate::session_from_row).transpose()
    }

    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn listen(&self, listener: ChangeListener) {
        self.changes.listen(listener);
    }
}
