//! Review: sampled post-execution reports (`mode: post`, drawn by a `review` rule) waiting for the signed-in person's
//! groups, newest first, each with what the agent did and why, and two forms: **Confirm** and **Flag** (with a
//! reason, a comment, and whether the action must be undone). They call `signoff_server::service::{confirm, flag}`,
//! as the API's `confirm` and `flag` endpoints do: confirming approves the report, flagging rejects it and tells the
//! agent; the rules (a flag needs its reason, who may review) are the service's.

use crate::Dashboard;
use crate::lists::{self, Pager};
use crate::page::{Chrome, PageError, render, sentence};
use crate::queue::my_groups;
use crate::session::SignedIn;
use crate::view::{Field, Moment, fields};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signoff_domain::{Channel, FlagInput, Request, RequestId, Status};
use signoff_server::service::{self, Decider};
use signoff_store::{RequestQuery, StoreError};

#[derive(Debug, Default, Deserialize)]
pub struct ReviewParams {
    page: Option<u32>,
    /// The report just decided here, to say what became of it.
    done: Option<String>,
}

struct Item {
    id: String,
    title: String,
    action: String,
    reasoning: Option<String>,
    args: Vec<Field>,
    requester: String,
    group: String,
    reported: Moment,
    /// The last attempt's refusal, and the reason and comment it carried, when this item's form was refused.
    error: Option<String>,
    reason: String,
    comment: String,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    chrome: Chrome,
    items: Vec<Item>,
    done: Option<String>,
    csrf: String,
    pager: Pager,
}

/// `GET /review`.
pub async fn show(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Query(params): Query<ReviewParams>,
) -> Result<Response, PageError> {
    let done = match params.done.as_deref().and_then(|id| id.parse::<RequestId>().ok()) {
        Some(id) => dashboard.app.store.request(id).await.ok().and_then(|request| outcome_text(&request)),
        None => None,
    };
    page(&dashboard, &signed_in, params.page, done, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: Option<String>,
    /// `confirm` or `flag`.
    verdict: String,
    /// A flag's reason.
    reason: Option<String>,
    comment: Option<String>,
    /// A flag's checkbox: the action must be undone.
    undo: Option<String>,
}

/// `POST /review/{id}`: confirms or flags one sampled report.
pub async fn decide(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<ReviewForm>,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.csrf.as_deref())?;
    let not_a_report = || {
        PageError::new(StatusCode::NOT_FOUND, "Not found", format!("There is no sampled report `{id}` to review."))
            .for_person(signed_in.person())
    };
    let request_id: RequestId = id.parse().map_err(|_| not_a_report())?;
    let request = dashboard.app.store.request(request_id).await.map_err(|error| match error {
        StoreError::NotFound => not_a_report(),
        other => PageError::from(other).for_person(signed_in.person()),
    })?;
    if request.sampled != Some(true) {
        return Err(not_a_report());
    }
    let comment = form.comment.filter(|c| !c.trim().is_empty());
    let reason = form.reason.unwrap_or_default();
    let refused = |message: String, status: StatusCode| Refusal {
        id: request_id,
        message,
        reason: reason.clone(),
        comment: comment.clone(),
        status,
    };
    let confirm = match form.verdict.as_str() {
        "confirm" => true,
        "flag" => false,
        other => {
            let message = format!("`{other}` is not a review verdict: confirm or flag.");
            return page(
                &dashboard,
                &signed_in,
                None,
                None,
                Some(refused(message, StatusCode::BAD_REQUEST)),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let decider = Decider {
        person: signed_in.session.person.clone(),
        channel: Channel::Dashboard,
        key_id: signed_in.session.key_id.clone(),
    };
    let reviewed = if confirm {
        service::confirm(&dashboard.app, request_id, decider, comment.clone()).await
    } else {
        let input = FlagInput { reason: reason.clone(), comment: comment.clone(), undo: form.undo.is_some() };
        service::flag(&dashboard.app, request_id, decider, input).await
    };
    match reviewed {
        Ok(_) => Ok(Redirect::to(&format!("/review?done={request_id}")).into_response()),
        Err(error) => {
            let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            let refusal = refused(sentence(&error.message), status);
            page(&dashboard, &signed_in, None, None, Some(refusal), status).await
        }
    }
}

/// A review form the service refused: shown on the report it was for, with the comment typed.
struct Refusal {
    id: RequestId,
    message: String,
    reason: String,
    comment: Option<String>,
    status: StatusCode,
}

async fn page(
    dashboard: &Dashboard,
    signed_in: &SignedIn,
    number: Option<u32>,
    done: Option<String>,
    refusal: Option<Refusal>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let policy = dashboard.app.policy.current().policy.clone();
    let query = RequestQuery {
        statuses: vec![Status::Pending],
        sampled: Some(true),
        groups: Some(my_groups(&policy, signed_in.session.person.as_str())),
        ..RequestQuery::default()
    };
    let page = lists::fetch(dashboard, query, number).await.map_err(|e| e.for_person(signed_in.person()))?;
    let mut items: Vec<Item> = page.requests.iter().map(item).collect();
    if let Some(refusal) = refusal {
        let id = refusal.id.to_string();
        match items.iter_mut().find(|item| item.id == id) {
            Some(item) => {
                item.error = Some(refusal.message);
                item.reason = refusal.reason;
                item.comment = refusal.comment.unwrap_or_default();
            }
            // The report is no longer waiting here (decided meanwhile): say why on top of the page.
            None => {
                return Err(
                    PageError::new(refusal.status, "That did not work", refusal.message).for_person(signed_in.person())
                );
            }
        }
    }
    let view = ReviewPage {
        chrome: Chrome::new(Some(signed_in.person()), "review"),
        items,
        done,
        csrf: signed_in.session.csrf_token.clone(),
        pager: Pager::new("/review", &[], &page),
    };
    Ok(render(status, &view))
}

fn item(request: &Request) -> Item {
    Item {
        id: request.id.to_string(),
        title: request.summary.clone().unwrap_or_else(|| request.action.clone()),
        action: request.action.clone(),
        reasoning: request.reasoning.clone(),
        args: fields(&request.args),
        requester: request.requested_by.key_name.clone(),
        group: request.group.clone().unwrap_or_default(),
        reported: Moment::of(request.created_at),
        error: None,
        reason: String::new(),
        comment: String::new(),
    }
}

/// What became of a decided sampled report, in a sentence: confirmed, or flagged with its reason.
fn outcome_text(request: &Request) -> Option<String> {
    let title = request.summary.clone().unwrap_or_else(|| request.action.clone());
    let review = request.review.as_ref()?;
    match (request.sampled, request.status) {
        (Some(true), Status::Approved) => Some(format!("Confirmed “{title}”.")),
        (Some(true), Status::Rejected) => {
            let reason = review.reason.clone().or_else(|| review.comment.clone()).unwrap_or_default();
            let told = if review.undo { "The agent is told to undo it." } else { "The agent is told, to correct it." };
            Some(format!("Flagged “{title}”: “{reason}”. {told}"))
        }
        _ => None,
    }
}
