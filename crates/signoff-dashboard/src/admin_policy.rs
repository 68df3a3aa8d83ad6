//! `/admin/policy`: the policy in force and its stored versions, a line diff between any two, and a draft tested
//! against history with the same replay as `signoff policy test DRAFT --since 30d`
//! (`signoff_server::replay::replay_history`).

use crate::Dashboard;
use crate::admin::{Admin, Paged};
use crate::page::{Chrome, PageError, render, sentence};
use crate::view::Moment;
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use signoff_domain::PolicyVersion;
use signoff_policy::line_diff::{DiffLine, diff};
use signoff_policy::{Policy, ReplayReport};

/// How far back a draft is replayed unless the form says otherwise.
const DEFAULT_SINCE: &str = "30d";

struct VersionRow {
    version: i64,
    hash: String,
    applied_by: String,
    applied: Moment,
}

/// The policy in force.
struct InForce {
    version: String,
    hash: String,
    applied_by: String,
    applied: Option<Moment>,
    source: String,
}

/// A diff between two stored versions.
struct VersionDiff {
    from: i64,
    to: i64,
    lines: Vec<DiffLine>,
}

/// What testing a draft showed: the replay, or the draft's problems.
enum Tested {
    Replayed { since: String, report: ReplayReport, warnings: Vec<String> },
    Invalid { problems: Vec<String> },
}

#[derive(Template)]
#[template(path = "admin_policy.html")]
struct PolicyPage {
    chrome: Chrome,
    csrf: String,
    in_force: InForce,
    versions: Paged<VersionRow>,
    /// Every stored version number, newest first, for the diff form.
    numbers: Vec<i64>,
    from: i64,
    to: i64,
    diff: Option<VersionDiff>,
    draft: String,
    since: String,
    tested: Option<Tested>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PolicyParams {
    from: Option<i64>,
    to: Option<i64>,
    page: Option<usize>,
}

/// `GET /admin/policy`.
pub async fn show(
    State(dashboard): State<Dashboard>,
    admin: Admin,
    Query(params): Query<PolicyParams>,
) -> Result<Response, PageError> {
    let draft = dashboard.app.policy.current().policy.source().to_string();
    page(&dashboard, &admin, params, Test { draft, since: DEFAULT_SINCE.into(), tested: None }, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct TestForm {
    csrf: Option<String>,
    draft: String,
    since: Option<String>,
}

/// The draft form's contents and what testing it showed.
struct Test {
    draft: String,
    since: String,
    tested: Option<Tested>,
}

/// `POST /admin/policy/test`: replays the pasted draft against the requests of the chosen window.
pub async fn test(
    State(dashboard): State<Dashboard>,
    admin: Admin,
    Form(form): Form<TestForm>,
) -> Result<Response, PageError> {
    admin.signed_in.check_csrf(form.csrf.as_deref())?;
    let since = form.since.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let since = since.unwrap_or_else(|| DEFAULT_SINCE.into());
    let from = crate::admin::since(&since)
        .map_err(|message| admin.error(StatusCode::BAD_REQUEST, "That did not work", message))?;
    let (tested, status) = match Policy::parse(&form.draft) {
        Ok(draft) => {
            let report = signoff_server::replay::replay_history(dashboard.app.store.as_ref(), &draft, from)
                .await
                .map_err(|e| admin.failed(e))?;
            let warnings = draft
                .warnings()
                .iter()
                .map(|w| sentence(&format!("line {}, column {}: {}", w.line, w.column, w.message)))
                .collect();
            (Tested::Replayed { since: since.clone(), report, warnings }, StatusCode::OK)
        }
        Err(errors) => {
            let problems = errors.iter().map(|e| sentence(&e.to_string())).collect();
            (Tested::Invalid { problems }, StatusCode::BAD_REQUEST)
        }
    };
    let test = Test { draft: form.draft, since, tested: Some(tested) };
    page(&dashboard, &admin, PolicyParams::default(), test, status).await
}

async fn page(
    dashboard: &Dashboard,
    admin: &Admin,
    params: PolicyParams,
    test: Test,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut versions = dashboard.app.store.policy_versions().await.map_err(|e| admin.failed(e))?;
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
    // Unless two are chosen: the latest change (the version before the newest against the newest).
    let to = params.to.or(numbers.first().copied()).unwrap_or(0);
    let from = params.from.or(numbers.get(1).copied()).unwrap_or(0);
    let diff = version_diff(admin, &versions, from, to)?;
    let active = dashboard.app.policy.current();
    let in_force = InForce {
        version: match &active.record {
            Some(record) => format!("version {}", record.version),
            None => "the built-in default (no version applied yet)".into(),
        },
        hash: active.policy.content_hash(),
        applied_by: active.record.as_ref().map(|r| r.created_by.clone()).unwrap_or_default(),
        applied: active.record.as_ref().map(|r| Moment::of(r.created_at)),
        source: active.policy.source().to_string(),
    };
    let rows = versions
        .iter()
        .map(|v| VersionRow {
            version: v.version,
            hash: v.content_hash.chars().take(12).collect(),
            applied_by: v.created_by.clone(),
            applied: Moment::of(v.created_at),
        })
        .collect();
    let query = [("from", from.to_string()), ("to", to.to_string())];
    let view = PolicyPage {
        chrome: Chrome::new(Some(admin.signed_in.person()), "admin"),
        csrf: admin.signed_in.session.csrf_token.clone(),
        in_force,
        versions: Paged::of(rows, params.page, "/admin/policy", &query, "page"),
        numbers,
        from,
        to,
        diff,
        draft: test.draft,
        since: test.since,
        tested: test.tested,
    };
    Ok(render(status, &view))
}

/// The diff between stored versions `from` and `to`; none while fewer than two are stored.
fn version_diff(
    admin: &Admin,
    versions: &[PolicyVersion],
    from: i64,
    to: i64,
) -> Result<Option<VersionDiff>, PageError> {
    if versions.len() < 2 {
        return Ok(None);
    }
    let find = |number: i64| {
        versions.iter().find(|v| v.version == number).ok_or_else(|| {
            admin.error(StatusCode::NOT_FOUND, "Not found", format!("There is no policy version {number}."))
        })
    };
    let (old, new) = (find(from)?, find(to)?);
    Ok(Some(VersionDiff { from, to, lines: diff(&old.source, &new.source) }))
}
