//! Signing in with an API key (approver keys, and admin keys bound to a person), and signing out.

use crate::Dashboard;
use crate::page::{Chrome, PageError, render};
use crate::session::{SignedIn, clear_cookie, in_policy, safe_next, start_session};
use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signoff_domain::Channel;
use signoff_server::service::Decider;
use std::net::SocketAddr;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    next: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

/// `GET /sign-in`.
pub async fn form(Query(params): Query<NextParam>) -> Response {
    let next = safe_next(params.next.as_deref()).to_string();
    render(StatusCode::OK, &SignInPage { chrome: Chrome::new(None, "sign-in"), next, error: None })
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
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_string();
    let refuse = |status: StatusCode, error: String| {
        let page = SignInPage { chrome: Chrome::new(None, "sign-in"), next: next.clone(), error: Some(error) };
        render(status, &page)
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
