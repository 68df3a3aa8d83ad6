//! The API's one error type: a stable code, a message, and the HTTP status that goes with the code.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use signoff_domain::DomainError;
use signoff_store::StoreError;
use signoff_wire::{ErrorBody, ErrorCode, ErrorDetail, ErrorItem};

/// An error as the client sees it. Internal causes are logged, never sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<ErrorItem>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), details: Vec::new() }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    /// An unexpected failure: the client gets an opaque 500, the log gets the whole cause chain.
    fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // A wrapper that displays its cause would otherwise say it twice.
            if !chain.ends_with(&text) {
                chain.push_str(": ");
                chain.push_str(&text);
            }
            source = cause.source();
        }
        tracing::error!(cause = %chain, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error; the cause is in the server log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, details: self.details } };
        (status, Json(body)).into_response()
    }
}

impl From<signoff_policy::PolicyErrors> for ApiError {
    fn from(errors: signoff_policy::PolicyErrors) -> Self {
        let details = errors
            .errors
            .iter()
            .map(|e| ErrorItem { message: e.message.clone(), path: None, line: e.line, column: e.column })
            .collect();
        ApiError {
            code: ErrorCode::InvalidPolicy,
            message: format!("the policy was not applied; the version in force is unchanged:\n{errors}"),
            details,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let code = match &error {
            DomainError::Invalid { .. } => ErrorCode::InvalidRequest,
            DomainError::AlreadyDecided(_) => ErrorCode::AlreadyDecided,
            DomainError::CommentRequired => ErrorCode::CommentRequired,
            DomainError::InvalidEdit => ErrorCode::InvalidEdit,
            DomainError::SelfApproval => ErrorCode::SelfApproval,
            DomainError::EditNotAllowed => ErrorCode::EditNotAllowed,
            DomainError::InvalidReason(_) => ErrorCode::InvalidReason,
            DomainError::NotInGroup(_) => ErrorCode::Forbidden,
            DomainError::OutcomeAlreadyReported => ErrorCode::OutcomeAlreadyReported,
            DomainError::NotDecided => ErrorCode::NotDecided,
            DomainError::InvalidRevision(_) => ErrorCode::InvalidRevision,
            DomainError::WrongKind(_) => ErrorCode::WrongKind,
            DomainError::InvalidAnswer(_) => ErrorCode::InvalidAnswer,
            DomainError::SelfReview => ErrorCode::SelfApproval,
            DomainError::NotADeclaredApprover => ErrorCode::Forbidden,
            DomainError::AlreadyReviewed => ErrorCode::AlreadyReviewed,
            DomainError::NotReviewable(_) => ErrorCode::NotReviewable,
        };
        ApiError::new(code, error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found("request"),
            StoreError::IdempotencyConflict => ApiError::new(ErrorCode::IdempotencyConflict, error.to_string()),
            StoreError::Domain(domain) => domain.into(),
            StoreError::Invalid(message) => ApiError::invalid(message),
            error @ StoreError::Other(_) => ApiError::internal(&error),
        }
    }
}

/// The answer when a body did not arrive within the body timeout.
fn body_timeout() -> ApiError {
    ApiError::new(ErrorCode::Timeout, "the request body did not arrive within the body timeout")
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if crate::limits::is_body_timeout(&rejection) {
            return body_timeout();
        }
        let code = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            _ => ErrorCode::BadRequest,
        };
        let message = match code {
            ErrorCode::PayloadTooLarge => {
                format!("the body is larger than the limit of {} bytes", crate::MAX_BODY_BYTES)
            }
            ErrorCode::UnsupportedMediaType => "send the body as JSON with `Content-Type: application/json`".into(),
            _ => rejection.body_text(),
        };
        ApiError::new(code, message)
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if crate::limits::is_body_timeout(&rejection) {
            return body_timeout();
        }
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than the limit of {} bytes", crate::MAX_BODY_BYTES),
            )
        } else {
            ApiError::new(ErrorCode::BadRequest, rejection.body_text())
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(ErrorCode::BadRequest, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(ErrorCode::BadRequest, rejection.body_text())
    }
}
