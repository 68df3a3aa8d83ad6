//! Replaying stored requests against a draft policy: what `signoff policy test DRAFT --since 30d` prints and the
//! dashboard's policy page shows, loaded and compared by one function.

use chrono::{DateTime, Utc};
use signoff_domain::Request;
use signoff_policy::{Policy, ReplayRecord, ReplayReport, replay};
use signoff_store::{RequestFilter, Store, StoreError};

/// Requests read from the store per query.
const PAGE: u32 = 500;

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
    let mut records = Vec::new();
    let mut before = None;
    loop {
        let filter = RequestFilter { before, created_since: Some(since), limit: PAGE, ..RequestFilter::default() };
        let page = store.list_requests(filter).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for request in page {
            let Some(verdict) = request.policy.as_ref().map(|placed| placed.verdict.clone()) else { continue };
            records.push((replay_record(request), verdict));
        }
    }
    Ok(replay(draft, records))
}
