//! One request: what it asks, why it is here, what happened to it, and (for a person who may decide it) the forms
//! to approve, reject or approve with edits. The forms post to `/requests/{id}/decide`, which checks the session's
//! CSRF token and decides through `signoff_server::service::decide`, where every rule lives. A request policy let
//! through without a person offers a Flag form (`/requests/{id}/flag`, through `signoff_server::service::flag`): a
//! miss of the gate, told to the agent.

use crate::Dashboard;
use crate::page::{Chrome, PageError, render, sentence};
use crate::session::SignedIn;
use crate::view::{Change, Field, Moment, diff, fields, pretty};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signoff_domain::{Channel, DecidedBy, FlagInput, Kind, Request, RequestId, ReviewVerdict, Reviewable};
use signoff_policy::EVERYONE;
use signoff_server::service::{self, Decider, DecisionInput};

/// What the decision forms show: the edited arguments, their difference from the proposed ones, and the error of
/// the last attempt, if any.
#[derive(Default)]
struct FormState {
    edited_args: Option<String>,
    changes: Vec<Change>,
    comment: String,
    /// The reject (or flag) reason chosen.
    reason: String,
    error: Option<String>,
    /// The flag form's error, shown beside it.
    flag_error: Option<String>,
}

struct Line {
    at: Moment,
    what: String,
    detail: String,
}

struct Step {
    to: String,
    due: Moment,
    fired: Option<Moment>,
}

/// The earlier attempt a revision asks again: which one it is, how it ended, and what the agent changed.
struct Revision {
    /// 2 for the first revision, 3 for a revision of a revision, …
    attempt: usize,
    earlier_id: String,
    earlier_title: String,
    /// "rejected by dana via slack", with the reason and comment.
    earlier_outcome: Option<Line>,
    changes: Vec<Change>,
}

/// The longest chain of revisions walked back to number an attempt.
const MAX_ATTEMPTS: usize = 50;

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    chrome: Chrome,
    id: String,
    title: String,
    action: String,
    status: &'static str,
    reasoning: Option<String>,
    args: Vec<Field>,
    args_json: String,
    context: Option<String>,
    confidence: Option<String>,
    tags: Vec<String>,
    requester: String,
    created: Moment,
    rule: String,
    group: String,
    policy_version: String,
    escalations: Vec<Step>,
    deadline: Option<Moment>,
    at_deadline: String,
    approvals: Vec<Line>,
    quorum: String,
    decision: Option<Line>,
    decision_changes: Vec<Change>,
    timeline: Vec<Line>,
    notifications: Vec<Line>,
    deliveries: Vec<Line>,
    revision: Option<Revision>,
    revised_by: Option<String>,
    /// A question's text and options (a question is answered, not approved).
    question: Option<String>,
    options: Vec<String>,
    can_decide: bool,
    why_not: Option<String>,
    allow_edit: bool,
    reject_reasons: Vec<String>,
    /// The request's review ("flagged by dana via api: wrong_amount — …"), and the agent's remediation.
    review: Option<Line>,
    review_notes: Vec<String>,
    remediation: Option<Line>,
    /// Whether the signed-in person may flag this request as a miss of the gate.
    can_flag: bool,
    /// "Approve and similar ones for the next …": the windows (seconds, label) the rule's `standing` allows.
    standing_choices: Vec<(u64, String)>,
    /// What "similar" means: the scoped fields and their values.
    standing_scope: String,
    csrf: String,
    form: FormState,
}

/// The windows offered for a standing approval, up to the rule's `max` (which is always offered).
const STANDING_WINDOWS: [u64; 6] = [15 * 60, 60 * 60, 4 * 60 * 60, 8 * 60 * 60, 24 * 60 * 60, 7 * 24 * 60 * 60];

/// `GET /requests/{id}`.
pub async fn show(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id, &signed_in)?;
    page(&dashboard, &signed_in, id, FormState::default(), StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    csrf: Option<String>,
    /// `approve`, `reject`, or `preview` (show the difference of the edited arguments, decide nothing).
    verdict: String,
    comment: Option<String>,
    reason: Option<String>,
    /// The edited arguments, as JSON (the edit form only).
    args: Option<String>,
    /// Approve only: also approve similar requests for this many seconds (empty: this request only).
    standing: Option<String>,
}

/// `POST /requests/{id}/decide`.
pub async fn decide(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.csrf.as_deref())?;
    let id = parse_id(&id, &signed_in)?;
    let proposed =
        dashboard.app.store.request(id).await.map_err(|e| PageError::from(e).for_person(signed_in.person()))?.args;
    let comment = form.comment.clone().filter(|c| !c.trim().is_empty());
    let mut state = FormState {
        comment: comment.clone().unwrap_or_default(),
        reason: form.reason.clone().unwrap_or_default(),
        ..FormState::default()
    };
    let edited = match form.args.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(text) => {
            state.edited_args = Some(text.to_string());
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value) => {
                    state.changes = diff(&proposed, &value);
                    (value != proposed).then_some(value)
                }
                Err(error) => {
                    state.error = Some(format!("The edited arguments are not valid JSON: {error}."));
                    return page(&dashboard, &signed_in, id, state, StatusCode::BAD_REQUEST).await;
                }
            }
        }
    };
    let approve = match form.verdict.as_str() {
        "approve" => true,
        "reject" => false,
        "preview" => return page(&dashboard, &signed_in, id, state, StatusCode::OK).await,
        other => {
            state.error = Some(format!("`{other}` is not a decision: approve or reject."));
            return page(&dashboard, &signed_in, id, state, StatusCode::BAD_REQUEST).await;
        }
    };
    let decider = Decider {
        person: signed_in.session.person.clone(),
        channel: Channel::Dashboard,
        key_id: signed_in.session.key_id.clone(),
    };
    let standing = match form.standing.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) => Some(std::time::Duration::from_secs(seconds)),
            Err(_) => {
                state.error = Some(format!("`{text}` is not a number of seconds for similar requests."));
                return page(&dashboard, &signed_in, id, state, StatusCode::BAD_REQUEST).await;
            }
        },
    };
    let input = DecisionInput {
        approve,
        comment,
        reason: form.reason.filter(|r| !r.is_empty()),
        args: if approve { edited } else { None },
    };
    let decided = match standing {
        None => service::decide(&dashboard.app, id, decider, input).await,
        Some(window) => service::approve_standing(&dashboard.app, id, decider, input, window).await.map(|(r, _)| r),
    };
    match decided {
        Ok(_) => Ok(Redirect::to(&format!("/requests/{id}")).into_response()),
        Err(error) => {
            let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            state.error = Some(sentence(&error.message));
            page(&dashboard, &signed_in, id, state, status).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    csrf: Option<String>,
    text: Option<String>,
}

/// `POST /requests/{id}/answer`: answers a question through `signoff_server::service::answer`.
pub async fn answer(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.csrf.as_deref())?;
    let id = parse_id(&id, &signed_in)?;
    let by = Decider {
        person: signed_in.session.person.clone(),
        channel: Channel::Dashboard,
        key_id: signed_in.session.key_id.clone(),
    };
    let text = form.text.unwrap_or_default();
    match service::answer(&dashboard.app, id, by, text.clone()).await {
        Ok(_) => Ok(Redirect::to(&format!("/requests/{id}")).into_response()),
        Err(error) => {
            let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            let state = FormState { comment: text, error: Some(sentence(&error.message)), ..FormState::default() };
            page(&dashboard, &signed_in, id, state, status).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct FlagForm {
    csrf: Option<String>,
    reason: Option<String>,
    comment: Option<String>,
    /// The checkbox: the action must be undone.
    undo: Option<String>,
}

/// `POST /requests/{id}/flag`: flags what the agent did through `signoff_server::service::flag`.
pub async fn flag(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<FlagForm>,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.csrf.as_deref())?;
    let id = parse_id(&id, &signed_in)?;
    let by = Decider {
        person: signed_in.session.person.clone(),
        channel: Channel::Dashboard,
        key_id: signed_in.session.key_id.clone(),
    };
    let comment = form.comment.filter(|c| !c.trim().is_empty());
    let reason = form.reason.unwrap_or_default();
    let input = FlagInput { reason: reason.clone(), comment: comment.clone(), undo: form.undo.is_some() };
    match service::flag(&dashboard.app, id, by, input).await {
        Ok(_) => Ok(Redirect::to(&format!("/requests/{id}")).into_response()),
        Err(error) => {
            let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            let state = FormState {
                comment: comment.unwrap_or_default(),
                reason,
                flag_error: Some(sentence(&error.message)),
                ..FormState::default()
            };
            page(&dashboard, &signed_in, id, state, status).await
        }
    }
}

fn parse_id(raw: &str, signed_in: &SignedIn) -> Result<RequestId, PageError> {
    raw.parse().map_err(|_| {
        PageError::new(StatusCode::NOT_FOUND, "Not found", format!("There is no request `{raw}`."))
            .for_person(signed_in.person())
    })
}

async fn page(
    dashboard: &Dashboard,
    signed_in: &SignedIn,
    id: RequestId,
    form: FormState,
    status: StatusCode,
) -> Result<Response, PageError> {
    let load = async {
        let store = &dashboard.app.store;
        Ok::<_, signoff_store::StoreError>((
            store.request(id).await?,
            store.request_events(id).await?,
            store.notifications(id).await?,
            store.deliveries(id).await?,
        ))
    };
    let (request, events, notifications, deliveries) =
        load.await.map_err(|e| PageError::from(e).for_person(signed_in.person()))?;
    let revision =
        revision(dashboard, &request).await.map_err(|e| PageError::from(e).for_person(signed_in.person()))?;
    let policy = dashboard.app.policy.current().policy.clone();
    let person = &signed_in.session.person;
    let group = request.group.clone().unwrap_or_else(|| EVERYONE.to_string());
    let why_not = if request.status.is_final() {
        Some(format!("This request is {}; nothing more can be decided.", request.status.as_str()))
    } else if !policy.is_member(person.as_str(), &group) {
        Some(format!("You are not in the group `{group}` this request waits for, so you cannot decide it."))
    } else if request.kind == Kind::Approval && request.requested_by.responsible.as_ref() == Some(person) {
        Some("You are responsible for this request, so you cannot approve it.".to_string())
    } else {
        None
    };
    // Hiding the form is a courtesy: the service decides who may flag.
    let can_flag = request.reviewable() == Ok(Reviewable::Miss)
        && request.requested_by.responsible.as_ref() != Some(person)
        && (policy.approvers().is_empty() || policy.approver(person.as_str()).is_some());
    let review = request.review.as_ref().map(|review| Line {
        at: Moment::of(review.at),
        what: format!(
            "{} by {} via {}",
            match review.verdict {
                ReviewVerdict::Confirmed => "confirmed",
                ReviewVerdict::Flagged => "flagged",
            },
            review.by,
            review.channel
        ),
        detail: [review.reason.clone(), review.comment.clone()].into_iter().flatten().collect::<Vec<_>>().join(" — "),
    });
    let mut review_notes = Vec::new();
    if let Some(review) = request.review.as_ref().filter(|r| r.verdict == ReviewVerdict::Flagged) {
        if review.miss {
            review_notes.push("A miss of the gate: policy let this through without a person.".to_string());
        }
        if review.undo {
            review_notes.push("The agent is asked to undo the action.".to_string());
        }
    }
    let remediation = request.remediation.as_ref().map(|r| Line {
        at: Moment::of(r.at),
        what: if r.ok { "remediated".to_string() } else { "remediation failed".to_string() },
        detail: r.detail.as_ref().map(|d| d.to_string()).unwrap_or_default(),
    });
    let standing = request
        .policy
        .as_ref()
        .filter(|p| p.error.is_none() && request.approvals_required == 1 && request.kind == Kind::Approval)
        .and_then(|p| p.rule.as_deref())
        .and_then(|rule| policy.standing(rule))
        .filter(|_| why_not.is_none());
    let standing_choices = standing
        .as_ref()
        .map(|terms| {
            let max = terms.max.as_secs();
            let mut windows: Vec<u64> = STANDING_WINDOWS.into_iter().filter(|w| *w < max).collect();
            windows.push(max);
            windows
                .into_iter()
                .map(|w| (w, signoff_domain::format_duration(std::time::Duration::from_secs(w))))
                .collect()
        })
        .unwrap_or_default();
    let standing_scope = standing
        .map(|terms| {
            let scope = terms.scope_of(&request, &request.args);
            scope.iter().map(|s| format!("{} = {}", s.path, s.value)).collect::<Vec<_>>().join(", ")
        })
        .unwrap_or_default();
    let view = RequestPage {
        chrome: Chrome::new(Some(signed_in.person()), "request"),
        id: request.id.to_string(),
        title: request.summary.clone().unwrap_or_else(|| request.action.clone()),
        action: request.action.clone(),
        status: request.status.as_str(),
        reasoning: request.reasoning.clone(),
        args: fields(&request.args),
        args_json: pretty(&request.args),
        context: (!request.context.is_null()).then(|| pretty(&request.context)),
        confidence: request.confidence.map(|c| format!("{:.0} %", c * 100.0)),
        tags: request.tags.clone(),
        requester: request.requested_by.key_name.clone(),
        created: Moment::of(request.created_at),
        rule: rule_text(&request),
        group: group.clone(),
        policy_version: request.policy.as_ref().map(|p| p.version.to_string()).unwrap_or_else(|| "none".into()),
        escalations: request
            .escalations
            .iter()
            .map(|e| Step { to: e.to.clone(), due: Moment::of(e.due_at), fired: e.fired_at.map(Moment::of) })
            .collect(),
        deadline: request.deadline_at.map(Moment::of),
        at_deadline: match request.on_timeout {
            Some(on_timeout) => format!("If no one decides by then: {}.", on_timeout_text(on_timeout)),
            None => String::new(),
        },
        approvals: request
            .approvals
            .iter()
            .map(|a| Line {
                at: Moment::of(a.at),
                what: format!(
                    "{} approved{} via {}",
                    a.approver_id,
                    if a.edited { " with edits" } else { "" },
                    a.channel
                ),
                detail: a.comment.clone().unwrap_or_default(),
            })
            .collect(),
        quorum: format!("{} of {} approvals", request.approvals.len(), request.approvals_required.max(1)),
        decision: request.decision.as_ref().map(decision_line),
        decision_changes: request
            .decision
            .as_ref()
            .filter(|d| d.edited)
            .map(|d| diff(&request.args, &d.args))
            .unwrap_or_default(),
        timeline: events
            .iter()
            .map(|e| Line { at: Moment::of(e.at), what: e.kind.as_str().replace('_', " "), detail: e.actor.clone() })
            .collect(),
        notifications: notifications
            .iter()
            .map(|n| Line {
                at: Moment::of(n.created_at),
                what: format!("{} {} to {} ({})", n.channel, n.purpose.as_str(), n.address, n.state.as_str()),
                detail: format!(
                    "{} attempts{}",
                    n.attempts,
                    n.last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
                ),
            })
            .collect(),
        deliveries: deliveries
            .iter()
            .map(|d| Line {
                at: Moment::of(d.created_at),
                what: format!("callback to {} ({})", d.url, d.state.as_str()),
                detail: format!(
                    "{} attempts{}{}",
                    d.attempts,
                    d.last_status.map(|s| format!("; last answer HTTP {s}")).unwrap_or_default(),
                    d.last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
                ),
            })
            .collect(),
        revision,
        revised_by: request.revised_by.map(|id| id.to_string()),
        question: request.question.clone().filter(|_| request.kind == Kind::Question),
        options: request.options.clone(),
        can_decide: why_not.is_none(),
        why_not,
        allow_edit: request.allow_edit,
        reject_reasons: request.reject_reasons.clone(),
        review,
        review_notes,
        remediation,
        can_flag,
        standing_choices,
        standing_scope,
        csrf: signed_in.session.csrf_token.clone(),
        form,
    };
    Ok(render(status, &view))
}

/// The earlier attempt `request` revises, if it revises one.
async fn revision(dashboard: &Dashboard, request: &Request) -> Result<Option<Revision>, signoff_store::StoreError> {
    let Some(earlier_id) = request.revises else { return Ok(None) };
    let earlier = dashboard.app.store.request(earlier_id).await?;
    let mut attempt = 2;
    let mut walk = earlier.revises;
    while let Some(id) = walk.filter(|_| attempt < MAX_ATTEMPTS) {
        attempt += 1;
        walk = dashboard.app.store.request(id).await?.revises;
    }
    Ok(Some(Revision {
        attempt,
        earlier_id: earlier.id.to_string(),
        earlier_title: earlier.summary.clone().unwrap_or_else(|| earlier.action.clone()),
        earlier_outcome: earlier.decision.as_ref().map(decision_line),
        changes: diff(&earlier.args, &request.args),
    }))
}

/// "rejected by dana via slack", when, and the reason and comment.
fn decision_line(decision: &signoff_domain::Decision) -> Line {
    Line {
        at: Moment::of(decision.at),
        what: format!("{} by {}", decision.outcome.status().as_str(), decided_by(&decision.by)),
        detail: [decision.reason.clone(), decision.comment.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" — "),
    }
}

fn rule_text(request: &Request) -> String {
    match &request.policy {
        Some(placed) => match (&placed.rule, &placed.error) {
            (Some(rule), None) => format!("rule `{rule}`"),
            (Some(rule), Some(error)) => {
                format!("rule `{rule}` could not be evaluated ({error}); the defaults placed it")
            }
            (None, _) => "no rule matched; the policy's defaults placed it".to_string(),
        },
        None => "placed without a policy".to_string(),
    }
}

fn on_timeout_text(on_timeout: signoff_domain::OnTimeout) -> &'static str {
    match on_timeout {
        signoff_domain::OnTimeout::Approve => "it is approved",
        signoff_domain::OnTimeout::Reject => "it is rejected",
        signoff_domain::OnTimeout::Fail => "it expires, and the work needs following up",
    }
}

fn decided_by(by: &DecidedBy) -> String {
    match by {
        DecidedBy::Human { approver_id, channel } => format!("{approver_id} via {channel}"),
        DecidedBy::Policy { rule } => format!("policy rule `{rule}`"),
        DecidedBy::Timeout => "its deadline".to_string(),
        DecidedBy::Agent { key_id } => format!("the agent ({key_id})"),
        DecidedBy::Grant { grant_id, approver_id } => format!("standing grant {grant_id} of {approver_id}"),
    }
}
