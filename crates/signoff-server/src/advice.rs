//! Advice over the stored history: the findings `GET /v1/advice`, `signoff advise` and the dashboard's Advice page
//! show, computed by `signoff-insights` against the policy in force, and applying one finding's draft as a new
//! policy version (through [`service::apply_policy`], like `PUT /v1/policy`).

use crate::AppState;
use crate::error::ApiError;
use crate::insights::{DEFAULT_SINCE, may_read_stats, parse_since, requests_since};
use crate::service;
use chrono::{DateTime, Utc};
use signoff_domain::{ApiKey, Role};
use signoff_insights::advice::{AdviceOptions, advise, policy_of_finding};
use signoff_wire::advice::{AdviceReport, Finding};
use signoff_wire::{ErrorCode, PolicyView};

/// Human decisions a rule needs before it gets findings, unless the caller says otherwise.
pub const DEFAULT_MIN_DECISIONS: u64 = 20;

/// The options of an advice query as written in a query string, a form or a body (each absent one takes its
/// default), over the requests created from `since` until `now`.
pub fn options(since: Option<&str>, min: Option<u64>, now: DateTime<Utc>) -> Result<AdviceOptions, ApiError> {
    let mut options = AdviceOptions::new(parse_since(since.unwrap_or(DEFAULT_SINCE), now)?, now);
    match min {
        Some(0) => return Err(ApiError::invalid("min: a rule needs at least 1 human decision to get advice")),
        Some(min) => options.min_decisions = min,
        None => options.min_decisions = DEFAULT_MIN_DECISIONS,
    }
    Ok(options)
}

/// The findings over the requests created in `[options.since, options.until)` against the policy in force, for
/// approvers and admins.
pub async fn advice(state: &AppState, by: &ApiKey, options: AdviceOptions) -> Result<AdviceReport, ApiError> {
    may_read_stats(by)?;
    report(state, options).await
}

/// [`advice`] for a caller already known to be a person of the policy (a dashboard session).
pub async fn report(state: &AppState, options: AdviceOptions) -> Result<AdviceReport, ApiError> {
    let active = state.policy.current();
    let requests = requests_since(state.store.as_ref(), options.since).await?;
    let findings = advise(&active.policy, &requests, &options);
    Ok(AdviceReport {
        since: options.since,
        until: options.until,
        policy_version: active.version(),
        policy_hash: active.policy.content_hash(),
        min_decisions: options.min_decisions,
        findings,
    })
}

/// Finds finding `id` again (same period and minimum) and applies its draft as a new policy version; admins only.
/// Refused with `409 policy_changed` when the finding was made for another version than the one in force (or a
/// version was applied elsewhere that this server has not picked up yet), `404` when the advice no longer has it,
/// `400` when it suggests no policy change.
pub async fn apply(
    state: &AppState,
    by: &ApiKey,
    id: &str,
    options: AdviceOptions,
) -> Result<(Finding, PolicyView), ApiError> {
    if by.role != Role::Admin {
        return Err(ApiError::forbidden(format!("a key with role `{}` cannot apply advice", by.role)));
    }
    let Some(made_for) = policy_of_finding(id) else { return Err(ApiError::not_found(&format!("finding `{id}`"))) };
    let active = state.policy.current();
    let stored = state.store.current_policy_version().await?;
    if !active.policy.content_hash().starts_with(made_for) || stored != active.version() {
        return Err(ApiError::new(
            ErrorCode::PolicyChanged,
            format!(
                "finding `{id}` was made for another policy version than the one in force (version {stored}); get the \
                 advice again"
            ),
        ));
    }
    let report = report(state, options).await?;
    let finding = report.findings.into_iter().find(|f| f.id == id).ok_or_else(|| {
        ApiError::not_found(&format!("finding `{id}` (the advice over this period no longer has it)"))
    })?;
    let Some(draft) = &finding.draft else {
        return Err(ApiError::invalid(format!("finding `{id}` ({}) suggests no policy change to apply", finding.kind)));
    };
    let (_, view) = service::apply_policy(state, by, &draft.source).await?;
    Ok((finding, view))
}
