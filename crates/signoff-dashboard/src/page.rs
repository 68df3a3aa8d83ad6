//! What every page shares: the navigation bar, the headers pages are sent with, and error pages that say in words
//! what went wrong.

use crate::assets::{SCRIPT, STYLE};
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use signoff_server::ApiError;

/// `Content-Security-Policy` of every page: scripts, styles and connections to this origin only, forms posted only
/// here, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The top of every page: the assets, and (once signed in) who is signed in with the sign-out form's token.
pub struct Chrome {
    pub css: String,
    pub js: String,
    pub person: Option<Person>,
    /// Which navigation entry is the current page.
    pub current: &'static str,
}

pub struct Person {
    pub name: String,
    pub csrf: String,
    /// Signed in with an admin key: the bar shows the Admin entry.
    pub admin: bool,
}

impl Chrome {
    pub fn new(person: Option<Person>, current: &'static str) -> Chrome {
        Chrome { css: format!("/assets/{}", STYLE.name), js: format!("/assets/{}", SCRIPT.name), person, current }
    }
}

/// Renders `template` as an HTML page with `status` and the security headers.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => html_response(status, html),
        Err(error) => {
            tracing::error!(%error, "a dashboard page failed to render");
            let text = "The page could not be shown (a rendering error, logged on the server).";
            html_response(StatusCode::INTERNAL_SERVER_ERROR, text.into())
        }
    }
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page that says what went wrong, in words.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
}

/// A failure a handler answers with: rendered as [`ErrorPage`].
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    pub person: Option<Person>,
}

impl PageError {
    pub fn new(status: StatusCode, title: &str, message: impl Into<String>) -> PageError {
        PageError { status, title: title.into(), message: message.into(), person: None }
    }

    /// The same error, shown with the navigation bar of `person`.
    pub fn for_person(mut self, person: Person) -> PageError {
        self.person = Some(person);
        self
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let title = match status.as_u16() {
            404 => "Not found",
            403 => "Not allowed",
            409 => "Already decided",
            400..=499 => "That did not work",
            _ => "Something went wrong",
        };
        let message = if status.is_server_error() {
            "The server could not do that just now; try again in a moment.".to_string()
        } else {
            sentence(&error.message)
        };
        PageError::new(status, title, message)
    }
}

impl From<signoff_store::StoreError> for PageError {
    fn from(error: signoff_store::StoreError) -> Self {
        PageError::from(ApiError::from(error))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage { chrome: Chrome::new(self.person, ""), title: self.title, message: self.message };
        render(self.status, &page)
    }
}

/// An error message as a sentence: capitalised, ending with a full stop.
pub fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut text: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}
