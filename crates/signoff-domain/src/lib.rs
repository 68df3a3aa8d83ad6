//! Signoff's domain: approval requests, their decisions and the status state machine.
//!
//! This crate does no I/O and knows nothing of HTTP or SQL (checked in CI). The request types derive
//! serde because their JSON form is both what the store persists and what the API returns. The vocabulary shared
//! with the policy engine (verdicts, routes, modes, channels) lives here; `signoff-policy` depends on this crate.
#![forbid(unsafe_code)]

mod callback_url;
pub mod checkpoint;
mod delivery;
mod event;
mod grant;
mod identity;
mod key;
mod notification;
mod policy_version;
mod request;
mod review;
mod time;
mod vocabulary;

pub use callback_url::{CALLBACK_URL_MAX_LEN, CALLBACK_URL_PATTERN, is_valid_callback_url};
pub use delivery::{DeliveryRecord, DeliveryState};
pub use event::{ChainBreak, ChainVerifier, Event, EventKind, GENESIS_HASH, NewEvent, canonical_before_seq};
pub use grant::{GRANT_ID_MAX_LEN, Grant, ScopePath, ScopeValue, StandingTerms};
pub use identity::{Actor, ApproverId};
pub use key::{ApiKey, KeyId, Role, hash_key_secret};
pub use notification::{NewAsk, Notification, NotificationPlan, NotificationState, Purpose, RemindPlan};
pub use policy_version::PolicyVersion;
pub use request::{
    Approval, DecidedBy, Decision, DecisionOutcome, DomainError, Escalation, HumanVerdict, Kind, NewRequest, Outcome,
    Placement, PolicyMatch, Reminder, Request, RequestId, Requester, Status,
};
pub use review::{FLAG_REASON_MAX_CHARS, FlagInput, Review, ReviewVerdict, Reviewable, Reviewer};
pub use vocabulary::{
    Channel, EscalationStep, Mode, OnTimeout, Route, Verdict, VerdictOutcome, format_duration, secs, secs_list,
};
