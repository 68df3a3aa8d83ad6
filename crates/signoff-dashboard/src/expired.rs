//! Expired: the requests that reached their deadline under `on_timeout: fail` in the signed-in person's groups (an
//! admin sees every group's), the newest first. Nothing was done for them: this is the work that needs following up.

use crate::Dashboard;
use crate::lists::{self, Pager, rule_of};
use crate::page::{Chrome, PageError, render};
use crate::queue::my_groups;
use crate::session::SignedIn;
use crate::view::{Moment, key_args};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use signoff_domain::{Request, Status};
use signoff_policy::EVERYONE;
use signoff_store::RequestQuery;

#[derive(Debug, Default, Deserialize)]
pub struct ExpiredParams {
    page: Option<u32>,
}

struct Row {
    id: String,
    title: String,
    action: String,
    key_args: Vec<String>,
    group: String,
    rule: String,
    expired: Option<Moment>,
}

#[derive(Template)]
#[template(path = "expired.html")]
struct ExpiredPage {
    chrome: Chrome,
    rows: Vec<Row>,
    /// Whose requests these are: `your groups` or `every group`.
    scope: &'static str,
    pager: Pager,
}

/// `GET /expired`.
pub async fn show(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Query(params): Query<ExpiredParams>,
) -> Result<Response, PageError> {
    let in_person = |e: PageError| e.for_person(signed_in.person());
    let admin = signed_in.is_admin(&dashboard).await.map_err(|e| in_person(e.into()))?;
    let groups = if admin {
        None
    } else {
        let policy = dashboard.app.policy.current().policy.clone();
        Some(my_groups(&policy, signed_in.session.person.as_str()))
    };
    let query = RequestQuery { statuses: vec![Status::Expired], groups, ..RequestQuery::default() };
    let page = lists::fetch(&dashboard, query, params.page).await.map_err(in_person)?;
    let view = ExpiredPage {
        chrome: Chrome::new(Some(signed_in.person()), "expired"),
        rows: page.requests.iter().map(row).collect(),
        scope: if admin { "every group" } else { "your groups" },
        pager: Pager::new("/expired", &[], &page),
    };
    Ok(render(StatusCode::OK, &view))
}

fn row(request: &Request) -> Row {
    Row {
        id: request.id.to_string(),
        title: request.summary.clone().unwrap_or_else(|| request.action.clone()),
        action: request.action.clone(),
        key_args: key_args(&request.args),
        group: request.group.clone().unwrap_or_else(|| EVERYONE.to_string()),
        rule: rule_of(request),
        expired: request.decision.as_ref().map(|d| Moment::of(d.at)),
    }
}
