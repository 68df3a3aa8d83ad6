//! SMS replies and links: `POST /channels/twilio/sms`, where Twilio posts the messages people send to Signoff's
//! number, and `GET /s/{token}`, the short signed "Details" link of an SMS, which opens the email channel's
//! confirmation page.
//!
//! An inbound message is checked against `X-Twilio-Signature` first (over `SIGNOFF_PUBLIC_URL` + the path, the URL
//! Twilio is configured with); its `From` must be the `phone` of an approver in the policy in force; its code must be
//! one that person holds. Every verdict goes through [`service::decide`] or [`service::answer`], and the answer is
//! TwiML saying what was recorded, or why not.

use crate::AppState;
use crate::channels;
use crate::error::ApiError;
use crate::extract::ApiBytes;
use crate::service::{self, Decider, DecisionInput};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use signoff_domain::{ApproverId, Channel, Kind, Request};
use signoff_notify::RequestView;
use signoff_notify::email::{link_expiry, status_line};
use signoff_notify::links::{LinkClaims, LinkOutcome};
use signoff_notify::pages;
use signoff_notify::sms::{self, Reply};
use signoff_policy::EVERYONE;
use signoff_store::StoreError;
use signoff_wire::ErrorCode;

/// The path of short links, kept short so an ask fits one SMS segment.
pub const SHORT_LINK_PATH: &str = "/s/";

pub fn routes() -> Router<AppState> {
    Router::new().route(sms::INBOUND_PATH, post(inbound)).route(&format!("{SHORT_LINK_PATH}{{token}}"), get(short_link))
}

/// A TwiML answer (`200`, `text/xml`).
fn twiml(message: Option<&str>) -> Response {
    let mut response = sms::twiml(message).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
    response
}

async fn inbound(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Response {
    let Some(config) = state.twilio.clone() else {
        return ApiError::new(ErrorCode::NotFound, "SMS is not configured on this server").into_response();
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let url = match query {
        Some(query) => format!("{}{}?{query}", state.public_url, sms::INBOUND_PATH),
        None => format!("{}{}", state.public_url, sms::INBOUND_PATH),
    };
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Err(error) = sms::verify_signature(&config.auth_token, &url, &params, signature) {
        tracing::warn!(code = error.code(), "an inbound SMS was refused: {error}");
        return ApiError::new(ErrorCode::Unauthorized, error.to_string()).into_response();
    }
    let field = |name: &str| params.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str());
    let answer = reply(&state, field("From"), field("Body")).await;
    twiml(answer.as_deref())
}

/// What to text back to `from` for `body`: `None` to say nothing.
async fn reply(state: &AppState, from: &str, body: &str) -> Option<String> {
    let policy = state.policy.current();
    let from = sms::normalize_number(from);
    let person = policy
        .policy
        .approvers()
        .iter()
        .find(|approver| approver.phone.as_deref().map(sms::normalize_number).is_some_and(|phone| phone == from))
        .and_then(|approver| ApproverId::parse(&approver.id).ok());
    let Some(person) = person else {
        tracing::info!("an SMS from a number no approver has was answered and ignored");
        return Some("Signoff: this number is not linked to any approver, so nothing was recorded.".into());
    };
    let (code, text, approve) = match sms::parse_reply(body) {
        Reply::CarrierKeyword => return None,
        Reply::Unrecognized => return Some(sms::help_text().into()),
        Reply::Approve { code, text } => (code, text, true),
        Reply::Reject { code, text } => (code, text, false),
    };
    Some(act(state, person, &code, text, approve).await.unwrap_or_else(|message| format!("Signoff {code}: {message}")))
}

/// Decides or answers the request `person`'s `code` names; the answer, or why nothing was recorded.
async fn act(state: &AppState, person: ApproverId, code: &str, text: String, approve: bool) -> Result<String, String> {
    let unavailable = |error: StoreError| {
        tracing::error!(%error, "SMS reply: store call failed");
        "Signoff cannot answer right now; nothing was recorded. Try again in a moment.".to_string()
    };
    let id = state.store.reply_code_request(&person, code).await.map_err(unavailable)?;
    let Some(id) = id else {
        return Err("no open request of yours has this code; it is in the message that asked you.".into());
    };
    let request = state.store.request(id).await.map_err(unavailable)?;
    let view = view(state, &request);
    if request.status.is_final() {
        return Err(format!("already decided ({}); nothing was recorded.", status_line(&request, &view)));
    }
    let decider = Decider { person, channel: Channel::Sms, key_id: None };
    let (done, what) = match (request.kind, approve) {
        (Kind::Question, true) => {
            let answer = answer_of(&request, &text, code)?;
            (service::answer(state, id, decider, answer).await, "your answer is recorded")
        }
        (Kind::Question, false) => return Err(format!("this is a question: reply A {code} <answer>.")),
        (Kind::Approval, true) => {
            let comment = Some(text).filter(|t| !t.is_empty());
            let input = DecisionInput { approve: true, comment, reason: None, args: None };
            (service::decide(state, id, decider, input).await, "your approval is recorded")
        }
        (Kind::Approval, false) => {
            let input = rejection_of(&request, &text, code)?;
            (service::decide(state, id, decider, input).await, "your rejection is recorded")
        }
    };
    match done {
        Ok(request) => Ok(format!("Signoff {code}: {what}. {}", status_line(&request, &view))),
        Err(error) => Err(format!("not recorded: {}", error.message)),
    }
}

/// A question's answer from the text after the code: an option's number or its text when it has options.
fn answer_of(request: &Request, text: &str, code: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(format!("an answer needs some text: reply A {code} <answer>."));
    }
    if request.options.is_empty() {
        return Ok(text.to_string());
    }
    channels::pick(&request.options, text)
        .ok_or_else(|| format!("answer with one of: {}.", channels::numbered(&request.options)))
}

/// A rejection from the text after the code (see [`channels::rejection_from_text`]).
fn rejection_of(request: &Request, text: &str, code: &str) -> Result<DecisionInput, String> {
    if text.is_empty() {
        return Err(format!("a rejection needs a reason: reply R {code} <reason>."));
    }
    channels::rejection_from_text(&request.reject_reasons, text).ok_or_else(|| {
        format!("choose a reason: reply R {code} <number> [comment], {}.", channels::numbered(&request.reject_reasons))
    })
}

/// The policy's names, for "Approved by Dana".
fn view(state: &AppState, request: &Request) -> RequestView {
    let policy = state.policy.current();
    let person_names = policy
        .policy
        .approvers()
        .iter()
        .filter_map(|a| Some((ApproverId::parse(&a.id).ok()?, a.name.clone())))
        .collect();
    RequestView {
        public_url: state.public_url.clone(),
        group: request.group.clone().unwrap_or_else(|| EVERYONE.to_string()),
        person_names,
        ..RequestView::default()
    }
}

/// A short link: its stored id (8 characters) followed by its MAC (11). Opens the confirmation page of an email
/// Approve link (a question's: Answer) for the same person, whose nonce is the short link's, so it acts once.
async fn short_link(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let notice = |status: StatusCode, title: &str, line: &str| {
        let mut response = (status, pages::notice(title, &[line.to_string()])).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        for (name, value) in pages::security_headers() {
            headers.insert(header::HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        response
    };
    let Some(signer) = state.link_signer.as_ref() else {
        return notice(
            StatusCode::SERVICE_UNAVAILABLE,
            "Links are not configured",
            "This server has no link secret (SIGNOFF_LINK_SECRET). (links_not_configured)",
        );
    };
    let invalid = || {
        notice(
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "It was not made by this server, or it was cut short on the way. Open it from the SMS again, or decide \
             in the dashboard. (link_forged)",
        )
    };
    let (Some(link_id), Some(mac)) = (token.get(..8), token.get(8..)) else { return invalid() };
    if token.len() != 8 + 11 {
        return invalid();
    }
    let (person, request_id) = match state.store.reply_link(link_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return invalid(),
        Err(error) => {
            tracing::error!(%error, "short link: store call failed");
            return notice(
                StatusCode::SERVICE_UNAVAILABLE,
                "Signoff cannot answer right now",
                "Try the link again in a moment. (unavailable)",
            );
        }
    };
    if !signer.verify_short_link_mac(link_id, request_id, &person, mac) {
        return invalid();
    }
    let request = match state.store.request(request_id).await {
        Ok(request) => request,
        Err(_) => {
            return notice(
                StatusCode::NOT_FOUND,
                "This request does not exist",
                "The request this link was for is not on this server. (not_found)",
            );
        }
    };
    let now = signoff_store::now();
    let claims = LinkClaims {
        request_id,
        approver_id: person,
        outcome: if request.kind == Kind::Question { LinkOutcome::Answer } else { LinkOutcome::Approve },
        group: request.group.clone().unwrap_or_else(|| EVERYONE.to_string()),
        nonce: format!("sms-{link_id}"),
        expires_at: link_expiry(request.deadline_at, now),
    };
    Redirect::to(&format!("/channels/email/act?token={}", signer.sign(&claims))).into_response()
}
