//! The digest worker: for each group with a `digest`, at each digest time, one message per member and channel
//! (Slack and email) listing the group's pending requests that member may decide — or, with fewer than the digest's
//! `min` pending, the requests not asked yet asked one by one — and, between digest times, urgent requests asked at
//! once. Digest times live in the store (`digest_schedules`): a digest is taken by moving its group's next time on in
//! the transaction that writes its notifications, so each is sent once across restarts and replicas; the
//! notification worker sends them with its retries.

use crate::AppState;
use crate::notify::{DIGEST_CHANNELS, is_urgent, member_asks};
use chrono::{DateTime, Utc};
use signoff_domain::{ApproverId, Channel, Kind, Request, Status};
use signoff_policy::{Group, Policy};
use signoff_store::{NewDigest, RequestFilter, StoreError};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::watch;

/// How often the worker looks at the digest groups.
const TICK: Duration = Duration::from_millis(500);
/// The most pending requests of one group a digest lists.
const MAX_LISTED: u32 = 500;

/// Runs until `shutdown` turns true.
pub(crate) async fn run(state: AppState, channels: BTreeSet<Channel>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let policy = state.policy.current();
        for group in policy.policy.groups().filter(|g| g.digest.is_some()) {
            if let Err(error) = tick(&state, &policy.policy, group, &channels, signoff_store::now()).await {
                tracing::warn!(%error, group = %group.name, "the digest worker failed; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One look at one digest group at `now`.
async fn tick(
    state: &AppState,
    policy: &Policy,
    group: &Group,
    configured: &BTreeSet<Channel>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(digest) = &group.digest else { return Ok(()) };
    let digest_channels = |c: &Channel| configured.contains(c) && DIGEST_CHANNELS.contains(c);
    let Some(due) = state.store.digest_due_at(&group.name).await? else {
        return state.store.schedule_digest(&group.name, digest.schedule.next_after(now)).await;
    };
    let next = digest.schedule.next_after(now);
    if due > now {
        if due > next {
            // The policy now says an earlier time (a shorter `every`, other `at` times).
            state.store.claim_digest(&group.name, due, next, Vec::new()).await?;
        }
        if digest.urgent_after.is_some() {
            let urgent: Vec<Request> =
                pending(state, &group.name).await?.into_iter().filter(|r| is_urgent(digest, r, now)).collect();
            ask_one_by_one(state, policy, &group.name, &urgent, &digest_channels, now).await?;
        }
        return Ok(());
    }
    let pending = pending(state, &group.name).await?;
    if pending.len() < digest.min as usize {
        if state.store.claim_digest(&group.name, due, next, Vec::new()).await? {
            ask_one_by_one(state, policy, &group.name, &pending, &digest_channels, now).await?;
        }
        return Ok(());
    }
    let digests = digests_for(policy, &group.name, &pending, &digest_channels, now);
    state.store.claim_digest(&group.name, due, next, digests).await?;
    Ok(())
}

/// The group's pending approvals, oldest first (questions are always asked one by one, at once).
async fn pending(state: &AppState, group: &str) -> Result<Vec<Request>, StoreError> {
    let filter = RequestFilter {
        status: Some(Status::Pending),
        group: Some(group.to_string()),
        limit: MAX_LISTED,
        ..RequestFilter::default()
    };
    let mut requests = state.store.list_requests(filter).await?;
    requests.retain(|r| r.kind == Kind::Approval && r.group.as_deref() == Some(group));
    requests.reverse();
    Ok(requests)
}

/// Asks each of `requests` one by one on the digest channels (the store skips the asks already written).
async fn ask_one_by_one(
    state: &AppState,
    policy: &Policy,
    group: &str,
    requests: &[Request],
    channels: &impl Fn(&Channel) -> bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for request in requests {
        let asks = member_asks(policy, group, channels, now);
        if !asks.is_empty() {
            state.store.add_asks(request.id, asks).await?;
        }
    }
    Ok(())
}

/// One digest per member (the member on call, for a group with a rotation) and digest channel, listing the pending
/// requests that member may decide: not those they answer for, nor those they approved already. A member with
/// none gets nothing.
fn digests_for(
    policy: &Policy,
    group: &str,
    pending: &[Request],
    channels: &impl Fn(&Channel) -> bool,
    now: DateTime<Utc>,
) -> Vec<NewDigest> {
    member_asks(policy, group, channels, now)
        .into_iter()
        .filter_map(|ask| {
            let person = ask.approver_id.clone()?;
            let requests: Vec<_> =
                pending.iter().filter(|request| may_decide(&person, request)).map(|request| request.id).collect();
            (!requests.is_empty()).then_some(NewDigest { ask, requests })
        })
        .collect()
}

/// Whether `person`, a member of the request's group, may still decide it: they do not answer for it, and have not
/// approved it yet. (The service decides; this only keeps a digest from listing what it would refuse.)
fn may_decide(person: &ApproverId, request: &Request) -> bool {
    request.requested_by.responsible.as_ref() != Some(person)
        && !request.approvals.iter().any(|approval| approval.approver_id == *person)
}
