//! The queue: what waits for the signed-in person (requests routed to their groups), soonest deadline first, with
//! filters by group, action and status, a search box, and pages; and who is on call in their groups with a rotation.

use crate::Dashboard;
use crate::page::{Chrome, PageError, render};
use crate::session::SignedIn;
use crate::view::{Moment, encode, key_args, span, time_left};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use signoff_domain::{Request, Status};
use signoff_policy::{EVERYONE, Policy};
use signoff_store::RequestFilter;

/// Rows per page.
const PAGE_SIZE: usize = 25;
/// The most recent matching requests the queue looks through (a store page is at most 500).
const SCAN: usize = 2_000;

#[derive(Debug, Default, Deserialize)]
pub struct QueueParams {
    group: Option<String>,
    action: Option<String>,
    status: Option<String>,
    q: Option<String>,
    page: Option<usize>,
}

/// One row of the queue.
struct Row {
    id: String,
    title: String,
    action: String,
    key_args: Vec<String>,
    requester: String,
    group: String,
    status: &'static str,
    created: Moment,
    age: String,
    deadline: Option<Moment>,
    time_left: String,
    quorum: String,
}

/// Who is on call in one of the person's groups with a rotation.
struct OnCallLine {
    group: String,
    person: String,
    /// Whether it is the signed-in person.
    you: bool,
    until: Moment,
    next: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    chrome: Chrome,
    on_call: Vec<OnCallLine>,
    rows: Vec<Row>,
    /// The groups with pending requests for the person, each with a "Review all" link to its batch page.
    review_all: Vec<(String, String)>,
    groups: Vec<String>,
    statuses: [&'static str; 5],
    group: String,
    action: String,
    status: String,
    q: String,
    total: usize,
    page: usize,
    pages: usize,
    previous: Option<String>,
    next: Option<String>,
}

/// `GET /`.
pub async fn show(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Query(params): Query<QueueParams>,
) -> Result<Response, PageError> {
    let policy = dashboard.app.policy.current().policy.clone();
    let person = signed_in.session.person.as_str().to_string();
    let status = match params.status.as_deref().filter(|s| !s.is_empty()) {
        None => Status::Pending,
        Some(text) => Status::parse(text).ok_or_else(|| {
            PageError::new(StatusCode::BAD_REQUEST, "Unknown status", format!("There is no status called `{text}`."))
                .for_person(signed_in.person())
        })?,
    };
    let group = params.group.clone().filter(|g| !g.is_empty());
    let action = params.action.clone().filter(|a| !a.is_empty());
    let q = params.q.clone().unwrap_or_default().trim().to_lowercase();
    let mut requests = scan(&dashboard, status, group.clone(), action.clone()).await?;
    requests.retain(|request| {
        policy.is_member(&person, request.group.as_deref().unwrap_or(EVERYONE))
            && (q.is_empty() || matches(request, &q))
    });
    requests.sort_by_key(|request| (request.deadline_at.is_none(), request.deadline_at, request.created_at));

    let mut review_all: Vec<String> = requests
        .iter()
        .filter(|r| r.status == Status::Pending && r.kind == signoff_domain::Kind::Approval)
        .filter_map(|r| r.group.clone())
        .collect();
    review_all.sort();
    review_all.dedup();
    let review_all = review_all.into_iter().map(|g| (crate::view::encode(&g), g)).collect();
    let total = requests.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = params.page.unwrap_or(1).clamp(1, pages);
    let now = signoff_store::now();
    let rows = requests.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).map(|r| row(r, now)).collect();
    let link = |to: usize| page_link(&params, to);
    let view = QueuePage {
        chrome: Chrome::new(Some(signed_in.person()), "queue"),
        on_call: on_call(&policy, &person, now),
        rows,
        review_all,
        groups: my_groups(&policy, &person),
        statuses: ["pending", "approved", "rejected", "expired", "cancelled"],
        group: group.unwrap_or_default(),
        action: action.unwrap_or_default(),
        status: status.as_str().to_string(),
        q: params.q.clone().unwrap_or_default(),
        total,
        page,
        pages,
        previous: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
    };
    Ok(render(StatusCode::OK, &view))
}

/// The newest requests with this status (and group and action, when given), at most [`SCAN`] of them.
async fn scan(
    dashboard: &Dashboard,
    status: Status,
    group: Option<String>,
    action: Option<String>,
) -> Result<Vec<Request>, PageError> {
    let mut found: Vec<Request> = Vec::new();
    loop {
        let filter = RequestFilter {
            status: Some(status),
            group: group.clone(),
            action: action.clone(),
            before: found.last().map(|r| r.id),
            limit: 500,
            ..RequestFilter::default()
        };
        let page = dashboard.app.store.list_requests(filter).await?;
        let full = page.len() == 500;
        found.extend(page);
        if !full || found.len() >= SCAN {
            return Ok(found);
        }
    }
}

/// Whether the search text (lowercase) is in the request's id, action, summary, requester or arguments.
fn matches(request: &Request, q: &str) -> bool {
    let fields = [
        request.id.to_string(),
        request.action.clone(),
        request.summary.clone().unwrap_or_default(),
        request.requested_by.key_name.clone(),
        request.args.to_string(),
    ];
    fields.iter().any(|field| field.to_lowercase().contains(q))
}

/// The groups `person` belongs to (every group, for `everyone`'s sake, when the policy declares no approvers).
pub(crate) fn my_groups(policy: &Policy, person: &str) -> Vec<String> {
    let mut groups: Vec<String> =
        policy.groups().map(|g| g.name.clone()).filter(|name| policy.is_member(person, name)).collect();
    groups.sort();
    groups
}

/// Who is on call now in each of `person`'s groups that has a rotation, and who is next.
fn on_call(policy: &Policy, person: &str, now: chrono::DateTime<chrono::Utc>) -> Vec<OnCallLine> {
    let name = |id: &str| policy.approver(id).map(|a| a.name.clone()).unwrap_or_else(|| id.to_string());
    my_groups(policy, person)
        .into_iter()
        .filter_map(|group| {
            let on_call = policy.group(&group)?.rotation.as_ref()?.on_call(now);
            Some(OnCallLine {
                person: name(on_call.person),
                you: on_call.person == person,
                until: Moment::of(on_call.until),
                next: name(on_call.next),
                group,
            })
        })
        .collect()
}

fn row(request: &Request, now: chrono::DateTime<chrono::Utc>) -> Row {
    let approved = request.approvals.len();
    Row {
        id: request.id.to_string(),
        title: request.summary.clone().unwrap_or_else(|| request.action.clone()),
        action: request.action.clone(),
        key_args: key_args(&request.args),
        requester: request.requested_by.key_name.clone(),
        group: request.group.clone().unwrap_or_else(|| EVERYONE.to_string()),
        status: request.status.as_str(),
        created: Moment::of(request.created_at),
        age: format!("{} ago", span(now - request.created_at)),
        deadline: request.deadline_at.map(Moment::of),
        time_left: match request.deadline_at {
            Some(deadline) if !request.status.is_final() => time_left(deadline, now),
            _ => String::new(),
        },
        quorum: format!("{approved} of {} approvals", request.approvals_required.max(1)),
    }
}

/// The queue's URL with the same filters, on page `to`.
fn page_link(params: &QueueParams, to: usize) -> String {
    let mut query: Vec<(&str, &str)> = Vec::new();
    for (name, value) in
        [("group", &params.group), ("action", &params.action), ("status", &params.status), ("q", &params.q)]
    {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            query.push((name, value));
        }
    }
    let page = to.to_string();
    query.push(("page", &page));
    let encoded: Vec<String> = query.iter().map(|(name, value)| format!("{name}={}", encode(value))).collect();
    format!("/?{}", encoded.join("&"))
}
