//! The admin pages (policy, keys, audit): only for a session signed in with an admin key bound to a person. Anyone
//! else gets a page that says so (403), and the bar shows them no Admin entry. Every page here calls the same
//! functions as the API and the CLI; every form that changes something carries the session's CSRF token.

use crate::Dashboard;
use crate::page::PageError;
use crate::session::SignedIn;
use crate::view::encode;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use signoff_domain::ApiKey;

/// Rows per page on the admin lists.
pub const PAGE_SIZE: usize = 25;

/// An admin, signed in with `key`.
pub struct Admin {
    pub signed_in: SignedIn,
    pub key: ApiKey,
}

impl Admin {
    /// Who the store records as acting: the person the admin key is bound to.
    pub fn actor(&self) -> String {
        self.key.actor().to_string()
    }

    /// A store failure, shown with this admin's navigation bar.
    pub fn failed(&self, error: signoff_store::StoreError) -> PageError {
        PageError::from(error).for_person(self.signed_in.person())
    }

    /// `error` shown with this admin's navigation bar.
    pub fn error(&self, status: StatusCode, title: &str, message: impl Into<String>) -> PageError {
        PageError::new(status, title, message).for_person(self.signed_in.person())
    }
}

impl FromRequestParts<Dashboard> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, dashboard: &Dashboard) -> Result<Self, Self::Rejection> {
        let signed_in = SignedIn::from_request_parts(parts, dashboard).await?;
        match signed_in.admin_key.clone() {
            Some(key) => Ok(Admin { signed_in, key }),
            None => Err(PageError::new(
                StatusCode::FORBIDDEN,
                "Admins only",
                "The admin pages are for admins: sign in with an admin key bound to you to see them.",
            )
            .for_person(signed_in.person())
            .into_response()),
        }
    }
}

/// `GET /admin`: the first admin page.
pub async fn index(_admin: Admin) -> Redirect {
    Redirect::to("/admin/policy")
}

/// The moment `span` (`30d`, `12h`) ago, or why `span` is not one.
pub fn since(span: &str) -> Result<DateTime<Utc>, String> {
    let window = signoff_policy::parse_duration(span).map_err(|e| format!("“{span}” is not a time span: {e}."))?;
    chrono::Duration::from_std(window)
        .ok()
        .and_then(|window| signoff_store::now().checked_sub_signed(window))
        .ok_or_else(|| format!("“{span}” reaches too far back."))
}

/// One page of a list: its rows and the links to the pages either side.
pub struct Paged<T> {
    pub rows: Vec<T>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl<T> Paged<T> {
    /// Page `page` (1-based, clamped) of `items`, linked as `{path}?{query}&{name}=N` (`query` may be empty).
    pub fn of(items: Vec<T>, page: Option<usize>, path: &str, query: &[(&str, String)], name: &str) -> Paged<T> {
        let total = items.len();
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = page.unwrap_or(1).clamp(1, pages);
        let rows = items.into_iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).collect();
        let link = |to: usize| {
            let mut pairs: Vec<String> = query
                .iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(key, value)| format!("{key}={}", encode(value)))
                .collect();
            pairs.push(format!("{name}={to}"));
            format!("{path}?{}", pairs.join("&"))
        };
        Paged {
            rows,
            total,
            page,
            pages,
            previous: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_cut_into_pages_that_link_to_their_neighbours() {
        let query = [("from", "2".to_string()), ("to", String::new())];
        let first = Paged::of((1..=60).collect(), None, "/admin/policy", &query, "page");
        assert_eq!((first.rows.len(), first.total, first.page, first.pages), (25, 60, 1, 3));
        assert_eq!((first.previous, first.next.as_deref()), (None, Some("/admin/policy?from=2&page=2")));
        let last = Paged::of((1..=60).collect(), Some(9), "/admin/keys", &[], "page");
        assert_eq!((last.page, last.rows), (3, (51..=60).collect::<Vec<_>>()), "a page past the end shows the last");
        assert_eq!((last.previous.as_deref(), last.next), (Some("/admin/keys?page=2"), None));
        assert_eq!(Paged::<u8>::of(Vec::new(), Some(0), "/x", &[], "page").pages, 1, "an empty list is one page");
    }
}
