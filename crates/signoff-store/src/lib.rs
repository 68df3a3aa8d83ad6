//! Signoff's durable storage: the [`Store`] trait and its two backends, SQLite (the default) and PostgreSQL.
//!
//! Every state change and the events it produces are written in one transaction; an acknowledged write is on
//! disk. The events form a hash chain (see `signoff_domain::Event`).
#![forbid(unsafe_code)]

mod keys;
mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use signoff_domain::checkpoint::SignedCheckpoint;
use signoff_domain::{
    ApiKey, ApproverId, DomainError, Event, EventKind, Grant, NewEvent, PolicyVersion, Request, RequestId, Role,
    ScopeValue, Status,
};
use signoff_domain::{Notification, NotificationPlan, NotificationState};
use std::sync::Arc;
use tokio::sync::broadcast;

pub use keys::{CreatedKeySecret, NewKey};
pub use postgres::PostgresStore;
pub use signoff_domain::{DeliveryRecord, DeliveryState};
pub use sqlite::SqliteStore;

/// What can go wrong in storage. Small on purpose: handlers branch on `NotFound`,
/// `IdempotencyConflict` and domain refusals; everything else is an opaque failure that keeps its cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("this idempotency key was already used with a different body")]
    IdempotencyConflict,
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{0}")]
    Invalid(String),
    #[error("storage failure: {0}")]
    Other(#[source] Cause),
}

/// The cause of a storage failure: a database error, or a message where there is none.
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl StoreError {
    /// A failure described by `message` alone.
    pub fn other(message: impl Into<String>) -> StoreError {
        let message: Box<dyn std::error::Error + Send + Sync> = message.into().into();
        StoreError::Other(Cause(Arc::from(message)))
    }
}

/// Equal when they would branch the same way; two failures are equal when they say the same thing.
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StoreError::NotFound, StoreError::NotFound)
            | (StoreError::IdempotencyConflict, StoreError::IdempotencyConflict) => true,
            (StoreError::Domain(a), StoreError::Domain(b)) => a == b,
            (StoreError::Invalid(a), StoreError::Invalid(b)) => a == b,
            (StoreError::Other(a), StoreError::Other(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Other(Cause(Arc::new(error)))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Other(Cause(Arc::new(error)))
    }
}

/// A request about to be created, with its idempotency scope.
#[derive(Debug, Clone)]
pub struct NewRequestRecord {
    pub request: Request,
    /// Scoped to `request.requested_by.key_id`.
    pub idempotency_key: Option<String>,
    /// [`NewRequest::fingerprint`](signoff_domain::NewRequest::fingerprint) of the body, to tell a retry from a
    /// conflicting reuse of the key; empty without an idempotency key.
    pub fingerprint: String,
    /// Events to append with the request (its `created` event first).
    pub events: Vec<NewEvent>,
    /// When policy routed the request by a rule allowing standing approvals: the grant to look for, inside the
    /// create's transaction, that approves it at once.
    pub standing: Option<StandingLookup>,
}

/// What a live grant must match to approve a new request: its rule and scope (and the request's key).
#[derive(Debug, Clone, PartialEq)]
pub struct StandingLookup {
    pub rule: String,
    pub scope: Vec<ScopeValue>,
}

/// Makes the grant a decision comes with, from the request as the decision left it; a refusal undoes the decision.
pub type GrantIssue = Box<dyn FnOnce(&Request) -> Result<Grant, DomainError> + Send>;

/// The result of a create: the stored request, and whether this call created it or found a retry's original.
#[derive(Debug, Clone)]
pub struct Created {
    pub request: Request,
    pub created: bool,
}

/// Filters for listing requests, newest first.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<Status>,
    pub action: Option<String>,
    pub run_id: Option<String>,
    /// Only requests created by this key (agents see their own).
    pub requested_by: Option<String>,
    /// Only requests routed to this group (its queue).
    pub group: Option<String>,
    /// Only requests older than this id (the cursor).
    pub before: Option<RequestId>,
    /// Only requests created at or after this time.
    pub created_since: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// What the dashboard's lists (Expired, Review, History) ask for: requests matching every filter given, the newest
/// decision first, then (for requests not decided yet) the newest request first; paged by offset.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    /// Any of these statuses (empty: any status).
    pub statuses: Vec<Status>,
    /// Only requests routed to one of these groups (`None`: any group, or none).
    pub groups: Option<Vec<String>>,
    /// Only post-execution reports drawn (`true`) or not drawn (`false`) for review.
    pub sampled: Option<bool>,
    /// Only requests decided by this person (the one whose verdict made the decision).
    pub decided_by: Option<String>,
    /// Only requests placed by this policy rule.
    pub rule: Option<String>,
    /// Only requests decided at or after this time.
    pub decided_from: Option<DateTime<Utc>>,
    /// Only requests decided before this time.
    pub decided_before: Option<DateTime<Utc>>,
    pub offset: u32,
    pub limit: u32,
}

/// The columns kept beside a request's document for [`RequestQuery`], computed in one place for both backends.
struct ListColumns {
    /// Microseconds since the epoch.
    decided_at: Option<i64>,
    decided_by: Option<String>,
    rule: Option<String>,
    sampled: Option<bool>,
}

impl ListColumns {
    fn of(request: &Request) -> ListColumns {
        let decision = request.decision.as_ref();
        ListColumns {
            decided_at: decision.map(|d| d.at.timestamp_micros()),
            decided_by: decision.and_then(|d| match &d.by {
                signoff_domain::DecidedBy::Human { approver_id, .. }
                | signoff_domain::DecidedBy::Grant { approver_id, .. } => Some(approver_id.to_string()),
                _ => None,
            }),
            rule: request.policy.as_ref().and_then(|p| p.rule.clone()),
            sampled: request.sampled,
        }
    }
}

/// A change to one request, applied under the store's lock on that request. It returns the events to append,
/// or a domain refusal that rolls back everything it did (the request's due timers, fired first, still take effect).
pub type RequestUpdate = Box<dyn FnOnce(&mut Request) -> Result<Vec<NewEvent>, DomainError> + Send>;

/// Applies `update` to `request` after firing the request's timers that are due at `now`, so no transition acts on
/// a deadline or an escalation that has passed but that the timer loop has not reached yet. Returns the events to
/// save and `update`'s refusal, if it refused: the timers' effect is saved either way (the deadline's outcome stands).
/// `before` is the request as loaded (the caller keeps it for the notification planner too).
fn update_after_due_timers(
    request: &mut Request,
    before: &Request,
    update: RequestUpdate,
    now: DateTime<Utc>,
) -> (Vec<NewEvent>, Option<DomainError>) {
    let mut events = request.fire_timers(now);
    match update(request) {
        Ok(more) => {
            events.extend(more);
            (events, None)
        }
        Err(refusal) => {
            // `update` may have changed the request before refusing: keep only what the timers did.
            *request = before.clone();
            let events = request.fire_timers(now);
            (events, Some(refusal))
        }
    }
}

/// Like [`update_after_due_timers`], then, when the update was accepted, makes the grant `issue` says: its
/// `grant_created` event joins the update's, and its refusal undoes the update like the update's own would.
fn update_and_grant(
    request: &mut Request,
    before: &Request,
    update: RequestUpdate,
    issue: Option<GrantIssue>,
    now: DateTime<Utc>,
) -> (Vec<NewEvent>, Option<DomainError>, Option<Grant>) {
    let (mut events, refusal) = update_after_due_timers(request, before, update, now);
    let Some(issue) = issue.filter(|_| refusal.is_none()) else { return (events, refusal, None) };
    match issue(request) {
        Ok(grant) => {
            events.push(grant.created_event());
            (events, None, Some(grant))
        }
        Err(refusal) => {
            *request = before.clone();
            (request.fire_timers(now), Some(refusal), None)
        }
    }
}

/// The columns both backends read a grant from, in [`GrantRow`]'s order.
const GRANT_COLUMNS: &str =
    "id, rule, key_id, scope, approver_id, channel, request_id, created_at, expires_at, revoked_at, revoked_by, uses";

/// The oldest live grant matching a new request; `{key}`, `{rule}`, `{scope}` and `{now}` are placeholders.
const LIVE_GRANT: &str = "SELECT id, rule, key_id, scope, approver_id, channel, request_id, created_at, expires_at,
     revoked_at, revoked_by, uses FROM grants
     WHERE key_id = {key} AND rule = {rule} AND scope = {scope} AND revoked_at IS NULL AND expires_at > {now}
     ORDER BY created_at, id LIMIT 1";

type GrantRow = (String, String, String, String, String, String, String, i64, i64, Option<i64>, Option<String>, i64);

fn grant_from_row(
    (id, rule, key_id, scope, approver_id, channel, request_id, created_at, expires_at, revoked_at, revoked_by, uses): GrantRow,
) -> Result<Grant, StoreError> {
    let corrupt = |what: &str| StoreError::other(format!("corrupt grant {id}: {what}"));
    Ok(Grant {
        rule,
        key_id,
        scope: serde_json::from_str(&scope).map_err(|_| corrupt("scope"))?,
        approver_id: person_from_db(Some(approver_id))?.ok_or_else(|| corrupt("approver"))?,
        channel: signoff_domain::Channel::from_name(&channel).ok_or_else(|| corrupt("channel"))?,
        request_id: request_id.parse().map_err(|_| corrupt("request id"))?,
        created_at: from_micros(created_at),
        expires_at: from_micros(expires_at),
        revoked_at: revoked_at.map(from_micros),
        revoked_by,
        uses: uses.max(0) as u64,
        id,
    })
}

/// Decides who is notified of a change to a request (it knows the policy; the store does not).
pub trait NotificationPlanner: Send + Sync + 'static {
    /// What the change from `before` (`None`: just created) to `after` means for the request's notifications.
    fn plan(&self, before: Option<&Request>, after: &Request) -> NotificationPlan;
}

/// The planner slot of a store: set once by the server, read inside every write.
#[derive(Clone, Default)]
struct PlannerSlot(Arc<std::sync::OnceLock<Arc<dyn NotificationPlanner>>>);

impl PlannerSlot {
    fn set(&self, planner: Arc<dyn NotificationPlanner>) {
        let _ = self.0.set(planner);
    }

    fn plan(&self, before: Option<&Request>, after: &Request) -> NotificationPlan {
        self.0.get().map(|planner| planner.plan(before, after)).unwrap_or_default()
    }
}

/// A notification claimed for sending, with what sending it needs.
#[derive(Debug, Clone)]
pub struct ClaimedNotification {
    pub notification: Notification,
    /// This claim's lease: only it may record the attempt.
    pub lease: String,
    /// For an update: the ask it changes, as it stands (state and where its message lives).
    pub ask: Option<(NotificationState, Option<String>)>,
    /// For a digest: the requests it lists, oldest first (the notification's own `request_id` among them).
    pub digest_of: Vec<RequestId>,
}

/// One digest message to write: to `ask`'s addressee, listing `requests` (oldest first; the first is the request
/// the notification is filed under).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDigest {
    pub ask: signoff_domain::NewAsk,
    pub requests: Vec<RequestId>,
}

/// A digest notification's list of requests, as stored (a JSON array of ids).
fn digest_of_from_db(text: Option<String>) -> Result<Vec<RequestId>, StoreError> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::other(format!("corrupt digest list: {e}"))),
    }
}

/// The asks of a request already written, to the same addressee, channel and group as a new one (`?`-free: `{id}`,
/// `{group}`, `{channel}`, `{address}` are the backend's placeholders).
const SAME_ASK: &str =
    "SELECT 1 FROM notifications WHERE request_id = {id} AND purpose = 'ask' AND group_name = {group}
     AND channel = {channel} AND address = {address}";

/// What became of one claimed notification.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationAttempt {
    pub at: DateTime<Utc>,
    pub outcome: NotificationOutcome,
    pub elapsed_ms: u64,
}

/// The result of sending (or not yet sending) a notification.
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationOutcome {
    /// Delivered; `provider_ref` is where the message lives (for later updates).
    Sent { provider_ref: Option<String> },
    /// Failed for now: try again at `next_attempt_at`.
    Retry { error: String, next_attempt_at: DateTime<Utc> },
    /// Given up.
    Failed { error: String },
    /// An update whose ask is not sent yet: look again at `next_attempt_at` (not an attempt; no event).
    Deferred { next_attempt_at: DateTime<Utc> },
    /// Not sent because it no longer has anything to say, for `reason` (not an attempt; no event).
    Skipped { reason: String },
}

impl NotificationOutcome {
    fn state(&self) -> NotificationState {
        match self {
            NotificationOutcome::Sent { .. } => NotificationState::Sent,
            NotificationOutcome::Failed { .. } => NotificationState::Failed,
            NotificationOutcome::Skipped { .. } => NotificationState::Skipped,
            NotificationOutcome::Retry { .. } | NotificationOutcome::Deferred { .. } => NotificationState::Pending,
        }
    }

    /// Whether the provider was called (so the attempt is counted and recorded as an event).
    fn is_attempt(&self) -> bool {
        !matches!(self, NotificationOutcome::Deferred { .. } | NotificationOutcome::Skipped { .. })
    }

    fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        match self {
            NotificationOutcome::Retry { next_attempt_at, .. } | NotificationOutcome::Deferred { next_attempt_at } => {
                Some(*next_attempt_at)
            }
            _ => None,
        }
    }

    fn error(&self) -> Option<&str> {
        match self {
            NotificationOutcome::Retry { error, .. } | NotificationOutcome::Failed { error } => Some(error),
            NotificationOutcome::Skipped { reason } => Some(reason),
            _ => None,
        }
    }
}

/// The event recording one attempt to send a notification.
fn notification_event(claimed: &ClaimedNotification, attempt: &NotificationAttempt) -> NewEvent {
    let n = &claimed.notification;
    NewEvent::new(
        Some(n.request_id),
        EventKind::NotificationAttempted,
        "notifications",
        serde_json::json!({
            "notification_id": n.id,
            "channel": n.channel,
            "purpose": n.purpose,
            "approver_id": n.approver_id,
            "attempt": n.attempts + 1,
            "state": attempt.outcome.state(),
            "error": attempt.outcome.error(),
            "elapsed_ms": attempt.elapsed_ms,
            "next_attempt_at": attempt.outcome.next_attempt_at(),
        }),
    )
}

/// A notification row about to be written.
struct OutboxRow {
    approver_id: Option<String>,
    channel: String,
    address: String,
    purpose: &'static str,
    group: String,
    updates_id: Option<String>,
}

/// An ask already written, as read back for its update: id, approver id, channel, address, group.
type WrittenAsk = (String, Option<String>, String, String, String);

/// The rows `plan` writes: an update for every written ask still worth updating, a reminder for every ask to remind
/// (but not the people the plan excepts), then the new asks.
fn outbox_rows(plan: NotificationPlan, to_update: Vec<WrittenAsk>, to_remind: Vec<WrittenAsk>) -> Vec<OutboxRow> {
    let except: Vec<String> =
        plan.remind.map(|remind| remind.except.iter().map(ToString::to_string).collect()).unwrap_or_default();
    let follow_up = |purpose: &'static str| {
        move |(id, approver_id, channel, address, group): WrittenAsk| OutboxRow {
            approver_id,
            channel,
            address,
            purpose,
            group,
            updates_id: Some(id),
        }
    };
    let updates = to_update.into_iter().map(follow_up("update"));
    let reminders = to_remind
        .into_iter()
        .filter(|(_, approver_id, ..)| approver_id.as_ref().is_none_or(|person| !except.contains(person)))
        .map(follow_up("reminder"));
    let asks = plan.asks.into_iter().map(|ask| OutboxRow {
        approver_id: ask.approver_id.map(|id| id.to_string()),
        channel: ask.channel.as_str().to_string(),
        address: ask.address,
        purpose: "ask",
        group: ask.group,
        updates_id: None,
    });
    updates.chain(reminders).chain(asks).collect()
}

/// The asks of a request that an update should change: not failed, and with no update already waiting (an update
/// renders the request as it is when sent, so one is enough). `{id}` is the request id's placeholder.
const ASKS_TO_UPDATE: &str = "SELECT id, approver_id, channel, address, group_name FROM notifications a
     WHERE request_id = {id} AND purpose = 'ask' AND state != 'failed'
     AND NOT EXISTS (SELECT 1 FROM notifications u WHERE u.updates_id = a.id AND u.purpose = 'update'
                     AND u.state = 'pending')";

/// The asks of a request to its group `{group}` that a reminder goes to: not failed, and with no reminder still
/// waiting to be sent (a provider that is down gets one reminder per ask, not a pile).
const ASKS_TO_REMIND: &str = "SELECT id, approver_id, channel, address, group_name FROM notifications a
     WHERE request_id = {id} AND group_name = {group} AND purpose = 'ask' AND state != 'failed'
     AND NOT EXISTS (SELECT 1 FROM notifications r WHERE r.updates_id = a.id AND r.purpose = 'reminder'
                     AND r.state = 'pending')";

/// The columns both backends read a notification from, in order.
const NOTIFICATION_COLUMNS: &str = "id, request_id, approver_id, channel, address, purpose, group_name, updates_id, state, \
     attempts, next_attempt_at, provider_ref, last_error, created_at, updated_at";
/// The same columns of the table aliased `n`.
const NOTIFICATION_COLUMNS_OF_N: &str = "n.id, n.request_id, n.approver_id, n.channel, n.address, n.purpose, \
     n.group_name, n.updates_id, n.state, n.attempts, n.next_attempt_at, n.provider_ref, n.last_error, n.created_at, \
     n.updated_at";

/// A person's SMS reply code for a request (`4821` in `A 4821`), and the id of the short link sent with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyCode {
    pub code: String,
    pub link_id: String,
}

/// A fresh reply code not among `taken`: four digits (never starting with 0, so no carrier or keyboard drops one),
/// six once four-digit codes run short.
fn new_reply_code(taken: &std::collections::HashSet<String>) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..64 {
        let code = rng.random_range(1000..=9999).to_string();
        if !taken.contains(&code) {
            return code;
        }
    }
    loop {
        let code = rng.random_range(100_000..=999_999).to_string();
        if !taken.contains(&code) {
            return code;
        }
    }
}

/// A fresh short-link id: 6 random bytes, base64url (8 characters).
fn new_link_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 6]>())
}

/// A `reply_codes` row's person and request, read back.
fn reply_row(person: String, request_id: String) -> Result<(ApproverId, RequestId), StoreError> {
    let person = ApproverId::parse(&person).map_err(|e| StoreError::other(format!("corrupt approver id: {e}")))?;
    let request_id = request_id.parse().map_err(|e| StoreError::other(format!("corrupt request id: {e}")))?;
    Ok((person, request_id))
}

fn new_notification_id() -> String {
    format!("ntf_{}", uuid::Uuid::now_v7().simple())
}

/// A notice that something changed, for waking waiters (on PostgreSQL, across replicas).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A request changed; read it to see how.
    Request(RequestId),
    /// A request changed, and this is its committed state (saves waiters a read).
    Updated(Arc<Request>),
    /// Notices may have been missed (a listener reconnected): re-check everything.
    Unknown,
}

/// Called with every change in the task that announces it (for SQLite, the one whose write committed it), before
/// that task answers its caller. Must be quick and never block: it runs on the writer's callers' tasks.
pub type ChangeListener = Arc<dyn Fn(&Change) + Send + Sync>;

/// Where a store announces its changes: its listeners, called in place, then a broadcast for whoever subscribed.
/// The long-poll waiters listen (a decided request's waiters are woken by the task that committed the decision,
/// with no hop through a task of their own); event streams subscribe.
pub struct ChangeFeed {
    listeners: std::sync::RwLock<Vec<ChangeListener>>,
    broadcast: broadcast::Sender<Change>,
}

impl ChangeFeed {
    /// A feed whose broadcast keeps up to `capacity` notices for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        ChangeFeed { listeners: std::sync::RwLock::new(Vec::new()), broadcast: broadcast::channel(capacity).0 }
    }

    /// Announces `change`: to every listener now, then to the subscribers.
    pub fn send(&self, change: Change) {
        for listener in self.listeners.read().expect("change listeners").iter() {
            listener(&change);
        }
        let _ = self.broadcast.send(change);
    }

    pub fn listen(&self, listener: ChangeListener) {
        self.listeners.write().expect("change listeners").push(listener);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.broadcast.subscribe()
    }
}

/// Durable storage for requests, events and keys.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a request, or returns the original when the idempotency key was seen with the same body.
    async fn create_request(&self, record: NewRequestRecord) -> Result<Created, StoreError>;
    async fn request(&self, id: RequestId) -> Result<Request, StoreError>;
    async fn list_requests(&self, filter: RequestFilter) -> Result<Vec<Request>, StoreError>;
    /// Requests for the dashboard's lists; see [`RequestQuery`].
    async fn find_requests(&self, query: RequestQuery) -> Result<Vec<Request>, StoreError>;
    /// Applies `update` to a request atomically with its events, then announces the change.
    async fn update_request(&self, id: RequestId, update: RequestUpdate) -> Result<Request, StoreError> {
        self.update_request_granting(id, update, None).await.map(|(request, _)| request)
    }
    /// Like [`Store::update_request`], also storing the grant `issue` makes from the updated request (with its
    /// `grant_created` event) in the same transaction.
    async fn update_request_granting(
        &self,
        id: RequestId,
        update: RequestUpdate,
        issue: Option<GrantIssue>,
    ) -> Result<(Request, Option<Grant>), StoreError>;
    /// A grant by id.
    async fn grant(&self, id: &str) -> Result<Grant, StoreError>;
    /// Grants live at `now`, newest first; with `all`, expired and revoked ones too.
    async fn grants(&self, all: bool, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError>;
    /// Revokes a grant as `actor` (with a `grant_revoked` event); revoking it again changes nothing.
    async fn revoke_grant(&self, id: &str, actor: &str) -> Result<Grant, StoreError>;
    /// One request's events, oldest first.
    async fn request_events(&self, id: RequestId) -> Result<Vec<Event>, StoreError>;

    async fn create_key(&self, key: NewKey, actor: &str) -> Result<CreatedKeySecret, StoreError>;
    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    async fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, StoreError>;
    async fn revoke_key(&self, id: &str, actor: &str) -> Result<ApiKey, StoreError>;

    /// Stores `source` as the next policy version, unless it is the version already in force; says which.
    async fn apply_policy(&self, source: &str, content_hash: &str, actor: &str) -> Result<AppliedPolicy, StoreError>;
    /// The policy version in force, if one was ever applied.
    async fn current_policy(&self) -> Result<Option<PolicyVersion>, StoreError>;
    /// The number of the version in force (0: none); cheap, for noticing changes made elsewhere.
    async fn current_policy_version(&self) -> Result<i64, StoreError>;
    /// Every version, newest first.
    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError>;

    /// Fires the stored timers due at `now` (escalations, deadlines), at most `limit` requests; returns the
    /// requests that changed. Safe to run on every replica at once: each timer takes effect exactly once.
    async fn fire_due_timers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Request>, StoreError>;
    /// Claims callbacks due at `now` for `lease` (another worker will not take them meanwhile).
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Records an attempt (and its event) and schedules what comes next, if `delivery`'s claim still holds the lease;
    /// returns false (and records nothing) when the lease ran out and another worker took the delivery.
    async fn record_delivery_attempt(&self, delivery: &Delivery, result: DeliveryAttempt) -> Result<bool, StoreError>;
    async fn deliveries(&self, request_id: RequestId) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Events after `after_seq`, oldest first; with `owner`, only events about that key's requests.
    async fn events_after(&self, after_seq: i64, limit: u32, owner: Option<&str>) -> Result<Vec<Event>, StoreError>;
    /// The newest event's sequence number and hash (`None`: the log is empty).
    async fn chain_head(&self) -> Result<Option<(i64, String)>, StoreError>;
    /// Stores a signed checkpoint of the chain (storing the same one again changes nothing).
    async fn save_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError>;
    /// Every stored checkpoint, oldest first.
    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError>;
    /// Who is notified of what: consulted inside every change to a request (create, update, timers), so the
    /// notifications a change causes are written in its transaction. Without a planner nothing is notified.
    fn set_notification_planner(&self, planner: Arc<dyn NotificationPlanner>);
    /// Claims notifications due at `now` for `lease` (another worker will not take them meanwhile).
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedNotification>, StoreError>;
    /// Records what became of a claimed notification (an attempt is also an event), if the claim still holds the
    /// lease; returns false when it ran out and another worker took it.
    async fn record_notification_attempt(
        &self,
        claimed: &ClaimedNotification,
        attempt: NotificationAttempt,
    ) -> Result<bool, StoreError>;
    /// When `group`'s next digest is due, if one is scheduled.
    async fn digest_due_at(&self, group: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Schedules `group`'s next digest at `at`, unless one is scheduled already.
    async fn schedule_digest(&self, group: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Takes `group`'s digest due at `due`: if the schedule still says `due`, moves it to `next` and writes
    /// `digests` in the same transaction, and returns true; returns false (and writes nothing) when another worker
    /// (a replica, or this one before a restart) took it. With no `digests`, only moves the schedule.
    async fn claim_digest(
        &self,
        group: &str,
        due: DateTime<Utc>,
        next: DateTime<Utc>,
        digests: Vec<NewDigest>,
    ) -> Result<bool, StoreError>;
    /// Writes asks about a pending request outside a change to it (a digest group's request asked one by one: urgent,
    /// or too few for a digest), except those already written to the same addressee on the same channel for the same
    /// group, under the request's lock; nothing for a request no longer pending. Returns how many were written.
    async fn add_asks(&self, request_id: RequestId, asks: Vec<signoff_domain::NewAsk>) -> Result<u32, StoreError>;
    /// A request's notifications, oldest first.
    async fn notifications(&self, request_id: RequestId) -> Result<Vec<Notification>, StoreError>;
    /// Records a signed link's nonce as used, for `used_for` (the request an action link decides, or
    /// `sign-in:{person}`): `true` the first time, `false` ever after. Inbound deliveries that must act once are
    /// recorded the same way under a nonce of their own (`telegram-update:{bot}:{update_id}`).
    async fn use_link(&self, nonce: &str, used_for: &str) -> Result<bool, StoreError>;
    /// Whether an email link's nonce was used.
    async fn link_used(&self, nonce: &str) -> Result<bool, StoreError>;
    /// `person`'s SMS reply code for `request_id`: the one they were given before, else a new one unique among their
    /// codes for pending requests (codes of requests no longer pending are dropped first).
    async fn reply_code(&self, person: &ApproverId, request_id: RequestId) -> Result<ReplyCode, StoreError>;
    /// The request `person`'s reply code `code` names, if they hold that code.
    async fn reply_code_request(&self, person: &ApproverId, code: &str) -> Result<Option<RequestId>, StoreError>;
    /// The person and request of the short link `link_id`, if it exists.
    async fn reply_link(&self, link_id: &str) -> Result<Option<(ApproverId, RequestId)>, StoreError>;
    /// How many requests are pending (for the metrics gauge).
    async fn pending_count(&self) -> Result<u64, StoreError>;

    /// Stores a new dashboard session, and drops the sessions that expired before it began.
    async fn create_session(&self, session: &DashboardSession) -> Result<(), StoreError>;
    /// The session whose token hashes to `token_hash`, if it is still live at `now`: not expired, not ended, and (when
    /// it was signed in with an API key) that key not revoked.
    async fn live_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<DashboardSession>, StoreError>;
    /// Ends a session (signing out); ending one that does not exist does nothing.
    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Changes to requests, as they commit (on PostgreSQL, from every replica).
    fn changes(&self) -> broadcast::Receiver<Change>;
    /// Calls `listener` with every change that [`changes`](Self::changes) announces, in the announcing task and
    /// before it goes on (see [`ChangeListener`]).
    fn listen(&self, listener: ChangeListener);
}

/// A person signed in to the dashboard, as stored. The browser holds the token; the store only its SHA-256.
#[derive(Clone, PartialEq)]
pub struct DashboardSession {
    /// Lowercase hex SHA-256 of the session cookie's value.
    pub token_hash: String,
    pub person: ApproverId,
    /// The API key the person signed in with; `None` for a sign-in that used no key (an email link).
    pub key_id: Option<String>,
    /// The token every form of this session must carry back.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for DashboardSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardSession")
            .field("person", &self.person)
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The columns a session is read from, in [`DashboardSession`]'s order (both backends).
const SESSION_COLUMNS: &str = "s.token_hash, s.person, s.key_id, s.csrf_token, s.created_at, s.expires_at";

/// The query for [`Store::live_session`], with `{p1}` and `{p2}` for the backend's placeholders.
fn live_session_query(token_hash: &str, now: &str) -> String {
    format!(
        "SELECT {SESSION_COLUMNS} FROM dashboard_sessions s LEFT JOIN api_keys k ON k.id = s.key_id \
         WHERE s.token_hash = {token_hash} AND s.expires_at > {now} AND (s.key_id IS NULL OR k.revoked_at IS NULL)"
    )
}

type SessionRow = (String, String, Option<String>, String, i64, i64);

fn session_from_row(
    (token_hash, person, key_id, csrf_token, created_at, expires_at): SessionRow,
) -> Result<DashboardSession, StoreError> {
    Ok(DashboardSession {
        token_hash,
        person: person_from_db(Some(person))?.ok_or_else(|| StoreError::other("a session without a person"))?,
        key_id,
        csrf_token,
        created_at: from_micros(created_at),
        expires_at: from_micros(expires_at),
    })
}

/// The outcome of applying a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedPolicy {
    pub policy: PolicyVersion,
    /// False when the same document was already in force (nothing was stored).
    pub created: bool,
}

fn policy_applied_event(policy: &PolicyVersion) -> NewEvent {
    NewEvent::new(
        None,
        EventKind::PolicyApplied,
        policy.created_by.clone(),
        serde_json::json!({ "version": policy.version, "content_hash": policy.content_hash }),
    )
}

/// A callback waiting in the outbox, with what is needed to send it.
#[derive(Clone)]
pub struct Delivery {
    /// The `webhook-id`: the same on every retry.
    pub id: String,
    /// This claim's lease: only it may record the attempt.
    pub lease: String,
    pub request_id: RequestId,
    pub url: String,
    pub body: String,
    /// The requesting key's `whsec_` secret.
    pub secret: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub first_attempt_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// The result of one delivery attempt, and what comes next.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    /// `delivered`, `gone` (410: stop), `pending` (retry at `next_attempt_at`) or `failed` (gave up).
    pub state: DeliveryState,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub elapsed_ms: u64,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A delivery state as stored (`pending`, `delivered`, `gone`, `failed`).
pub(crate) fn parse_delivery_state(s: &str) -> Result<DeliveryState, StoreError> {
    DeliveryState::ALL
        .into_iter()
        .find(|state| state.as_str() == s)
        .ok_or_else(|| StoreError::other(format!("unknown delivery state `{s}`")))
}

/// A callback to enqueue: made when a request with a `callback_url` leaves `pending` (`request.decided`), or when it
/// is flagged (`request.flagged`).
struct NewDelivery {
    id: String,
    url: String,
    body: String,
}

/// The one callback a change sends, if any. A flag wins over the decision it causes (a sampled review's rejection):
/// the agent gets one callback per change, and `request.flagged` says everything `request.decided` would.
fn callback_for(before: Option<&Request>, request: &Request) -> Option<NewDelivery> {
    let url = request.callback_url.as_ref()?;
    let was_flagged = before.is_some_and(Request::is_flagged);
    let was_final = before.is_some_and(|before| before.status.is_final());
    let (kind, at) = match (&request.review, request.decision.as_ref()) {
        (Some(review), _) if request.is_flagged() && !was_flagged => ("request.flagged", review.at),
        (_, Some(decision)) if !was_final && request.status.is_final() => ("request.decided", decision.at),
        _ => return None,
    };
    let body = serde_json::json!({ "type": kind, "timestamp": at, "data": request });
    Some(NewDelivery { id: format!("msg_{}", uuid::Uuid::now_v7().simple()), url: url.clone(), body: body.to_string() })
}

fn attempt_event(delivery_id: &str, request_id: RequestId, attempt: u32, result: &DeliveryAttempt) -> NewEvent {
    NewEvent::new(
        Some(request_id),
        EventKind::CallbackAttempted,
        "callbacks",
        serde_json::json!({
            "webhook_id": delivery_id,
            "attempt": attempt,
            "state": result.state,
            "status": result.status,
            "error": result.error,
            "elapsed_ms": result.elapsed_ms,
            "next_attempt_at": result.next_attempt_at,
        }),
    )
}

/// When a claim taken at `at` for `lease` runs out, in the stores' microseconds.
fn lease_until(at: DateTime<Utc>, lease: std::time::Duration) -> i64 {
    (at + chrono::Duration::from_std(lease).unwrap_or_default()).timestamp_micros()
}

/// A random token naming one claim of a delivery.
fn new_lease_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Opens the store a URL names: `sqlite://PATH` or `postgres://...`, applying migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        Ok(Arc::new(SqliteStore::open(path).await?))
    } else {
        Err(StoreError::other(format!(
            "unsupported database URL `{url}`: use sqlite://PATH or postgres://USER@HOST/DB"
        )))
    }
}

/// Now, to the microsecond: the precision every backend stores exactly.
pub fn now() -> DateTime<Utc> {
    from_micros(Utc::now().timestamp_micros())
}

fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn role_from_db(role: &str) -> Result<Role, StoreError> {
    role.parse().map_err(StoreError::other)
}

fn person_from_db(id: Option<String>) -> Result<Option<ApproverId>, StoreError> {
    id.map(|id| ApproverId::parse(&id).map_err(|e| StoreError::other(format!("corrupt approver id: {e}")))).transpose()
}

fn decode_request(doc: &str) -> Result<Request, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::other(format!("corrupt request document: {e}")))
}

fn encode_json<T: serde::Serialize>(value: &T) -> String {
    // Room for a whole request document up front, instead of growing (and copying) it eight times.
    let mut json = Vec::with_capacity(2048);
    serde_json::to_writer(&mut json, value).expect("domain types always serialize");
    String::from_utf8(json).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_database_error_keeps_its_cause() {
        let error = StoreError::from(rusqlite::Error::InvalidColumnName("doc".into()));
        let cause = error.source().expect("the cause is kept");
        assert!(cause.to_string().contains("doc"), "{cause}");
        assert!(error.to_string().starts_with("storage failure: "), "{error}");
        assert_eq!(StoreError::NotFound, StoreError::NotFound);
        assert_ne!(StoreError::other("a"), StoreError::other("b"));
    }
}
