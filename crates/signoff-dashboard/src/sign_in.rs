//! Signing in with an API key (approver keys, and admin keys bound to a person) or, when email is configured, with a
//! single-use link mailed to an approver's address; and signing out.
//!
//! Sign-in forms have no session to carry a CSRF token yet, so their `POST`s must come from this origin: a browser
//! sends `Origin` with every form `POST`, and one naming another site is refused (no one is signed in as someone
//! else by a form on another site).

use crate::Dashboard;
use crate::page::{Chrome, PageError, render};
use crate::session::{SignedIn, clear_cookie, in_policy, safe_next, start_session};
use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signoff_domain::{ApproverId, Channel};
use signoff_notify::links::{LinkClaims, LinkError, SignInClaims};
use signoff_server::service::Decider;
use std::net::SocketAddr;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    next: String,
    error: Option<String>,
    /// Whether an email link can be asked for (email is configured).
    by_email: bool,
    /// Shown once a link was asked for.
    link_sent: bool,
}

impl SignInPage {
    fn new(dashboard: &Dashboard, next: &str) -> SignInPage {
        SignInPage {
            chrome: Chrome::new(None, "sign-in"),
            next: next.to_string(),
            error: None,
            by_email: email_sign_in(dashboard).is_some(),
            link_sent: false,
        }
    }
}

/// How long a sign-in link works.
const SIGN_IN_LINK_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);

#[derive(Debug, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

/// `GET /sign-in`.
pub async fn form(State(dashboard): State<Dashboard>, Query(params): Query<NextParam>) -> Response {
    render(StatusCode::OK, &SignInPage::new(&dashboard, safe_next(params.next.as_deref())))
}

#[derive(Deserialize)]
pub struct SignInForm {
    key: String,
    next: Option<String>,
}

/// `POST /sign-in`: the key must be live and act for a person in the policy. Unknown and revoked keys count as
/// failures against the client's address; past the allowance, sign-in waits.
pub async fn submit(
    State(dashboard): State<Dashboard>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if let Err(refused) = same_origin(&headers) {
        return refused.into_response();
    }
    let next = safe_next(form.next.as_deref()).to_string();
    let refuse = |status: StatusCode, error: String| {
        render(status, &SignInPage { error: Some(error), ..SignInPage::new(&dashboard, &next) })
    };
    if let Err(wait) = dashboard.sign_in_failures.check(client.ip()) {
        let message = format!("Too many failed sign-ins from your address. Try again in {wait} seconds.");
        return refuse(StatusCode::TOO_MANY_REQUESTS, message);
    }
    let key = match dashboard.app.store.key_by_secret(form.key.trim()).await {
        Ok(Some(key)) if !key.is_revoked() => key,
        Ok(_) => {
            dashboard.sign_in_failures.failed(client.ip());
            let message = "That key is not valid: it is unknown, mistyped or revoked.".to_string();
            return refuse(StatusCode::UNAUTHORIZED, message);
        }
        Err(error) => return PageError::from(error).into_response(),
    };
    let person = match Decider::from_key(&key, Channel::Dashboard) {
        Ok(decider) => decider.person,
        Err(error) => {
            let message = format!("This key cannot sign in to the dashboard, which is for people: {}", error.message);
            return refuse(StatusCode::FORBIDDEN, crate::page::sentence(&message));
        }
    };
    if !in_policy(&dashboard.app.policy.current().policy, &person) {
        let message = format!("This key acts for `{person}`, who is not an approver in the policy in force.");
        return refuse(StatusCode::FORBIDDEN, message);
    }
    match start_session(&dashboard, person, Some(key.id)).await {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response(),
        Err(error) => PageError::from(error).into_response(),
    }
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: Option<String>,
}

/// `POST /sign-out`: ends the session (the form must carry its CSRF token) and clears the cookie. Without a session
/// there is nothing to end: it goes to the sign-in page.
pub async fn sign_out(
    State(dashboard): State<Dashboard>,
    signed_in: Result<SignedIn, Response>,
    Form(form): Form<SignOutForm>,
) -> Result<Response, PageError> {
    let Ok(signed_in) = signed_in else { return Ok(Redirect::to("/sign-in").into_response()) };
    signed_in.check_csrf(form.csrf.as_deref())?;
    dashboard.app.store.end_session(&signed_in.session.token_hash).await?;
    Ok(([(header::SET_COOKIE, clear_cookie(&dashboard)?)], Redirect::to("/sign-in")).into_response())
}

/// The mailer and link signer that email sign-in needs, when email is configured.
fn email_sign_in(
    dashboard: &Dashboard,
) -> Option<(&signoff_notify::email::Mailer, &signoff_notify::links::LinkSigner)> {
    Some((dashboard.app.mailer.as_ref()?, dashboard.app.link_signer.as_ref()?))
}

/// Refuses a form `POST` that a page on another site sent (its `Origin` names another host than this request's).
fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, host)| host);
    match (origin_host, host) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "This sign-in form was sent from another site, so it was refused. Sign in from this site's own page.",
        )),
    }
}

#[derive(Deserialize)]
pub struct EmailForm {
    email: String,
    next: Option<String>,
}

/// `POST /sign-in/email`: mails a single-use link, valid for 15 minutes, when the address is an approver's in the
/// policy. The answer is the same whether it is or not, and comes at once (the mail is sent afterwards), so the page
/// tells no one which addresses are known. Each request counts against the client's sign-in allowance.
pub async fn email_link(
    State(dashboard): State<Dashboard>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<EmailForm>,
) -> Response {
    if let Err(refused) = same_origin(&headers) {
        return refused.into_response();
    }
    let next = safe_next(form.next.as_deref()).to_string();
    let page = SignInPage::new(&dashboard, &next);
    let Some((mailer, signer)) = email_sign_in(&dashboard) else {
        let error = "Sign-in by email is not set up on this server; sign in with an API key.".to_string();
        return render(StatusCode::NOT_FOUND, &SignInPage { error: Some(error), ..page });
    };
    if let Err(wait) = dashboard.sign_in_failures.check(client.ip()) {
        let error = format!("Too many sign-in attempts from your address. Try again in {wait} seconds.");
        return render(StatusCode::TOO_MANY_REQUESTS, &SignInPage { error: Some(error), ..page });
    }
    dashboard.sign_in_failures.failed(client.ip());
    let address = form.email.trim();
    let policy = dashboard.app.policy.current().policy.clone();
    let approver = policy
        .approvers()
        .iter()
        .find(|a| a.email.as_deref().is_some_and(|email| email.trim().eq_ignore_ascii_case(address)));
    if let Some((approver, Ok(person))) = approver.map(|a| (a, ApproverId::parse(&a.id))) {
        let expires_at = signoff_store::now() + SIGN_IN_LINK_LIFETIME;
        let claims = SignInClaims { approver_id: person, nonce: LinkClaims::new_nonce(), expires_at };
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &signer.sign_sign_in(&claims))
            .append_pair("next", &next)
            .finish();
        let link = format!("{}/sign-in/link?{query}", dashboard.app.public_url);
        let (mailer, to) = (mailer.clone(), approver.email.clone().unwrap_or_default());
        tokio::spawn(async move {
            if let Err(error) = mailer.send_sign_in(&to, &link, expires_at).await {
                tracing::warn!(error = %error.message, "a sign-in link could not be mailed");
            }
        });
    }
    render(StatusCode::OK, &SignInPage { link_sent: true, ..page })
}

#[derive(Template)]
#[template(path = "sign_in_link.html")]
struct LinkPage {
    chrome: Chrome,
    token: String,
    next: String,
    name: String,
}

#[derive(Deserialize)]
pub struct LinkParams {
    token: Option<String>,
    next: Option<String>,
}

/// `GET /sign-in/link?token=…`: a page with a button that signs in. Following the link signs no one in, so a mail
/// scanner that fetches it uses nothing up.
pub async fn link_page(
    State(dashboard): State<Dashboard>,
    Query(params): Query<LinkParams>,
) -> Result<Response, PageError> {
    let token = params.token.unwrap_or_default();
    let claims = verified_link(&dashboard, &token).await?;
    let policy = dashboard.app.policy.current().policy.clone();
    let name =
        policy.approver(claims.approver_id.as_str()).map_or_else(|| claims.approver_id.to_string(), |a| a.name.clone());
    let next = safe_next(params.next.as_deref()).to_string();
    Ok(render(StatusCode::OK, &LinkPage { chrome: Chrome::new(None, "sign-in"), token, next, name }))
}

#[derive(Deserialize)]
pub struct LinkForm {
    token: String,
    next: Option<String>,
}

/// `POST /sign-in/link`: uses the link up and starts a session for its person, who must still be an approver.
pub async fn use_link(
    State(dashboard): State<Dashboard>,
    headers: HeaderMap,
    Form(form): Form<LinkForm>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let claims = verified_link(&dashboard, &form.token).await?;
    let person = claims.approver_id;
    if !in_policy(&dashboard.app.policy.current().policy, &person) {
        let message =
            format!("`{person}` is no longer an approver in the policy in force, so this link signs no one in.");
        return Err(PageError::new(StatusCode::FORBIDDEN, "Not allowed", message));
    }
    if !dashboard.app.store.use_link(&claims.nonce, &format!("sign-in:{person}")).await? {
        return Err(used_link());
    }
    let cookie = start_session(&dashboard, person, None).await?;
    let next = safe_next(form.next.as_deref()).to_string();
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
}

/// The claims of a genuine, unexpired, unused sign-in link, or a page saying which of these it is not.
async fn verified_link(dashboard: &Dashboard, token: &str) -> Result<SignInClaims, PageError> {
    let Some((_, signer)) = email_sign_in(dashboard) else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "Sign-in by email is not set up on this server.",
        ));
    };
    let claims = signer.verify_sign_in(token, signoff_store::now()).map_err(|error| {
        let message = match error {
            LinkError::Expired => "This sign-in link has expired: links work for 15 minutes. Ask for a new one.",
            LinkError::Forged | LinkError::Malformed => "This is not a valid sign-in link. Ask for a new one.",
        };
        PageError::new(StatusCode::BAD_REQUEST, "Sign-in link not valid", message)
    })?;
    if dashboard.app.store.link_used(&claims.nonce).await? {
        return Err(used_link());
    }
    Ok(claims)
}

fn used_link() -> PageError {
    let message = "This sign-in link was already used: each link signs in once. Ask for a new one.";
    PageError::new(StatusCode::GONE, "Sign-in link already used", message)
}
