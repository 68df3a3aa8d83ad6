//! Replaying stored requests against a draft policy: what `signoff policy test DRAFT --since 30d` prints and the
//! dashboard's policy page shows, loaded and compared by one function.

use chrono::{DateTime, Utc};
use signoff_domain::Request;
use signoff_policy::{Policy, ReplayRecord, ReplayReport, replay};
use signoff_store::{Store, StoreError};

/// What policy sees of a request.
pub fn replay_record(request: Request) -> ReplayRecord {
    ReplayRecord::of_request(&request)
}

/// Replays every request created since `since` that policy placed (newest first, as stored) against `draft`, and
/// compares each outcome with the stored verdict.
pub async fn replay_history(
    store: &dyn Store,
    draft: &Policy,
    since: DateTime<Utc>,
) -> Result<ReplayReport, StoreError> {
    let records: Vec<_> = crate::insights::requests_since(store, since)
        .await?
        .into_iter()
        .filter_map(|request| {
            let verdict = request.policy.as_ref().map(|placed| placed.verdict.clone())?;
            Some((replay_record(request), verdict))
        })
        .collect();
    Ok(replay(draft, records))
}
