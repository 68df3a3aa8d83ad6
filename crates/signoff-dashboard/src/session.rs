//! Sessions: a random token in an `HttpOnly` cookie, stored only as its hash, with a CSRF token every form of the
//! session carries back. A session is checked on every request: it must not have expired or been ended, the key it
//! was signed in with must not be revoked (the store checks both), and its person must still be in the policy.

use crate::Dashboard;
use crate::page::{PageError, Person};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};
use signoff_domain::{ApiKey, ApproverId, Role};
use signoff_policy::Policy;
use signoff_store::{DashboardSession, StoreError};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "signoff_session";

/// Starts a session for `person`, signed in with the key `key_id` (or by a method that uses none), and returns the
/// `Set-Cookie` value that hands it to the browser. Every sign-in method ends with this one call.
pub async fn start_session(
    dashboard: &Dashboard,
    person: ApproverId,
    key_id: Option<String>,
) -> Result<HeaderValue, StoreError> {
    let token = random_token();
    let created_at = signoff_store::now();
    let ttl = chrono::Duration::from_std(dashboard.settings.session_ttl).unwrap_or(chrono::Duration::hours(12));
    let session = DashboardSession {
        token_hash: hash(&token),
        person,
        key_id,
        csrf_token: random_token(),
        created_at,
        expires_at: created_at + ttl,
    };
    dashboard.app.store.create_session(&session).await?;
    let max_age = dashboard.settings.session_ttl.as_secs();
    cookie(dashboard, &format!("{token}; Max-Age={max_age}"))
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(dashboard: &Dashboard) -> Result<HeaderValue, StoreError> {
    cookie(dashboard, "; Max-Age=0")
}

fn cookie(dashboard: &Dashboard, value_and_age: &str) -> Result<HeaderValue, StoreError> {
    let secure = if dashboard.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={value_and_age}; Path=/; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&cookie).map_err(|e| StoreError::other(format!("session cookie: {e}")))
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `person` may use the dashboard under `policy`: they are one of its approvers, or it declares none (the
/// built-in policy, where any approver key's person may decide).
pub fn in_policy(policy: &Policy, person: &ApproverId) -> bool {
    policy.approvers().is_empty() || policy.approver(person.as_str()).is_some()
}

/// A person signed in, as found on this request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: DashboardSession,
    /// The person's name in the policy (their id when it names none).
    pub name: String,
    /// The admin key this session was signed in with, if it was one: only such sessions see the admin pages.
    pub admin_key: Option<ApiKey>,
}

impl SignedIn {
    /// The navigation bar's view of this person.
    pub fn person(&self) -> Person {
        Person { name: self.name.clone(), csrf: self.session.csrf_token.clone(), admin: self.admin_key.is_some() }
    }

    /// Whether this person signed in with an admin key (every key the dashboard accepts is bound to a person).
    pub async fn is_admin(&self, dashboard: &Dashboard) -> Result<bool, StoreError> {
        let Some(key_id) = &self.session.key_id else { return Ok(false) };
        let keys = dashboard.app.store.keys().await?;
        Ok(keys.iter().any(|key| &key.id == key_id && key.role == Role::Admin))
    }

    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), PageError> {
        use subtle::ConstantTimeEq;
        let expected = self.session.csrf_token.as_bytes();
        match presented {
            Some(presented) if bool::from(presented.as_bytes().ct_eq(expected)) => Ok(()),
            _ => Err(PageError::new(
                StatusCode::FORBIDDEN,
                "Form refused",
                "This form was not sent from your current session (its security token is missing or wrong). \
                 Reload the page and try again.",
            )
            .for_person(self.person())),
        }
    }

    /// The session behind `token_hash`, if it is still good: live in the store and its person in the policy.
    pub async fn find(dashboard: &Dashboard, token_hash: &str) -> Result<Option<SignedIn>, StoreError> {
        let Some(session) = dashboard.app.store.live_session(token_hash, signoff_store::now()).await? else {
            return Ok(None);
        };
        let active = dashboard.app.policy.current();
        if !in_policy(&active.policy, &session.person) {
            return Ok(None);
        }
        let name = active.policy.approver(session.person.as_str()).map(|a| a.name.clone());
        let name = name.unwrap_or_else(|| session.person.to_string());
        let admin_key = match &session.key_id {
            Some(key_id) => dashboard.app.store.keys().await?.into_iter().find(|key| {
                &key.id == key_id && key.role == Role::Admin && key.approver_id.as_ref() == Some(&session.person)
            }),
            None => None,
        };
        Ok(Some(SignedIn { session, name, admin_key }))
    }
}

/// The hash of the session cookie a request carries, if any.
fn cookie_token_hash(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('=').map(hash))
}

impl FromRequestParts<Dashboard> for SignedIn {
    type Rejection = Response;

    /// A page asked for without a good session goes to the sign-in page (and back here after); anything else is
    /// refused with a page that says the person is signed out.
    async fn from_request_parts(parts: &mut Parts, dashboard: &Dashboard) -> Result<Self, Self::Rejection> {
        let found = match cookie_token_hash(parts) {
            Some(token_hash) => {
                SignedIn::find(dashboard, &token_hash).await.map_err(|e| PageError::from(e).into_response())?
            }
            None => None,
        };
        if let Some(signed_in) = found {
            return Ok(signed_in);
        }
        if parts.method == Method::GET {
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            return Err(Redirect::to(&format!("/sign-in?next={}", crate::view::encode(next))).into_response());
        }
        Err(PageError::new(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "You are not signed in (your session ended, expired or was never started). Sign in again to continue.",
        )
        .into_response())
    }
}

/// Where to go after signing in: a path on this server, never another host.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path,
        _ => "/",
    }
}
