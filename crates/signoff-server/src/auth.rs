//! Bearer API keys: who is calling, and what their role lets them do.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use signoff_domain::{ApiKey, Role};
use signoff_wire::ErrorCode;

/// The authenticated caller: a live (unrevoked) key, and the secret it presented (kept for long-lived calls,
/// such as the event stream, that re-check the key while they run).
#[derive(Clone)]
pub struct Caller(pub ApiKey, String);

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Caller").field(&self.0).finish_non_exhaustive()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthorized = |message: &str| ApiError::new(ErrorCode::Unauthorized, message);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing `Authorization: Bearer <key>` header"))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, secret)| secret)
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <key>`"))?;
        let found = state.store.key_by_secret(secret).await?;
        // The rate limiter counts accepted keys by key, everything else by client address.
        if let Some(verdict) = parts.extensions.get::<crate::limits::KeyVerdict>() {
            verdict.record(found.as_ref().is_some_and(|key| !key.is_revoked()));
        }
        match found {
            Some(key) if !key.is_revoked() => Ok(Caller(key, secret.to_string())),
            Some(_) => Err(unauthorized("this API key has been revoked")),
            None => Err(unauthorized("unknown API key")),
        }
    }
}

impl Caller {
    pub fn role(&self) -> Role {
        self.0.role
    }

    /// Refuses callers whose role is not among `roles`.
    pub fn require(&self, roles: &[Role], doing: &str) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("a key with role `{}` cannot {doing}", self.0.role)))
        }
    }

    /// Whether the key is still live (not revoked since the call began).
    pub async fn still_valid(&self, state: &AppState) -> bool {
        matches!(state.store.key_by_secret(&self.1).await, Ok(Some(key)) if !key.is_revoked())
    }
}
