//! Signoff's domain: approval requests, their decisions and the status state machine.
//!
//! This crate does no I/O and knows nothing of HTTP or SQL (checked in CI). The request types derive
//! serde because their JSON form is both what the store persists and what the API returns.
#![forbid(unsafe_code)]

pub mod checkpoint;
mod event;
mod key;
mod policy_version;
mod request;

pub use event::{ChainBreak, ChainVerifier, Event, EventKind, GENESIS_HASH, NewEvent};
pub use key::{ApiKey, KeyId, Role, hash_key_secret};
pub use policy_version::PolicyVersion;
pub use request::{
    Approval, DecidedBy, Decision, DecisionOutcome, DomainError, Escalation, HumanVerdict, Mode, NewRequest, Outcome,
    Placement, PolicyMatch, Request, RequestId, Requester, Status,
};
