//! Extractors that answer bad input with our JSON error body rather than the framework's plain text.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts};

/// A JSON body; malformed, mistyped or oversized input becomes an [`ApiError`].
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// A query string; bad values become an [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters; a value that is not UTF-8 once percent-decoded becomes an [`ApiError`] (`bad_request`).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// A raw body (for routes whose body is optional); an oversized one becomes an [`ApiError`].
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiBytes(axum::body::Bytes::from_request(request, state).await?))
    }
}
