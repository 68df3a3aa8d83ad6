//! Grants: the standing approvals live now (each one approves, until it expires or is revoked, the same agent's
//! matching requests under one rule), with a Revoke button for the person who granted it and for admins. Revoking
//! goes through `signoff_server::service::revoke_grant_as`, where the rule of who may revoke lives.

use crate::Dashboard;
use crate::page::{Chrome, PageError, render, sentence};
use crate::session::SignedIn;
use crate::view::Moment;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signoff_domain::Grant;
use signoff_server::service;

struct Row {
    id: String,
    rule: String,
    /// `action = "refund"`, `args.customer = "acme"`.
    scope: Vec<String>,
    granted_by: String,
    agent: String,
    request_id: String,
    created: Moment,
    expires: Moment,
    uses: u64,
    can_revoke: bool,
}

#[derive(Template)]
#[template(path = "grants.html")]
struct GrantsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    csrf: String,
    error: Option<String>,
}

/// `GET /grants`.
pub async fn show(State(dashboard): State<Dashboard>, signed_in: SignedIn) -> Result<Response, PageError> {
    page(&dashboard, &signed_in, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    csrf: Option<String>,
}

/// `POST /grants/{id}/revoke`.
pub async fn revoke(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.csrf.as_deref())?;
    let admin = signed_in.is_admin(&dashboard).await.map_err(|e| PageError::from(e).for_person(signed_in.person()))?;
    let person = &signed_in.session.person;
    let actor = signoff_domain::Actor::Person(person.clone()).to_string();
    match service::revoke_grant_as(&dashboard.app, &id, admin, Some(person), actor).await {
        Ok(_) => Ok(Redirect::to("/grants").into_response()),
        Err(error) => {
            let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            page(&dashboard, &signed_in, Some(sentence(&error.message)), status).await
        }
    }
}

async fn page(
    dashboard: &Dashboard,
    signed_in: &SignedIn,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let in_person = |e: signoff_store::StoreError| PageError::from(e).for_person(signed_in.person());
    let admin = signed_in.is_admin(dashboard).await.map_err(in_person)?;
    let grants = dashboard.app.store.grants(false, signoff_store::now()).await.map_err(in_person)?;
    let keys = dashboard.app.store.keys().await.map_err(in_person)?;
    let policy = dashboard.app.policy.current().policy.clone();
    let person = &signed_in.session.person;
    let row = |grant: &Grant| Row {
        id: grant.id.clone(),
        rule: grant.rule.clone(),
        scope: grant.scope.iter().map(|s| format!("{} = {}", s.path, s.value)).collect(),
        granted_by: policy
            .approver(grant.approver_id.as_str())
            .map_or_else(|| grant.approver_id.to_string(), |a| a.name.clone()),
        agent: keys.iter().find(|k| k.id == grant.key_id).map_or_else(|| grant.key_id.clone(), |k| k.name.clone()),
        request_id: grant.request_id.to_string(),
        created: Moment::of(grant.created_at),
        expires: Moment::of(grant.expires_at),
        uses: grant.uses,
        can_revoke: admin || grant.approver_id == *person,
    };
    let view = GrantsPage {
        chrome: Chrome::new(Some(signed_in.person()), "grants"),
        rows: grants.iter().map(row).collect(),
        csrf: signed_in.session.csrf_token.clone(),
        error,
    };
    Ok(render(status, &view))
}
