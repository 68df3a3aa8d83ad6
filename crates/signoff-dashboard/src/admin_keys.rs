//! `/admin/keys`: the API keys (never their secrets), a form to create one (its secret shown once, on the page
//! that answers the form), and revocation after a confirmation page. Keys are made and revoked by the same store
//! calls as `signoff keys create | revoke`, which check them the same way.

use crate::Dashboard;
use crate::admin::{Admin, Paged};
use crate::page::{Chrome, PageError, render, sentence};
use crate::view::Moment;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signoff_domain::{ApiKey, ApproverId, Role};
use signoff_store::{CreatedKeySecret, NewKey, StoreError};

struct KeyRow {
    id: String,
    name: String,
    role: String,
    person: String,
    owner: String,
    created: Moment,
    revoked: Option<Moment>,
}

/// The secrets of a key just created: shown on this one page, never again.
struct Created {
    id: String,
    name: String,
    secret: String,
    webhook_secret: Option<String>,
}

/// The create form as sent, kept when it is refused.
#[derive(Debug, Default, Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    approver: String,
    #[serde(default)]
    owner: String,
}

#[derive(Template)]
#[template(path = "admin_keys.html")]
struct KeysPage {
    chrome: Chrome,
    csrf: String,
    keys: Paged<KeyRow>,
    created: Option<Created>,
    /// The key just revoked, by name.
    revoked: Option<String>,
    form: CreateForm,
    roles: [&'static str; 3],
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct KeysParams {
    page: Option<usize>,
    revoked: Option<String>,
}

/// `GET /admin/keys`.
pub async fn list(
    State(dashboard): State<Dashboard>,
    admin: Admin,
    Query(params): Query<KeysParams>,
) -> Result<Response, PageError> {
    let keys = all_keys(&dashboard, &admin).await?;
    let revoked = params.revoked.and_then(|id| keys.iter().find(|k| k.id == id).map(|k| k.name.clone()));
    let view = KeysView { page: params.page, created: None, revoked, form: CreateForm::default(), error: None };
    Ok(page(&admin, keys, view, StatusCode::OK))
}

/// `POST /admin/keys`: creates a key and answers with its secret, shown only on this page.
pub async fn create(
    State(dashboard): State<Dashboard>,
    admin: Admin,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    admin.signed_in.check_csrf(form.csrf.as_deref())?;
    let created = match new_key(&form) {
        Ok(new) => dashboard.app.store.create_key(new, &admin.actor()).await,
        Err(problem) => Err(StoreError::Invalid(problem)),
    };
    let (view, status) = match created {
        Ok(CreatedKeySecret { key, secret, webhook_secret }) => {
            let created = Created { id: key.id, name: key.name, secret, webhook_secret };
            (KeysView { created: Some(created), ..KeysView::default() }, StatusCode::CREATED)
        }
        Err(StoreError::Invalid(problem)) => {
            let error = sentence(&format!("the key was not created: {problem}"));
            (KeysView { form, error: Some(error), ..KeysView::default() }, StatusCode::BAD_REQUEST)
        }
        Err(error) => return Err(admin.failed(error)),
    };
    let keys = all_keys(&dashboard, &admin).await?;
    Ok(page(&admin, keys, view, status))
}

/// The key the form describes; its rules (who needs a person, who may have an owner) are the store's.
fn new_key(form: &CreateForm) -> Result<NewKey, String> {
    let role: Role =
        form.role.parse().map_err(|_| format!("`{}` is not a role: agent, approver or admin", form.role))?;
    let person = |field: &str, text: &str| {
        let text = text.trim();
        (!text.is_empty()).then(|| ApproverId::parse(text).map_err(|e| format!("{field}: {e}"))).transpose()
    };
    Ok(NewKey {
        name: form.name.trim().to_string(),
        role,
        approver_id: person("the person it acts for", &form.approver)?,
        owner_id: person("the person responsible", &form.owner)?,
    })
}

#[derive(Template)]
#[template(path = "admin_revoke.html")]
struct RevokePage {
    chrome: Chrome,
    csrf: String,
    key: KeyRow,
}

/// `GET /admin/keys/{id}/revoke`: asks to confirm.
pub async fn confirm_revoke(
    State(dashboard): State<Dashboard>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let key = all_keys(&dashboard, &admin).await?.into_iter().find(|k| k.id == id);
    let key = key.ok_or_else(|| no_such_key(&admin, &id))?;
    if key.is_revoked() {
        return Ok(Redirect::to("/admin/keys").into_response());
    }
    let view = RevokePage {
        chrome: Chrome::new(Some(admin.signed_in.person()), "admin"),
        csrf: admin.signed_in.session.csrf_token.clone(),
        key: row(&key),
    };
    Ok(render(StatusCode::OK, &view))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    csrf: Option<String>,
}

/// `POST /admin/keys/{id}/revoke`: revokes the key, then lists the keys saying so. Revoking the key this session
/// was signed in with ends the session too.
pub async fn revoke(
    State(dashboard): State<Dashboard>,
    admin: Admin,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    admin.signed_in.check_csrf(form.csrf.as_deref())?;
    match dashboard.app.store.revoke_key(&id, &admin.actor()).await {
        Ok(key) => Ok(Redirect::to(&format!("/admin/keys?revoked={}", crate::view::encode(&key.id))).into_response()),
        Err(StoreError::NotFound) => Err(no_such_key(&admin, &id)),
        Err(error) => Err(admin.failed(error)),
    }
}

fn no_such_key(admin: &Admin, id: &str) -> PageError {
    admin.error(StatusCode::NOT_FOUND, "Not found", format!("There is no key `{id}`."))
}

/// Every key, newest first.
async fn all_keys(dashboard: &Dashboard, admin: &Admin) -> Result<Vec<ApiKey>, PageError> {
    let mut keys = dashboard.app.store.keys().await.map_err(|e| admin.failed(e))?;
    keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
    Ok(keys)
}

/// What the keys page shows besides the list.
#[derive(Default)]
struct KeysView {
    page: Option<usize>,
    created: Option<Created>,
    revoked: Option<String>,
    form: CreateForm,
    error: Option<String>,
}

fn page(admin: &Admin, keys: Vec<ApiKey>, view: KeysView, status: StatusCode) -> Response {
    let rows = keys.iter().map(row).collect();
    let page = KeysPage {
        chrome: Chrome::new(Some(admin.signed_in.person()), "admin"),
        csrf: admin.signed_in.session.csrf_token.clone(),
        keys: Paged::of(rows, view.page, "/admin/keys", &[], "page"),
        created: view.created,
        revoked: view.revoked,
        form: view.form,
        roles: ["agent", "approver", "admin"],
        error: view.error,
    };
    render(status, &page)
}

fn row(key: &ApiKey) -> KeyRow {
    let or_dash = |id: &Option<ApproverId>| id.as_ref().map_or("—".to_string(), |id| id.to_string());
    KeyRow {
        id: key.id.clone(),
        name: key.name.clone(),
        role: key.role.as_str().to_string(),
        person: or_dash(&key.approver_id),
        owner: or_dash(&key.owner_id),
        created: Moment::of(key.created_at),
        revoked: key.revoked_at.map(Moment::of),
    }
}
