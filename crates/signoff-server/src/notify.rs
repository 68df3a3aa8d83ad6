//! The notification outbox in the server: the planner, which says who is told what (from the policy in force, inside
//! every change's transaction), and the worker, which sends asks, updates earlier messages once a request moves on,
//! and retries with backoff (honouring a provider's `Retry-After`). A provider that is down delays its notifications
//! and nothing else: creates, decisions and timers never wait for it.

use crate::AppState;
use crate::policy::PolicyCell;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use signoff_domain::{
    ApproverId, Channel, NewAsk, Notification, NotificationPlan, NotificationState, Purpose, RemindPlan, Request,
    Status,
};
use signoff_notify::digest::{DigestItem, DigestView};
use signoff_notify::{ProviderError, ProviderRef, RequestView};
use signoff_store::{ClaimedNotification, NotificationAttempt, NotificationOutcome, NotificationPlanner};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// How often the worker looks for due notifications when none were due.
const TICK: Duration = Duration::from_millis(250);
/// Sends in flight at once, per channel (a provider's outage or rate limit holds back only its own channel).
const PER_CHANNEL: usize = 8;
/// How long an update waits for its ask to be sent before looking again.
const UPDATE_WAIT: Duration = Duration::from_secs(1);
/// A claim's lease: longer than any one send takes.
const LEASE: Duration = Duration::from_secs(60);

/// One channel's way of sending: implemented by each configured adapter.
#[async_trait]
pub trait ChannelSender: Send + Sync + 'static {
    /// Sends a new message asking `notification.address` to decide `request`; returns where it lives.
    async fn ask(
        &self,
        notification: &Notification,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError>;
    /// Brings the message at `message` up to date with `request` (Slack edits it; email replies in its thread).
    async fn update(
        &self,
        notification: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<Option<ProviderRef>, ProviderError>;
    /// Reminds `notification.address` that `request`, asked about in `message`, still waits for them (Slack replies
    /// in the message's thread; email replies in its thread with fresh links). Returns where the reminder lives.
    async fn remind(
        &self,
        notification: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError>;
    /// Sends one digest to `notification.address`. Channels that send no digests keep this refusal (the planner
    /// never holds their asks for a digest, so it is not reached).
    async fn digest(&self, notification: &Notification, digest: &DigestView) -> Result<ProviderRef, ProviderError> {
        let _ = digest;
        Err(ProviderError::permanent(format!("the {} channel sends no digests", notification.channel)))
    }
}

/// The channels that can send, with their senders.
#[derive(Clone, Default)]
pub struct Senders(HashMap<Channel, Arc<dyn ChannelSender>>);

impl Senders {
    pub fn insert(&mut self, channel: Channel, sender: Arc<dyn ChannelSender>) {
        self.0.insert(channel, sender);
    }

    pub fn channels(&self) -> BTreeSet<Channel> {
        self.0.keys().copied().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Who is told what: each member of the request's group (of a group with a rotation, the member on call when the
/// request reaches it) on each of the group's `notify` channels that is configured and for which they have an address; every earlier message once the request is decided, gains an approval, or
/// moves to another group; and, when one of the group's reminders falls due, everyone asked there who has not
/// approved yet.
pub struct Planner {
    policy: PolicyCell,
    channels: BTreeSet<Channel>,
}

impl Planner {
    pub fn new(policy: PolicyCell, channels: BTreeSet<Channel>) -> Self {
        Planner { policy, channels }
    }
}

impl NotificationPlanner for Planner {
    fn plan(&self, before: Option<&Request>, after: &Request) -> NotificationPlan {
        let moved = before.is_none_or(|before| before.group != after.group);
        let asks = match (&after.group, after.status) {
            (Some(group), Status::Pending) if moved => {
                asks_for(&self.policy.current().policy, group, &self.channels, after, after.updated_at)
            }
            _ => Vec::new(),
        };
        let update_sent = before.is_some_and(|before| {
            before.status != after.status || before.group != after.group || before.approvals != after.approvals
        });
        let fired = |request: &Request| request.reminders.iter().filter(|r| r.fired_at.is_some()).count();
        let reminded = before.is_some_and(|before| !moved && fired(after) > fired(before));
        let remind = match (&after.group, after.status) {
            (Some(group), Status::Pending) if reminded => Some(RemindPlan {
                group: group.clone(),
                except: after.approvals.iter().map(|a| a.approver_id.clone()).collect(),
            }),
            _ => None,
        };
        NotificationPlan { asks, update_sent, remind }
    }
}

/// The asks for a request routed to `group` at `at`: a digest group's members are not asked on the channels that
/// send digests unless the request is urgent or a question ([`held_for_digest`]); the digest worker lists it instead.
fn asks_for(
    policy: &signoff_policy::Policy,
    group: &str,
    configured: &BTreeSet<Channel>,
    request: &Request,
    at: DateTime<Utc>,
) -> Vec<NewAsk> {
    let Some(declared) = policy.group(group) else { return Vec::new() };
    let held = held_for_digest(declared, request, at);
    let mut asks = Vec::new();
    if let Some(channel) = declared.slack_channel.as_ref().filter(|_| configured.contains(&Channel::Slack)) {
        let (approver_id, address) = (None, channel.clone());
        asks.push(NewAsk { approver_id, channel: Channel::Slack, address, group: group.to_string() });
    }
    if let Some(channel) = declared.discord_channel.as_ref().filter(|_| configured.contains(&Channel::Discord)) {
        let (approver_id, address) = (None, channel.clone());
        asks.push(NewAsk { approver_id, channel: Channel::Discord, address, group: group.to_string() });
    }
    let channels = |c: &Channel| configured.contains(c) && !(held && DIGEST_CHANNELS.contains(c));
    asks.extend(member_asks(policy, group, channels, at));
    asks
}

/// The channels that send digests; a digest group's other channels keep one ask per request.
pub(crate) const DIGEST_CHANNELS: [Channel; 2] = [Channel::Slack, Channel::Email];

/// Whether a request reaching `group` at `at` waits for the group's digest on [`DIGEST_CHANNELS`] instead of being
/// asked at once: the group has a digest, the request is an approval (a question is always asked at once), and its
/// deadline is not nearer than the digest's `urgent_after`.
pub(crate) fn held_for_digest(group: &signoff_policy::Group, request: &Request, at: DateTime<Utc>) -> bool {
    let Some(digest) = &group.digest else { return false };
    request.kind == signoff_domain::Kind::Approval && !is_urgent(digest, request, at)
}

/// Whether `request`'s deadline is nearer than the digest's `urgent_after` at `at`.
pub(crate) fn is_urgent(digest: &signoff_policy::Digest, request: &Request, at: DateTime<Utc>) -> bool {
    match (digest.urgent_after, request.deadline_at) {
        (Some(urgent_after), Some(deadline)) => {
            deadline - at < chrono::Duration::from_std(urgent_after).unwrap_or(chrono::Duration::MAX)
        }
        _ => false,
    }
}

/// An ask to each member of `group` (of a group with a rotation, the member on call at `at`) on each of the group's
/// `notify` channels that `channels` lets through and for which they have an address.
pub(crate) fn member_asks(
    policy: &signoff_policy::Policy,
    group: &str,
    channels: impl Fn(&Channel) -> bool,
    at: DateTime<Utc>,
) -> Vec<NewAsk> {
    let Some(declared) = policy.group(group) else { return Vec::new() };
    let on_call = declared.rotation.as_ref().map(|rotation| rotation.on_call(at).person);
    let mut asks = Vec::new();
    for approver in policy.members(group).into_iter().filter(|a| on_call.is_none_or(|id| id == a.id)) {
        let Ok(person) = ApproverId::parse(&approver.id) else { continue };
        for &channel in declared.notify.iter().filter(|c| channels(c)) {
            if let Some(address) = approver.address(channel) {
                let (approver_id, address) = (Some(person.clone()), address.to_string());
                asks.push(NewAsk { approver_id, channel, address, group: group.to_string() });
            }
        }
    }
    asks
}

/// What a message shows beyond the request: the policy's names, and where the request went.
fn view_for(state: &AppState, notification: &Notification, request: &Request) -> RequestView {
    let policy = state.policy.current();
    let person_names = policy
        .policy
        .approvers()
        .iter()
        .filter_map(|a| ApproverId::parse(&a.id).ok().map(|id| (id, a.name.clone())))
        .collect();
    let moved_to = request.group.clone().filter(|group| *group != notification.group);
    RequestView {
        public_url: state.public_url.clone(),
        group: notification.group.clone(),
        person: notification.approver_id.clone(),
        person_names,
        moved_to,
    }
}

/// The worker: claims due notifications and sends each with its channel's sender, a few at a time per channel.
pub(crate) async fn run(state: AppState, senders: Senders, mut shutdown: watch::Receiver<bool>) {
    let permits: HashMap<Channel, Arc<Semaphore>> =
        senders.channels().into_iter().map(|c| (c, Arc::new(Semaphore::new(PER_CHANNEL)))).collect();
    loop {
        let claimed = match state.store.claim_notifications(signoff_store::now(), LEASE, 64).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "claiming notifications failed; retrying");
                Vec::new()
            }
        };
        let busy = !claimed.is_empty();
        for claim in claimed {
            let channel = claim.notification.channel;
            let (Some(sender), Some(permits)) = (senders.0.get(&channel).cloned(), permits.get(&channel).cloned())
            else {
                let error = format!("the {channel} channel is not configured on this server");
                record(&state, &claim, NotificationOutcome::Failed { error }, Duration::ZERO).await;
                continue;
            };
            let Ok(permit) = permits.acquire_owned().await else { return };
            let state = state.clone();
            tokio::spawn(async move {
                send(&state, sender.as_ref(), claim).await;
                drop(permit);
            });
        }
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Sends one claimed notification and records what became of it.
async fn send(state: &AppState, sender: &dyn ChannelSender, claim: ClaimedNotification) {
    let notification = &claim.notification;
    let request = match state.store.request(notification.request_id).await {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(%error, id = %notification.id, "cannot load the request of a notification");
            let next_attempt_at = signoff_store::now() + chrono::Duration::seconds(5);
            record(state, &claim, NotificationOutcome::Deferred { next_attempt_at }, Duration::ZERO).await;
            return;
        }
    };
    let view = view_for(state, notification, &request);
    let started = Instant::now();
    if notification.purpose == Purpose::Reminder
        && let Some(reason) = reminder_needless(notification, &request)
    {
        record(state, &claim, NotificationOutcome::Skipped { reason }, Duration::ZERO).await;
        return;
    }
    let result = match (notification.purpose, &claim.ask) {
        (Purpose::Ask, _) => sender.ask(notification, &request, &view).await.map(Some),
        (Purpose::Digest, _) => return send_digest(state, sender, &claim).await,
        (Purpose::Update | Purpose::Reminder, Some((NotificationState::Sent, Some(message)))) => {
            match notification.purpose {
                Purpose::Reminder => sender.remind(notification, message, &request, &view).await.map(Some),
                _ => sender.update(notification, message, &request, &view).await,
            }
        }
        (Purpose::Update | Purpose::Reminder, Some((NotificationState::Pending, _))) => {
            let next_attempt_at = signoff_store::now() + chrono::Duration::from_std(UPDATE_WAIT).unwrap_or_default();
            record(state, &claim, NotificationOutcome::Deferred { next_attempt_at }, Duration::ZERO).await;
            return;
        }
        (Purpose::Update | Purpose::Reminder, _) => {
            let error = "the message it follows up on was never sent".to_string();
            record(state, &claim, NotificationOutcome::Failed { error }, started.elapsed()).await;
            return;
        }
    };
    let outcome = match result {
        Ok(provider_ref) => NotificationOutcome::Sent { provider_ref },
        Err(error) => failure(state, notification, error),
    };
    record(state, &claim, outcome, started.elapsed()).await;
}

/// Sends one claimed digest: the requests it lists that are, when it is sent, still pending in its group and not
/// yet approved by its addressee (skipped when none is left).
async fn send_digest(state: &AppState, sender: &dyn ChannelSender, claim: &ClaimedNotification) {
    let notification = &claim.notification;
    let policy = state.policy.current();
    let total_field = policy.policy.group(&notification.group).and_then(|g| g.digest.as_ref()?.total.clone());
    let mut items = Vec::new();
    for id in &claim.digest_of {
        let request = match state.store.request(*id).await {
            Ok(request) => request,
            Err(signoff_store::StoreError::NotFound) => continue,
            Err(error) => {
                tracing::warn!(%error, id = %notification.id, "cannot load a request of a digest");
                let next_attempt_at = signoff_store::now() + chrono::Duration::seconds(5);
                record(state, claim, NotificationOutcome::Deferred { next_attempt_at }, Duration::ZERO).await;
                return;
            }
        };
        let approved = notification
            .approver_id
            .as_ref()
            .is_some_and(|person| request.approvals.iter().any(|approval| approval.approver_id == *person));
        if request.status != Status::Pending
            || request.group.as_deref() != Some(notification.group.as_str())
            || approved
        {
            continue;
        }
        let amount = total_field
            .as_deref()
            .and_then(|path| signoff_policy::digest::field_number(path, &request.args, &request.context));
        items.push(DigestItem::of(&request, amount));
    }
    if items.is_empty() {
        let reason = "not sent: every request it lists was decided or moved on".to_string();
        record(state, claim, NotificationOutcome::Skipped { reason }, Duration::ZERO).await;
        return;
    }
    let view = DigestView {
        public_url: state.public_url.clone(),
        group: notification.group.clone(),
        person: notification.approver_id.clone(),
        items,
        total_field,
        now: signoff_store::now(),
    };
    let started = Instant::now();
    let outcome = match sender.digest(notification, &view).await {
        Ok(provider_ref) => NotificationOutcome::Sent { provider_ref: Some(provider_ref) },
        Err(error) => failure(state, notification, error),
    };
    record(state, claim, outcome, started.elapsed()).await;
}

/// Why a reminder has nothing left to say when it is due to be sent, if it has not: the request was decided or moved
/// on, or its addressee approved meanwhile.
fn reminder_needless(notification: &Notification, request: &Request) -> Option<String> {
    if request.status != Status::Pending {
        return Some(format!("not sent: the request is {}", request.status.as_str()));
    }
    if request.group.as_deref() != Some(notification.group.as_str()) {
        return Some("not sent: the request moved to another group".into());
    }
    let approved = notification
        .approver_id
        .as_ref()
        .is_some_and(|person| request.approvals.iter().any(|approval| approval.approver_id == *person));
    approved.then(|| "not sent: its addressee has approved".into())
}

/// What a failed send becomes: given up when it is permanent or retries ran out, else retried after the provider's
/// `Retry-After`, or the callback retry ladder's next step.
fn failure(state: &AppState, notification: &Notification, error: ProviderError) -> NotificationOutcome {
    let failed = notification.attempts + 1;
    let age = (signoff_store::now() - notification.created_at).to_std().unwrap_or_default();
    let next = state.callbacks.retry.next_attempt_after(failed, age, &mut rand::rng());
    match (error.permanent, error.retry_after.or(next)) {
        (false, Some(wait)) => NotificationOutcome::Retry {
            error: error.message,
            next_attempt_at: signoff_store::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
        },
        _ => NotificationOutcome::Failed { error: error.message },
    }
}

async fn record(state: &AppState, claim: &ClaimedNotification, outcome: NotificationOutcome, elapsed: Duration) {
    let attempt = NotificationAttempt {
        at: signoff_store::now(),
        outcome,
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    };
    match state.store.record_notification_attempt(claim, attempt).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(id = %claim.notification.id, "a notification's lease ran out while it was sent"),
        Err(error) => tracing::error!(%error, id = %claim.notification.id, "cannot record a notification attempt"),
    }
}

/// Slack as a channel: asks are messages (a DM to the member id, or a post in a shared channel); updates edit them.
pub struct SlackSender(pub signoff_notify::slack::SlackClient);

#[async_trait]
impl ChannelSender for SlackSender {
    async fn ask(&self, n: &Notification, request: &Request, view: &RequestView) -> Result<ProviderRef, ProviderError> {
        self.0.post_request(&n.address, request, view).await
    }

    async fn update(
        &self,
        _: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<Option<ProviderRef>, ProviderError> {
        self.0.update_request(message, request, view).await.map(|()| None)
    }

    async fn remind(
        &self,
        _: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        self.0.post_reminder(message, request, view).await
    }

    async fn digest(&self, n: &Notification, digest: &DigestView) -> Result<ProviderRef, ProviderError> {
        self.0.post_digest(&n.address, digest).await
    }
}

/// Discord as a channel: asks are messages (a DM to the member's user id, or a post in the group's
/// `discord_channel`); updates edit them; reminders reply to them.
pub struct DiscordSender(pub signoff_notify::discord::DiscordClient);

#[async_trait]
impl ChannelSender for DiscordSender {
    async fn ask(&self, n: &Notification, request: &Request, view: &RequestView) -> Result<ProviderRef, ProviderError> {
        use signoff_notify::discord::Recipient;
        let to = if n.approver_id.is_some() { Recipient::User(&n.address) } else { Recipient::Channel(&n.address) };
        self.0.post_request(to, request, view).await
    }

    async fn update(
        &self,
        _: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<Option<ProviderRef>, ProviderError> {
        self.0.update_request(message, request, view).await.map(|()| None)
    }

    async fn remind(
        &self,
        _: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        self.0.post_reminder(message, request, view).await
    }
}

/// Email as a channel: asks carry signed, single-use Approve and Reject links; updates reply in the ask's thread.
pub struct EmailSender {
    pub mailer: signoff_notify::email::Mailer,
    pub signer: signoff_notify::links::LinkSigner,
}

#[async_trait]
impl ChannelSender for EmailSender {
    async fn ask(&self, n: &Notification, request: &Request, view: &RequestView) -> Result<ProviderRef, ProviderError> {
        self.mailer.send_request(&n.address, request, view, &self.links(n, request, view)?, None).await
    }

    async fn update(
        &self,
        n: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<Option<ProviderRef>, ProviderError> {
        self.mailer.send_update(&n.address, message, request, view).await.map(Some)
    }

    async fn remind(
        &self,
        n: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        self.mailer.send_request(&n.address, request, view, &self.links(n, request, view)?, Some(message)).await
    }

    async fn digest(&self, n: &Notification, digest: &DigestView) -> Result<ProviderRef, ProviderError> {
        self.mailer.send_digest(&n.address, digest).await
    }
}

impl EmailSender {
    /// Fresh signed links for the person `n` is addressed to.
    fn links(
        &self,
        n: &Notification,
        request: &Request,
        view: &RequestView,
    ) -> Result<signoff_notify::email::EmailLinks, ProviderError> {
        let person = n.approver_id.as_ref().ok_or_else(|| ProviderError::permanent("an email ask needs a person"))?;
        let now = signoff_store::now();
        Ok(signoff_notify::email::EmailLinks::signed(&self.signer, &view.public_url, request, person, &n.group, now))
    }
}

/// SMS as a channel: asks carry the person's reply code and a short signed link; once the request is decided or
/// moves on, a short follow-up says so (not to the person who decided it by SMS: the TwiML answer told them).
pub struct SmsSender {
    pub client: signoff_notify::sms::TwilioClient,
    pub signer: signoff_notify::links::LinkSigner,
    /// Where reply codes are kept.
    pub store: Arc<dyn signoff_store::Store>,
}

#[async_trait]
impl ChannelSender for SmsSender {
    async fn ask(&self, n: &Notification, request: &Request, view: &RequestView) -> Result<ProviderRef, ProviderError> {
        let (code, link) = self.code_and_link(n, request, view).await?;
        self.client.send(&n.address, &signoff_notify::sms::ask_text(request, &code, &link)).await
    }

    async fn update(
        &self,
        n: &Notification,
        _: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<Option<ProviderRef>, ProviderError> {
        if signoff_notify::sms::decided_by_sms_reply(request, n.approver_id.as_ref()) {
            return Ok(None);
        }
        let (code, _) = self.code_and_link(n, request, view).await?;
        match signoff_notify::sms::update_text(request, view, &code) {
            Some(text) => self.client.send(&n.address, &text).await.map(Some),
            None => Ok(None),
        }
    }

    async fn remind(
        &self,
        n: &Notification,
        _: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        let (code, link) = self.code_and_link(n, request, view).await?;
        self.client.send(&n.address, &signoff_notify::sms::reminder_text(request, &code, &link)).await
    }
}

impl SmsSender {
    /// The person's reply code for the request (the one they hold, else a new one) and the short link sent with it.
    async fn code_and_link(
        &self,
        n: &Notification,
        request: &Request,
        view: &RequestView,
    ) -> Result<(String, String), ProviderError> {
        let person = n.approver_id.as_ref().ok_or_else(|| ProviderError::permanent("an SMS ask needs a person"))?;
        let reply = self
            .store
            .reply_code(person, request.id)
            .await
            .map_err(|error| ProviderError::transient(format!("cannot assign a reply code: {error}")))?;
        let mac = self.signer.short_link_mac(&reply.link_id, request.id, person);
        let link = format!("{}{}{}{mac}", view.public_url, crate::channels::sms::SHORT_LINK_PATH, reply.link_id);
        Ok((reply.code, link))
    }
}

/// Telegram as a channel: asks are bot messages with inline buttons; updates edit them; reminders reply to them.
pub struct TelegramSender(pub signoff_notify::telegram::TelegramClient);

#[async_trait]
impl ChannelSender for TelegramSender {
    async fn ask(&self, n: &Notification, request: &Request, view: &RequestView) -> Result<ProviderRef, ProviderError> {
        self.0.send_request(&n.address, request, view).await
    }

    async fn update(
        &self,
        _: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<Option<ProviderRef>, ProviderError> {
        self.0.update_request(message, request, view).await.map(|()| None)
    }

    async fn remind(
        &self,
        _: &Notification,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        self.0.send_reminder(message, request, view).await
    }
}
