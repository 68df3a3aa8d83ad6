//! `/advice`: which gates to relax or tighten over a period (`signoff_server::advice`, as `GET /v1/advice` and
//! `signoff advise`), each finding with its evidence, its draft's line diff and the draft's replay over history; for
//! admins an Apply form that applies the draft as a new policy version (`POST /advice/apply`, through
//! `signoff_server::advice::apply`) and goes to the policy page.

use crate::Dashboard;
use crate::admin::Admin;
use crate::page::{Chrome, PageError, render, sentence};
use crate::session::SignedIn;
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signoff_insights::advice::percent;
use signoff_policy::line_diff::{DiffLine, diff};
use signoff_server::ApiError;
use signoff_server::advice::{DEFAULT_MIN_DECISIONS, options, report};
use signoff_server::insights::DEFAULT_SINCE;
use signoff_wire::ErrorCode;
use signoff_wire::advice::{Finding, FindingKind};

#[derive(Debug, Default, Deserialize)]
pub struct AdviceParams {
    since: Option<String>,
    min: Option<String>,
}

struct BucketRow {
    range: String,
    decided: u64,
    unchanged: String,
}

struct ChangeRow {
    from: String,
    to: String,
    count: u64,
    examples: Vec<String>,
}

struct DraftView {
    diff_id: String,
    lines: Vec<DiffLine>,
    total: u64,
    changed: u64,
    changes: Vec<ChangeRow>,
}

struct FindingView {
    id: String,
    kind: &'static str,
    /// The kind as the API spells it.
    code: &'static str,
    message: String,
    evidence: Vec<(&'static str, String)>,
    buckets: Vec<BucketRow>,
    draft: Option<DraftView>,
}

#[derive(Template)]
#[template(path = "advice.html")]
struct AdvicePage {
    chrome: Chrome,
    csrf: String,
    admin: bool,
    since: String,
    min: String,
    policy_version: i64,
    findings: Vec<FindingView>,
}

/// `GET /advice`: the findings over `since` (default 30 days) for rules with at least `min` human decisions.
pub async fn show(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Query(params): Query<AdviceParams>,
) -> Result<Response, PageError> {
    let since = params.since.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let since = since.unwrap_or_else(|| DEFAULT_SINCE.to_string());
    let min = params.min.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let min = min.unwrap_or_else(|| DEFAULT_MIN_DECISIONS.to_string());
    let refused = |error: ApiError| PageError::from(error).for_person(signed_in.person());
    let count = min.parse::<u64>().map_err(|_| refused(ApiError::invalid("min: expected a whole number")))?;
    let options = options(Some(&since), Some(count), signoff_store::now()).map_err(refused)?;
    // A session is a person of the policy, who may read advice as an approver may.
    let report = report(&dashboard.app, options).await.map_err(refused)?;
    let current = dashboard.app.policy.current().policy.source().to_string();
    let view = AdvicePage {
        chrome: Chrome::new(Some(signed_in.person()), "advice"),
        csrf: signed_in.session.csrf_token.clone(),
        admin: signed_in.admin_key.is_some(),
        since,
        min,
        policy_version: report.policy_version,
        findings: report.findings.iter().map(|f| finding_view(f, &current)).collect(),
    };
    Ok(render(StatusCode::OK, &view))
}

#[derive(Debug, Deserialize)]
pub struct ApplyForm {
    csrf: Option<String>,
    id: String,
    since: Option<String>,
    min: Option<String>,
}

/// `POST /advice/apply`: applies one finding's draft as a new policy version, then shows the policy page.
pub async fn apply(State(dashboard): State<Dashboard>, admin: Admin, Form(form): Form<ApplyForm>) -> Response {
    if let Err(refused) = admin.signed_in.check_csrf(form.csrf.as_deref()) {
        return refused.into_response();
    }
    let min = match form.min.as_deref().map(str::trim).filter(|m| !m.is_empty()).map(str::parse::<u64>) {
        None => None,
        Some(Ok(min)) => Some(min),
        Some(Err(_)) => {
            return admin
                .error(StatusCode::BAD_REQUEST, "That did not work", "Min: expected a whole number.")
                .into_response();
        }
    };
    let since = form.since.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let applied = match options(since, min, signoff_store::now()) {
        Ok(options) => signoff_server::advice::apply(&dashboard.app, &admin.key, &form.id, options).await,
        Err(error) => Err(error),
    };
    match applied {
        Ok(_) => Redirect::to("/admin/policy").into_response(),
        Err(error) if error.code == ErrorCode::PolicyChanged => admin
            .error(
                StatusCode::CONFLICT,
                "The policy changed",
                "This advice was made for another policy version than the one in force. Reload the Advice page to \
                 see what it suggests now.",
            )
            .into_response(),
        Err(error) => PageError::from(error).for_person(admin.signed_in.person()).into_response(),
    }
}

fn finding_view(finding: &Finding, current: &str) -> FindingView {
    let figures = &finding.evidence.figures;
    let rate = |r: Option<f64>| r.map_or("-".to_string(), percent);
    let mut evidence = vec![
        ("Requests", figures.requests.to_string()),
        ("Decided by a person", figures.human_decided.to_string()),
        ("Approved unchanged", format!("{} ({})", figures.approved_unchanged, rate(figures.unchanged_rate))),
        ("Approved with edits", format!("{} ({})", figures.edited, rate(figures.edit_rate))),
        ("Rejected", figures.rejected.to_string()),
        ("Median time to decide", figures.time_to_decision.p50_s.map_or("-".to_string(), |s| format!("{s:.0} s"))),
    ];
    if let Some(top) = &finding.evidence.top_reason {
        evidence.push(("Top rejection reason", format!("{}: {} ({})", top.reason, top.count, percent(top.share))));
    }
    if let Some(share) = finding.evidence.share_of_decisions {
        evidence.push(("Share of all human decisions", percent(share)));
    }
    if figures.sampled_reviews > 0 {
        evidence.push(("Sampled reviews flagged", format!("{} of {}", figures.flags, figures.sampled_reviews)));
    }
    let buckets = finding
        .calibration
        .iter()
        .flat_map(|c| &c.buckets)
        .filter(|b| b.human_decided > 0)
        .map(|b| BucketRow {
            range: format!("{:.1}–{:.1}", b.from, b.to),
            decided: b.human_decided,
            unchanged: rate(b.unchanged_rate),
        })
        .collect();
    let draft = finding.draft.as_ref().map(|draft| DraftView {
        diff_id: format!("diff-{}", finding.id),
        lines: diff(current, &draft.source),
        total: draft.replay.total,
        changed: draft.replay.changed,
        changes: draft
            .replay
            .transitions
            .iter()
            .map(|t| ChangeRow {
                from: t.from.to_string(),
                to: t.to.to_string(),
                count: t.count,
                examples: t.examples.clone(),
            })
            .collect(),
    });
    FindingView {
        id: finding.id.clone(),
        kind: kind_label(finding.kind),
        code: finding.kind.as_str(),
        message: sentence(&finding.message),
        evidence,
        buckets,
        draft,
    }
}

fn kind_label(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::RelaxAutoApprove => "Relax: approve by policy",
        FindingKind::ConfidenceThreshold => "Confidence threshold",
        FindingKind::TightenCheckBeforeAsking => "Tighten: check before asking",
        FindingKind::AddTier => "Add a tier",
        FindingKind::GateAgain => "Gate again",
        FindingKind::SampleMore => "Sample more",
    }
}
