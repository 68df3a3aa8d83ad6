//! Email action links: `GET /channels/email/act?token=…` shows a confirmation page (a question's link: a form for
//! the answer) and decides nothing (so mail scanners that fetch links are harmless); the page's `POST` (token + form
//! token) decides or answers through the service layer, once per link. A link that cannot act gets a page saying why: not valid, expired, already used, or
//! superseded (the request was decided, moved to another group, or the person left the group).

use crate::AppState;
use crate::service::{self, Decider, DecisionInput};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use signoff_domain::{Channel, Request};
use signoff_notify::RequestView;
use signoff_notify::email::{heading, status_line};
use signoff_notify::links::{LinkClaims, LinkError, LinkOutcome, LinkSigner};
use signoff_notify::pages;
use signoff_store::StoreError;

/// The routes of email links.
pub fn routes() -> Router<AppState> {
    Router::new().route("/channels/email/act", get(show).post(act))
}

/// An HTML page with the headers every email page carries.
struct Page {
    status: StatusCode,
    html: String,
}

impl Page {
    fn notice(status: StatusCode, title: &str, lines: &[String]) -> Page {
        Page { status, html: pages::notice(title, lines) }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.html).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        for (name, value) in pages::security_headers() {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        response
    }
}

/// The confirmation page, or why there is none.
async fn show(State(state): State<AppState>, RawQuery(query): RawQuery) -> Page {
    let fields = form_fields(query.as_deref().unwrap_or("").as_bytes());
    let result = async {
        let signer = signer(&state)?;
        let token = field(&fields, "token");
        let (claims, request) = admit(&state, signer, token).await?;
        let view = view(&state, &claims.group);
        let form_token = signer.form_token(&claims);
        Ok::<Page, Page>(Page {
            status: StatusCode::OK,
            html: pages::confirm(&request, &view, &claims, token, &form_token),
        })
    };
    result.await.unwrap_or_else(|page| page)
}

/// The form's `POST`: decides or answers, once.
async fn act(State(state): State<AppState>, body: Bytes) -> Page {
    let fields = form_fields(&body);
    let result = async {
        let signer = signer(&state)?;
        let (claims, request) = admit(&state, signer, field(&fields, "token")).await?;
        if !signer.verify_form_token(&claims, field(&fields, "form_token")) {
            return Err(Page::notice(
                StatusCode::BAD_REQUEST,
                "This form is not valid",
                &["Open the link from the email again and confirm on the page it shows. (form_token_invalid)".into()],
            ));
        }
        let view = view(&state, &claims.group);
        let decider = Decider { person: claims.approver_id.clone(), channel: Channel::Email, key_id: None };
        let done = match claims.outcome {
            LinkOutcome::Answer => {
                let text = field(&fields, "text").trim().to_string();
                // Checked before the link is spent, so a slip can be corrected on the same page.
                if text.is_empty() {
                    return Err(not_recorded("An answer needs some text: go back and write one. (invalid_answer)"));
                }
                if !request.options.is_empty() && !request.options.contains(&text) {
                    let options = request.options.join(", ");
                    return Err(not_recorded(&format!("Choose one of the answers: {options}. (invalid_answer)")));
                }
                spend(&state, &claims, &request).await?;
                service::answer(&state, claims.request_id, decider, text).await.map(|r| (r, "Your answer is recorded"))
            }
            LinkOutcome::Approve | LinkOutcome::Reject => {
                let approve = claims.outcome == LinkOutcome::Approve;
                let comment = Some(field(&fields, "comment").trim()).filter(|c| !c.is_empty()).map(String::from);
                let reason = Some(field(&fields, "reason").trim()).filter(|r| !r.is_empty()).map(String::from);
                if !approve {
                    // Checked before the link is spent, so a slip can be corrected on the same page.
                    if comment.is_none() {
                        return Err(not_recorded(
                            "A rejection needs a comment: go back and write one. (comment_required)",
                        ));
                    }
                    if !request.reject_reasons.is_empty()
                        && !reason.as_ref().is_some_and(|r| request.reject_reasons.contains(r))
                    {
                        let reasons = request.reject_reasons.join(", ");
                        return Err(not_recorded(&format!("Choose one of the reasons: {reasons}. (invalid_reason)")));
                    }
                }
                spend(&state, &claims, &request).await?;
                let input = DecisionInput { approve, comment, reason: if approve { None } else { reason }, args: None };
                let title = if approve { "Your approval is recorded" } else { "Your rejection is recorded" };
                service::decide(&state, claims.request_id, decider, input).await.map(|r| (r, title))
            }
        };
        match done {
            Ok((request, title)) => {
                Ok(Page::notice(StatusCode::OK, title, &[heading(&request), status_line(&request, &view)]))
            }
            Err(error) => match state.store.request(claims.request_id).await {
                Ok(now) if now.decision.is_some() => Err(decided(&state, &now)),
                _ => {
                    let code = serde_json::to_value(error.code).ok().and_then(|c| c.as_str().map(String::from));
                    Err(not_recorded(&format!("{} ({})", error.message, code.unwrap_or_default())))
                }
            },
        }
    };
    result.await.unwrap_or_else(|page| page)
}

/// Records the link as used, once: a second use is refused.
async fn spend(state: &AppState, claims: &LinkClaims, request: &Request) -> Result<(), Page> {
    if state.store.use_link(&claims.nonce, &claims.request_id.to_string()).await.map_err(store_failed)? {
        Ok(())
    } else {
        Err(used(state, request))
    }
}

fn signer(state: &AppState) -> Result<&LinkSigner, Page> {
    state.link_signer.as_ref().ok_or_else(|| {
        Page::notice(
            StatusCode::SERVICE_UNAVAILABLE,
            "Email links are not configured",
            &["This server has no link secret (SIGNOFF_LINK_SECRET), so it cannot check email links. \
               (email_links_not_configured)"
                .into()],
        )
    })
}

/// The token's claims and its request, if the link may still act: genuine and unexpired, unused, the request
/// pending and still routed to the link's group, and the person still a member of that group in the policy in force.
async fn admit(state: &AppState, signer: &LinkSigner, token: &str) -> Result<(LinkClaims, Request), Page> {
    let claims = signer.verify(token, signoff_store::now()).map_err(|error| match error {
        LinkError::Expired => Page::notice(
            StatusCode::GONE,
            "This link has expired",
            &["Links in Signoff's emails work until the request's deadline, and at most 7 days. \
               Decide in the dashboard instead. (link_expired)"
                .into()],
        ),
        LinkError::Malformed | LinkError::Forged => Page::notice(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            &[format!(
                "It was not made by this server, or it was changed or cut short on the way. Open it from the email \
                 again, or decide in the dashboard. ({})",
                error.code()
            )],
        ),
    })?;
    let request = match state.store.request(claims.request_id).await {
        Ok(request) => request,
        Err(StoreError::NotFound) => {
            return Err(Page::notice(
                StatusCode::NOT_FOUND,
                "This request does not exist",
                &["The request this link was for is not on this server. (not_found)".into()],
            ));
        }
        Err(error) => return Err(store_failed(error)),
    };
    if state.store.link_used(&claims.nonce).await.map_err(store_failed)? {
        return Err(used(state, &request));
    }
    if request.decision.is_some() {
        return Err(decided(state, &request));
    }
    let group = request.group.as_deref().unwrap_or(signoff_policy::EVERYONE);
    if group != claims.group {
        return Err(superseded(&[format!(
            "It moved from {} to {group}; only {group} can decide it now. (link_superseded)",
            claims.group
        )]));
    }
    let policy = state.policy.current();
    if !policy.policy.is_member(claims.approver_id.as_str(), &claims.group) {
        let name = view(state, group).name_of(&claims.approver_id).to_string();
        return Err(superseded(&[format!(
            "{name} is no longer a member of {} in the policy in force. (link_superseded)",
            claims.group
        )]));
    }
    Ok((claims, request))
}

fn used(state: &AppState, request: &Request) -> Page {
    let view = view(state, request.group.as_deref().unwrap_or(signoff_policy::EVERYONE));
    Page::notice(
        StatusCode::CONFLICT,
        "This link was already used",
        &[
            "Each link in Signoff's emails works once. (link_used)".into(),
            format!("{}: {}", heading(request), status_line(request, &view)),
        ],
    )
}

fn decided(state: &AppState, request: &Request) -> Page {
    let view = view(state, request.group.as_deref().unwrap_or(signoff_policy::EVERYONE));
    superseded(&[
        format!("It was already decided: {}. (already_decided)", status_line(request, &view)),
        heading(request),
    ])
}

fn superseded(lines: &[String]) -> Page {
    Page::notice(StatusCode::CONFLICT, "This link no longer applies", lines)
}

fn not_recorded(message: &str) -> Page {
    Page::notice(StatusCode::BAD_REQUEST, "Your decision was not recorded", &[message.to_string()])
}

fn store_failed(error: StoreError) -> Page {
    tracing::error!(%error, "email link: store call failed");
    Page::notice(
        StatusCode::SERVICE_UNAVAILABLE,
        "Signoff cannot answer right now",
        &["Nothing was decided. Try the link again in a moment. (unavailable)".into()],
    )
}

/// Display names from the policy in force, for "Approved by Dana".
fn view(state: &AppState, group: &str) -> RequestView {
    let policy = state.policy.current();
    let person_names = policy
        .policy
        .approvers()
        .iter()
        .filter_map(|a| Some((signoff_domain::ApproverId::parse(&a.id).ok()?, a.name.clone())))
        .collect();
    RequestView {
        public_url: state.public_url.clone(),
        group: group.to_string(),
        person_names,
        ..RequestView::default()
    }
}

fn form_fields(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
}
