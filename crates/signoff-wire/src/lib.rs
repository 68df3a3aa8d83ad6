//! Signoff's HTTP wire types: request bodies, list pages and the error body with its stable codes.
//! Shared by the server and the client so both agree on every byte.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod advice;
pub mod stats;

pub use signoff_domain::checkpoint::SignedCheckpoint;
pub use signoff_domain::{
    ApiKey, Approval, DecidedBy, Decision, DecisionOutcome, DeliveryRecord, DeliveryState, Event, EventKind, Grant,
    Kind, Mode, NewRequest, Notification, Outcome, PolicyVersion, Request, RequestId, Requester, Review, ReviewVerdict,
    Role, ScopeValue, Status,
};

/// Stable, snake_case error codes; clients branch on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON or has the wrong shape (wrong type, missing or unknown field).
    BadRequest,
    /// The body parsed but a value is out of range.
    InvalidRequest,
    /// The arguments do not fit the policy's schema for the action (`details` has each problem's JSON path).
    InvalidArgs,
    /// One field of the body is over its size limit (the message names it).
    FieldTooLarge,
    /// The key is bound to no person, and only people decide.
    NotAnApprover,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyConflict,
    AlreadyDecided,
    CommentRequired,
    InvalidEdit,
    SelfApproval,
    EditNotAllowed,
    InvalidReason,
    InvalidPolicy,
    OutcomeAlreadyReported,
    NotDecided,
    /// A finding of the advice made for another policy version than the one in force.
    PolicyChanged,
    /// `revises` names no request of this agent's, or one that is not rejected or expired, or already revised.
    InvalidRevision,
    /// An answer to a request that asks for approval, or a decision on a question.
    WrongKind,
    /// An answer that is empty, too long, or not one of the question's options.
    InvalidAnswer,
    /// A confirm or flag on a request that already has its one review.
    AlreadyReviewed,
    /// A confirm or flag on a request that cannot be reviewed: a person approved it, it was rejected, expired or
    /// cancelled, or (confirm) it is not a pending sampled review.
    NotReviewable,
    /// Too many calls for one API key (or, for calls without an accepted key, one client address); see `Retry-After`.
    RateLimited,
    /// The call did not finish within the server's request timeout, or its body did not arrive within the body timeout.
    Timeout,
    /// The server is at its connection cap; the connection was answered and closed. See `Retry-After`.
    TooManyConnections,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::InvalidRequest
            | ErrorCode::CommentRequired
            | ErrorCode::InvalidEdit
            | ErrorCode::EditNotAllowed
            | ErrorCode::InvalidReason
            | ErrorCode::InvalidPolicy
            | ErrorCode::InvalidRevision
            | ErrorCode::WrongKind
            | ErrorCode::InvalidAnswer
            | ErrorCode::InvalidArgs => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::SelfApproval | ErrorCode::NotAnApprover => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::IdempotencyConflict
            | ErrorCode::AlreadyDecided
            | ErrorCode::OutcomeAlreadyReported
            | ErrorCode::NotDecided
            | ErrorCode::AlreadyReviewed
            | ErrorCode::NotReviewable
            | ErrorCode::PolicyChanged => 409,
            ErrorCode::PayloadTooLarge | ErrorCode::FieldTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::TooManyConnections => 503,
        }
    }
}

/// `{"error": {"code", "message"}}`: every error the API returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// Itemised problems, where there are several (an invalid policy: one per problem, with its position).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorItem>,
}

/// One problem in an [`ErrorDetail`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorItem {
    pub message: String,
    /// For argument problems: where, as a JSON path (`$.amount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// The policy in force: `GET /v1/policy`, and the answer to `PUT /v1/policy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyView {
    /// 0: no policy was ever applied and the built-in default is in force.
    pub version: i64,
    pub builtin: bool,
    pub content_hash: String,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_by: Option<String>,
    pub rules: usize,
    pub source: String,
}

/// One entry of `GET /v1/policy/versions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersionSummary {
    pub version: i64,
    pub content_hash: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub created_by: String,
}

/// A callback and every attempt made to deliver it: `GET /v1/requests/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryView {
    #[serde(flatten)]
    pub record: signoff_domain::DeliveryRecord,
    /// The attempts, oldest first (the `callback_attempted` events' data).
    pub history: Vec<Value>,
}

/// A notification and every attempt made to send it: `GET /v1/requests/{id}/notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationView {
    #[serde(flatten)]
    pub notification: signoff_domain::Notification,
    /// The attempts, oldest first (the `notification_attempted` events' data).
    pub history: Vec<Value>,
}

/// The answer of `GET /v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub ok: bool,
    pub events: u64,
    /// The hash of the last good event.
    pub head: Option<String>,
    /// The first event that does not check out.
    pub first_bad_seq: Option<i64>,
    pub problem: Option<String>,
}

/// Who is on call for a group with a rotation: `GET /v1/groups/{name}/oncall`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnCallView {
    pub group: String,
    pub on_call: PersonView,
    /// When the current shift started.
    pub since: chrono::DateTime<chrono::Utc>,
    /// The next hand-over.
    pub until: chrono::DateTime<chrono::Utc>,
    /// Who takes over at `until`.
    pub next: PersonView,
}

/// A person of the policy: their approver id and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonView {
    pub id: String,
    pub name: String,
}

/// A person's verdict: `POST /v1/requests/{id}/decision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub outcome: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Approve only: replaces the proposed arguments (both are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Approve only: also approve similar requests for this many seconds (a standing approval), where the rule's
    /// `standing` allows it.
    #[serde(default, deserialize_with = "whole_seconds", skip_serializing_if = "Option::is_none")]
    pub standing_s: Option<u64>,
}

/// Whole seconds as JSON Schema reads an integer: `30`, or the same number written `30.0`; never a fraction.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    // 2^64: every whole float below it is a u64.
    const U64_END: f64 = 18_446_744_073_709_551_616.0;
    let whole = number
        .as_u64()
        .or_else(|| number.as_f64().filter(|v| v.fract() == 0.0 && (0.0..U64_END).contains(v)).map(|v| v as u64));
    whole
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number of seconds, found {number}")))
}

/// `GET /v1/grants`: standing approvals, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantList {
    pub items: Vec<Grant>,
}

/// A person's answer to a question: `POST /v1/requests/{id}/answer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

/// A person confirms a sampled review: `POST /v1/requests/{id}/confirm` (the body is optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A person flags what an agent did: `POST /v1/requests/{id}/flag`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagBody {
    /// Why: free text or a short code (`wrong_amount`), 1 to 200 characters.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether the agent must undo the action.
    #[serde(default)]
    pub undo: bool,
}

/// `POST /v1/requests/{id}/cancel` (the body is optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/requests/{id}/outcome`: what happened when the agent executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeBody {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// One page of a list, newest first; pass `next_cursor` as `cursor` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A freshly created key: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub approver_id: Option<signoff_domain::ApproverId>,
    /// For agent keys: the person responsible for the agent.
    pub owner_id: Option<signoff_domain::ApproverId>,
    /// The bearer secret: shown once, stored only as a hash.
    pub key: String,
    /// For agent and admin keys: the Standard Webhooks secret that signs the callbacks of the requests they create.
    pub webhook_secret: Option<String>,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}
