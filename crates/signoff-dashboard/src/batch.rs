//! Batch review (`/batch?group=NAME`, where a digest's "Review all" leads): the signed-in person's pending requests of
//! one group that they may decide, together, each with a checkbox to leave it out; one Approve-selected and one
//! Reject-selected action. Each selected request is decided on its own by `signoff_server::service::decide` (its own
//! `decided` or `approval_recorded` event, by that person, through the dashboard); a refusal of one is shown beside
//! it and does not stop the others.

use crate::Dashboard;
use crate::page::{Chrome, PageError, render, sentence};
use crate::session::SignedIn;
use crate::view::{Moment, key_args, span, time_left};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use signoff_domain::{Channel, Kind, Request, RequestId, Status};
use signoff_server::service::{self, Decider, DecisionInput};
use signoff_store::RequestFilter;

/// The most requests one batch page lists and one batch decides.
const MAX_BATCH: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct BatchParams {
    group: Option<String>,
}

/// One request on the page.
struct Item {
    id: String,
    title: String,
    action: String,
    key_args: Vec<String>,
    amount: Option<String>,
    requester: String,
    created: Moment,
    age: String,
    deadline: Option<Moment>,
    time_left: String,
    quorum: String,
    /// Left unchecked: the person took it out of the last batch.
    excluded: bool,
}

/// What became of one request of the batch just sent.
struct Outcome {
    id: String,
    title: String,
    ok: bool,
    text: String,
}

#[derive(Template)]
#[template(path = "batch.html")]
struct BatchPage {
    chrome: Chrome,
    group: String,
    items: Vec<Item>,
    total: Option<String>,
    reject_reasons: Vec<String>,
    csrf: String,
    outcomes: Vec<Outcome>,
    comment: String,
    error: Option<String>,
}

/// `GET /batch?group=NAME`.
pub async fn show(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Query(params): Query<BatchParams>,
) -> Result<Response, PageError> {
    let group = group_of(&dashboard, &signed_in, params.group.as_deref())?;
    page(&dashboard, &signed_in, &group, Vec::new(), &[], String::new(), None, StatusCode::OK).await
}

/// `POST /batch`: `csrf`, `group`, `verdict` (`approve` or `reject`), `comment`, `reason`, and one `id` per selected
/// request.
pub async fn decide(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    body: Bytes,
) -> Result<Response, PageError> {
    let mut csrf = None;
    let (mut group, mut verdict, mut comment, mut reason) = (None, String::new(), String::new(), String::new());
    let mut ids: Vec<String> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "csrf" => csrf = Some(value.into_owned()),
            "group" => group = Some(value.into_owned()),
            "verdict" => verdict = value.into_owned(),
            "comment" => comment = value.into_owned(),
            "reason" => reason = value.into_owned(),
            "id" => ids.push(value.into_owned()),
            _ => {}
        }
    }
    signed_in.check_csrf(csrf.as_deref())?;
    let group = group_of(&dashboard, &signed_in, group.as_deref())?;
    let approve = match verdict.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            let error = format!("`{other}` is not a decision: approve or reject.");
            let status = StatusCode::BAD_REQUEST;
            return page(&dashboard, &signed_in, &group, Vec::new(), &ids, comment, Some(error), status).await;
        }
    };
    if ids.is_empty() {
        let error = "No request was selected; tick the ones to decide.".to_string();
        return page(&dashboard, &signed_in, &group, Vec::new(), &ids, comment, Some(error), StatusCode::BAD_REQUEST)
            .await;
    }
    if ids.len() > MAX_BATCH {
        let error = format!("At most {MAX_BATCH} requests are decided at once; {} were selected.", ids.len());
        return page(&dashboard, &signed_in, &group, Vec::new(), &ids, comment, Some(error), StatusCode::BAD_REQUEST)
            .await;
    }
    let mut outcomes = Vec::with_capacity(ids.len());
    for raw in ids.iter() {
        let Ok(id) = raw.parse::<RequestId>() else {
            outcomes.push(Outcome {
                id: raw.clone(),
                title: raw.clone(),
                ok: false,
                text: format!("`{raw}` does not name a request."),
            });
            continue;
        };
        let title = match dashboard.app.store.request(id).await {
            Ok(request) => title_of(&request),
            Err(_) => id.to_string(),
        };
        let decider = Decider {
            person: signed_in.session.person.clone(),
            channel: Channel::Dashboard,
            key_id: signed_in.session.key_id.clone(),
        };
        let input = DecisionInput {
            approve,
            comment: Some(comment.clone()).filter(|c| !c.trim().is_empty()),
            reason: Some(reason.clone()).filter(|r| !r.is_empty()),
            args: None,
        };
        let outcome = match service::decide(&dashboard.app, id, decider, input).await {
            Ok(request) => Outcome { id: id.to_string(), title, ok: true, text: outcome_text(&request, approve) },
            Err(error) => Outcome { id: id.to_string(), title, ok: false, text: sentence(&error.message) },
        };
        outcomes.push(outcome);
    }
    // Whatever was left out stays unchecked; whatever failed stays listed (if still pending) for another try.
    page(&dashboard, &signed_in, &group, outcomes, &ids, String::new(), None, StatusCode::OK).await
}

/// The group the page is for: named, declared, and one the person belongs to.
fn group_of(dashboard: &Dashboard, signed_in: &SignedIn, group: Option<&str>) -> Result<String, PageError> {
    let policy = dashboard.app.policy.current().policy.clone();
    let Some(group) = group.map(str::trim).filter(|g| !g.is_empty()) else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Which group?",
            "Batch review is for one group: open it from the queue's Review all link, or add ?group=NAME.",
        )
        .for_person(signed_in.person()));
    };
    if policy.group(group).is_none() {
        return Err(PageError::new(StatusCode::NOT_FOUND, "Not found", format!("There is no group `{group}`."))
            .for_person(signed_in.person()));
    }
    if !policy.is_member(signed_in.session.person.as_str(), group) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            format!("You are not in the group `{group}`, so you cannot decide its requests."),
        )
        .for_person(signed_in.person()));
    }
    Ok(group.to_string())
}

/// The requests of `group` the person may approve now: pending approvals routed there, not ones they answer for,
/// not ones they approved already; oldest first.
async fn decidable(dashboard: &Dashboard, signed_in: &SignedIn, group: &str) -> Result<Vec<Request>, PageError> {
    let filter = RequestFilter {
        status: Some(Status::Pending),
        group: Some(group.to_string()),
        limit: MAX_BATCH as u32,
        ..RequestFilter::default()
    };
    let person = &signed_in.session.person;
    let mut requests = dashboard
        .app
        .store
        .list_requests(filter)
        .await
        .map_err(|e| PageError::from(e).for_person(signed_in.person()))?;
    requests.retain(|r| {
        r.kind == Kind::Approval
            && r.group.as_deref() == Some(group)
            && r.requested_by.responsible.as_ref() != Some(person)
            && !r.approvals.iter().any(|a| a.approver_id == *person)
    });
    requests.reverse();
    Ok(requests)
}

#[allow(clippy::too_many_arguments)]
async fn page(
    dashboard: &Dashboard,
    signed_in: &SignedIn,
    group: &str,
    outcomes: Vec<Outcome>,
    selected: &[String],
    comment: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let requests = decidable(dashboard, signed_in, group).await?;
    let policy = dashboard.app.policy.current().policy.clone();
    // The digest's `total` (none with `total: none`); `args.amount` for a group without a digest.
    let total_field = match policy.group(group).and_then(|g| g.digest.as_ref()) {
        Some(digest) => digest.total.clone(),
        None => Some(signoff_policy::digest::DEFAULT_TOTAL.to_string()),
    };
    let amount_of = |request: &Request| {
        total_field
            .as_deref()
            .and_then(|path| signoff_policy::digest::field_number(path, &request.args, &request.context))
    };
    let amounts: Vec<f64> = requests.iter().filter_map(amount_of).collect();
    let total = (!amounts.is_empty()).then(|| {
        let field = total_field.clone().unwrap_or_default();
        format!("{} ({field})", signoff_notify::digest::format_amount(amounts.iter().sum()))
    });
    let mut reject_reasons: Vec<String> = Vec::new();
    for request in &requests {
        for reason in &request.reject_reasons {
            if !reject_reasons.contains(reason) {
                reject_reasons.push(reason.clone());
            }
        }
    }
    let now = signoff_store::now();
    let items = requests
        .iter()
        .map(|request| {
            let id = request.id.to_string();
            Item {
                excluded: !selected.is_empty() && !selected.contains(&id),
                title: title_of(request),
                action: request.action.clone(),
                key_args: key_args(&request.args),
                amount: amount_of(request).map(signoff_notify::digest::format_amount),
                requester: request.requested_by.key_name.clone(),
                created: Moment::of(request.created_at),
                age: span(now - request.created_at),
                deadline: request.deadline_at.map(Moment::of),
                time_left: request.deadline_at.map(|d| time_left(d, now)).unwrap_or_default(),
                quorum: format!("{} of {} approvals", request.approvals.len(), request.approvals_required.max(1)),
                id,
            }
        })
        .collect();
    let view = BatchPage {
        chrome: Chrome::new(Some(signed_in.person()), "queue"),
        group: group.to_string(),
        items,
        total,
        reject_reasons,
        csrf: signed_in.session.csrf_token.clone(),
        outcomes,
        comment,
        error,
    };
    Ok(render(status, &view))
}

fn title_of(request: &Request) -> String {
    request.summary.clone().unwrap_or_else(|| request.action.clone())
}

/// "Approved." / "Your approval is recorded; 1 of 2." / "Rejected."
fn outcome_text(request: &Request, approve: bool) -> String {
    match (request.status, approve) {
        (Status::Pending, true) => format!(
            "Your approval is recorded: {} of {} approvals.",
            request.approvals.len(),
            request.approvals_required.max(1)
        ),
        (status, _) => sentence(status.as_str()),
    }
}
