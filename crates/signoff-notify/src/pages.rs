//! The pages an email link opens: the confirmation form, or a question's answer form (a `GET` decides nothing; its
//! `POST` does), and the notices
//! that say why a link did nothing (used, expired, not valid, superseded) or what it did.
//!
//! Every page is self-contained: its only style is one inline `<style>` element allowed by the
//! Content-Security-Policy through its SHA-256 hash, and nothing is loaded from anywhere. Askama escapes every value.

use crate::RequestView;
use crate::email::{Detail, details, heading};
use crate::links::LinkClaims;
use askama::Template;
use base64::Engine;
use sha2::{Digest, Sha256};
use signoff_domain::Request;
use std::sync::LazyLock;

/// The pages' one style sheet, inlined in a `<style>` element.
pub const CSS: &str = "body{margin:0;padding:24px;background:#f6f7f9;font-family:-apple-system,'Segoe UI',Helvetica,\
Arial,sans-serif;color:#1f2328}main{max-width:640px;margin:0 auto;background:#fff;border:1px solid #d8dee4;\
border-radius:8px;padding:24px}h1{font-size:20px;margin:0 0 16px}p.lead{color:#59636e;margin:0 0 4px;font-size:13px}\
table{border-collapse:collapse;width:100%;font-size:14px}th{text-align:left;vertical-align:top;padding:6px 12px 6px 0;\
color:#59636e;white-space:nowrap}td{padding:6px 0;white-space:pre-wrap;word-break:break-word}label{display:block;\
margin:16px 0 4px;font-weight:600}select,textarea{width:100%;box-sizing:border-box;font:inherit;padding:6px}\
textarea{min-height:80px}label.choice{font-weight:400;margin:8px 0}fieldset{border:0;padding:0;margin:16px 0 0}legend{font-weight:600}button{margin-top:20px;padding:10px 18px;border:0;border-radius:6px;color:#fff;\
font-weight:600;font-size:15px;cursor:pointer}button.approve{background:#1a7f37}button.reject{background:#cf222e}\
.notice{font-size:16px}";

/// `Content-Security-Policy` for every page: nothing but the inline style sheet above, forms only to this origin,
/// never framed.
pub static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// The headers every page is sent with.
pub fn security_headers() -> [(&'static str, &'static str); 5] {
    [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", CONTENT_SECURITY_POLICY.as_str()),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
    ]
}

/// The page a link's `GET` shows: the request's details and a form that `POST`s back `token` and `form_token` (to
/// the page's own URL). Reject asks for a reason (one of the request's `reject_reasons`, when it has some) and a
/// comment; approve takes an optional comment; answer asks for the answer (one of the question's `options`, when it
/// has some, else text).
pub fn confirm(request: &Request, view: &RequestView, claims: &LinkClaims, token: &str, form_token: &str) -> String {
    let details = details(request, view);
    ConfirmPage {
        css: CSS,
        heading: heading(request),
        person: view.name_of(&claims.approver_id),
        outcome: claims.outcome.as_str(),
        details: &details,
        token,
        form_token,
        reasons: &request.reject_reasons,
        options: &request.options,
    }
    .render()
    .expect("the confirmation template renders")
}

/// A page saying one thing: `title`, then each of `lines` as a paragraph.
pub fn notice(title: &str, lines: &[String]) -> String {
    NoticePage { css: CSS, title, lines }.render().expect("the notice template renders")
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage<'a> {
    css: &'static str,
    heading: String,
    person: &'a str,
    /// `approve`, `reject` or `answer`.
    outcome: &'static str,
    details: &'a [Detail],
    token: &'a str,
    form_token: &'a str,
    reasons: &'a [String],
    options: &'a [String],
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage<'a> {
    css: &'static str,
    title: &'a str,
    lines: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_hashes_exactly_the_style_element() {
        let page = notice("Done", &["<b>bold</b>".into()]);
        let style = page.split("<style>").nth(1).unwrap().split("</style>").next().unwrap();
        assert_eq!(style, CSS);
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style.as_bytes()));
        assert!(CONTENT_SECURITY_POLICY.contains(&format!("'sha256-{hash}'")));
        assert!(page.contains("&#60;b&#62;bold&#60;/b&#62;") || page.contains("&lt;b&gt;bold&lt;/b&gt;"), "{page}");
        assert!(!page.contains("<b>"));
    }
}
