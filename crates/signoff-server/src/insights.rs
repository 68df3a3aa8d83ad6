//! Statistics over the stored history: the requests of a period, loaded page by page, and the approval statistics
//! that `GET /v1/stats`, `signoff stats` and the dashboard's Stats page show, computed by `signoff-insights`.

use crate::AppState;
use crate::error::ApiError;
use chrono::{DateTime, Utc};
use signoff_domain::{ApiKey, Request, Role};
use signoff_insights::stats::{self, GroupBy, StatsOptions, StatsReport};
use signoff_policy::parse_duration;
use signoff_store::{RequestFilter, Store, StoreError};

/// Requests read from the store per query.
const PAGE: u32 = 500;

/// The period statistics cover unless the caller says otherwise.
pub const DEFAULT_SINCE: &str = "30d";
/// The longest period statistics cover, in days (the longest policy duration).
pub const MAX_PERIOD_DAYS: i64 = 365;

/// Every request created at or after `since`, newest first (as stored).
pub async fn requests_since(store: &dyn Store, since: DateTime<Utc>) -> Result<Vec<Request>, StoreError> {
    let mut requests = Vec::new();
    let mut before = None;
    loop {
        let filter = RequestFilter { before, created_since: Some(since), limit: PAGE, ..RequestFilter::default() };
        let page = store.list_requests(filter).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        requests.extend(page);
    }
    Ok(requests)
}

/// The start of a statistics period: a policy duration back from `now` (`30d`, `12h`, `1w`) or an RFC 3339 time, at
/// most 365 days before `now` and not after it.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let text = text.trim();
    let since = match DateTime::parse_from_rfc3339(text) {
        Ok(time) => time.with_timezone(&Utc),
        Err(_) => {
            let back = parse_duration(text).map_err(|e| {
                ApiError::invalid(format!("since: {e}, or an RFC 3339 time such as `2026-11-01T00:00:00Z`"))
            })?;
            chrono::Duration::from_std(back)
                .ok()
                .and_then(|back| now.checked_sub_signed(back))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        }
    };
    if since > now {
        return Err(ApiError::invalid(format!("since: {} is in the future", since.to_rfc3339())));
    }
    if since < now - chrono::Duration::days(MAX_PERIOD_DAYS) {
        return Err(ApiError::invalid(format!("since: statistics cover at most the last {MAX_PERIOD_DAYS} days")));
    }
    Ok(since)
}

/// The threshold under which a person's approval counts as very fast: a policy duration (`10s`, `1m`).
pub fn parse_fast_under(text: &str) -> Result<std::time::Duration, ApiError> {
    parse_duration(text).map_err(|e| ApiError::invalid(format!("fast_under: {e}")))
}

/// The options of a statistics query as written in a query string or a form (each absent one takes its default),
/// for requests created from `since` until `now`.
pub fn options(
    since: Option<&str>,
    by: Option<&str>,
    fast_under: Option<&str>,
    now: DateTime<Utc>,
) -> Result<StatsOptions, ApiError> {
    let mut options = StatsOptions::new(parse_since(since.unwrap_or(DEFAULT_SINCE), now)?, now);
    options.by = by.map(str::parse::<GroupBy>).transpose().map_err(ApiError::invalid)?;
    if let Some(fast_under) = fast_under {
        options.fast_under = parse_fast_under(fast_under)?;
    }
    Ok(options)
}

/// Refuses keys that may not read statistics: agents, which see only their own requests.
pub fn may_read_stats(key: &ApiKey) -> Result<(), ApiError> {
    if matches!(key.role, Role::Approver | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("a key with role `{}` cannot read statistics", key.role)))
    }
}

/// The statistics of the requests created in `[options.since, options.until)`, for approvers and admins.
pub async fn stats(state: &AppState, by: &ApiKey, options: StatsOptions) -> Result<StatsReport, ApiError> {
    may_read_stats(by)?;
    Ok(report(state, &options).await?)
}

/// The statistics of `options`' period, for a caller already allowed to read them: [`stats`] checks an API key; the
/// dashboard's sessions are people of the policy, who may.
pub async fn report(state: &AppState, options: &StatsOptions) -> Result<StatsReport, StoreError> {
    let requests = requests_since(state.store.as_ref(), options.since).await?;
    Ok(stats::compute(&requests, options))
}
