//! Signoff's policy engine: parses, validates and evaluates approval policies. Pure: no I/O.
//!
//! A policy is a YAML document (`version: 1`) of approvers, groups, defaults, ordered rules
//! whose `when` conditions are CEL expressions, compiled once by [`Policy::parse`], and optional
//! per-action argument schemas. For each request, [`Policy::check_args`] checks its args against
//! its action's schema and [`Policy::evaluate`] returns a [`Verdict`]: approve, deny, route to
//! people, or review (post-execution, sampled). A condition that cannot be evaluated follows
//! `defaults.on_error` ([`OnError`]). [`Policy::warnings`] lists likely mistakes in a valid policy.
//! The vocabulary shared with the domain ([`Verdict`], [`Route`], [`Mode`], [`Channel`], ...) is
//! defined in `signoff-domain` and re-exported here. See `docs/policy.md` for the format.
//!
//! ```
//! use signoff_policy::{EvalInput, Mode, Policy, Verdict};
//!
//! let policy = Policy::parse(r#"
//! version: 1
//! approvers:
//!   - { id: dana, name: Dana, email: dana@example.com, groups: [finance] }
//! groups:
//!   finance: { notify: [email] }
//! defaults: { route: finance, timeout: 24h, on_timeout: reject }
//! rules:
//!   - name: small
//!     when: action == "expense" && args.amount < 100
//!     decide: approve
//! "#).unwrap();
//! let args = serde_json::json!({ "amount": 42 });
//! let input = EvalInput {
//!     request_id: "req-1", action: "expense", args: &args, context: &serde_json::Value::Null,
//!     confidence: None, tags: &[], mode: Mode::Pre, agent: "bot", run_id: None,
//! };
//! assert_eq!(policy.evaluate(&input), Verdict::Approve { rule: "small".into() });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bindings;
pub mod digest;
pub mod draft;
pub mod duration;
mod error;
mod eval;
pub mod line_diff;
mod lint;
mod model;
mod parse;
mod policy;
mod prefilter;
pub mod replay;
pub mod rotation;
mod schema;
mod yaml;

pub use digest::{Digest, DigestSchedule};
pub use duration::{format_duration, parse_duration};
pub use error::{PolicyError, PolicyErrors, PolicyWarning};
pub use eval::{EvalInput, Explanation, Mode, Outcome, Route, RuleTrace, TraceStatus, Verdict, sample_draw};
pub use model::{
    Approver, Channel, Decision, Defaults, EVERYONE, EscalationStep, Group, OnError, OnTimeout, RouteSpec, Rule,
    RuleAction, Standing,
};
pub use policy::{BUILTIN_SOURCE, Policy};
pub use replay::{ReplayRecord, ReplayReport, RuleImpact, Transition, replay};
pub use rotation::{OnCall, Rotation, Schedule};
pub use schema::ArgProblem;
pub use signoff_domain::{ScopePath, StandingTerms};

/// The variables available to `when` conditions.
pub const CONDITION_VARIABLES: [&str; 8] = parse::VARIABLES;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn policy_is_send_sync() {
        assert_send_sync::<crate::Policy>();
    }
}
