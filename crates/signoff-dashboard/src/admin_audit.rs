//! `/admin/audit`: the audit chain verified on demand (`signoff_server::verify_audit_log`, as `GET
//! /v1/audit/verify`), the signed checkpoints (as `GET /v1/audit/checkpoints`), and the export download, the same
//! JSON Lines as `signoff audit export` (`signoff_server::export_audit_log`).

use crate::Dashboard;
use crate::admin::{Admin, Paged};
use crate::page::{Chrome, PageError, render};
use crate::view::Moment;
use askama::Template;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use signoff_server::Verification;
use signoff_store::StoreError;

struct CheckpointRow {
    seq: i64,
    head: String,
    key_id: String,
    at: Moment,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    chrome: Chrome,
    verification: Option<Verification>,
    checkpoints: Paged<CheckpointRow>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    page: Option<usize>,
}

/// `GET /admin/audit`.
pub async fn show(
    State(dashboard): State<Dashboard>,
    admin: Admin,
    Query(params): Query<AuditParams>,
) -> Result<Response, PageError> {
    page(&dashboard, &admin, params, None).await
}

/// `GET /admin/audit/verify`: recomputes the whole chain now (reading it changes nothing, so a link will do).
pub async fn verify(
    State(dashboard): State<Dashboard>,
    admin: Admin,
    Query(params): Query<AuditParams>,
) -> Result<Response, PageError> {
    let verification =
        signoff_server::verify_audit_log(dashboard.app.store.as_ref()).await.map_err(|e| admin.failed(e))?;
    page(&dashboard, &admin, params, Some(verification)).await
}

async fn page(
    dashboard: &Dashboard,
    admin: &Admin,
    params: AuditParams,
    verification: Option<Verification>,
) -> Result<Response, PageError> {
    let mut checkpoints = dashboard.app.store.checkpoints().await.map_err(|e| admin.failed(e))?;
    checkpoints.reverse();
    let rows = checkpoints
        .into_iter()
        .map(|c| CheckpointRow { seq: c.seq, head: c.head_hash, key_id: c.key_id, at: Moment::of(c.at) })
        .collect();
    let view = AuditPage {
        chrome: Chrome::new(Some(admin.signed_in.person()), "admin"),
        verification,
        checkpoints: Paged::of(rows, params.page, "/admin/audit", &[], "page"),
    };
    Ok(render(StatusCode::OK, &view))
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportParams {
    since: Option<String>,
}

/// `GET /admin/audit/export`: the events as a JSON Lines download, streamed page by page.
pub async fn export(
    State(dashboard): State<Dashboard>,
    admin: Admin,
    Query(params): Query<ExportParams>,
) -> Result<Response, PageError> {
    let since = match params.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(
            crate::admin::since(text)
                .map_err(|message| admin.error(StatusCode::BAD_REQUEST, "That did not work", message))?,
        ),
    };
    let lines = signoff_server::export_audit_log(dashboard.app.store.clone(), since).map(|page| {
        let events = page?;
        signoff_server::json_lines(&events).map_err(|e| StoreError::other(format!("an event as JSON: {e}")))
    });
    let filename = format!("signoff-audit-{}.jsonl", signoff_store::now().format("%Y%m%dT%H%M%SZ"));
    let mut response = Body::from_stream(lines).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let disposition = format!("attachment; filename=\"{filename}\"");
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("an ASCII file name"));
    Ok(response)
}
