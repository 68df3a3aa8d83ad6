//! Standing approvals: a person's approval that also approves, until it expires or is revoked, the same agent key's
//! later requests under the same rule whose scoped fields are equal to the ones that person approved.

use crate::event::{EventKind, NewEvent};
use crate::identity::{Actor, ApproverId};
use crate::request::{DecidedBy, Decision, DecisionOutcome, DomainError, Kind, Request, RequestId, Status};
use crate::vocabulary::Channel;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;

/// One field a standing approval is scoped to, as a rule's `standing.scope` names it (written as that text in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ScopePath {
    /// The request's action (always part of a grant's scope, listed or not).
    Action,
    /// The request's tags, as a set.
    Tags,
    /// A field of the arguments (`args.customer`, `args.account.id`).
    Args(Vec<String>),
    /// A field of the context (`context.tenant`).
    Context(Vec<String>),
}

impl ScopePath {
    /// Parses `action`, `tags`, `args.<field>[.<field>…]` or `context.<field>[.<field>…]`; each field is 1 to 64
    /// letters, digits, `_` or `-`.
    pub fn parse(text: &str) -> Result<ScopePath, String> {
        let mut parts = text.split('.');
        let root = parts.next().unwrap_or_default();
        let fields: Vec<String> = parts.map(String::from).collect();
        let bad_field = |f: &String| {
            f.is_empty() || f.len() > 64 || !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        match root {
            "action" | "tags" if !fields.is_empty() => Err(format!("`{root}` has no fields: write `{root}`")),
            "action" => Ok(ScopePath::Action),
            "tags" => Ok(ScopePath::Tags),
            "args" | "context" if fields.is_empty() => {
                Err(format!("`{root}` needs a field: write `{root}.NAME` (e.g. `{root}.customer`)"))
            }
            "args" | "context" if fields.iter().any(bad_field) => Err(format!(
                "`{text}`: each field after `{root}.` is 1 to 64 letters, digits, `_` or `-`, separated by `.`"
            )),
            "args" => Ok(ScopePath::Args(fields)),
            "context" => Ok(ScopePath::Context(fields)),
            _ => Err(format!("`{text}`: a scope is `action`, `tags`, `args.FIELD` or `context.FIELD`")),
        }
    }

    /// The value this path names in a request whose arguments are `args` (a missing field is `null`).
    pub fn value_in(&self, request: &Request, args: &Value) -> Value {
        let walk = |mut value: &Value, fields: &[String]| {
            for field in fields {
                match value.get(field) {
                    Some(inner) => value = inner,
                    None => return Value::Null,
                }
            }
            value.clone()
        };
        match self {
            ScopePath::Action => Value::String(request.action.clone()),
            ScopePath::Tags => {
                let mut tags = request.tags.clone();
                tags.sort();
                tags.dedup();
                json!(tags)
            }
            ScopePath::Args(fields) => walk(args, fields),
            ScopePath::Context(fields) => walk(&request.context, fields),
        }
    }
}

impl TryFrom<String> for ScopePath {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        ScopePath::parse(&text)
    }
}

impl From<ScopePath> for String {
    fn from(path: ScopePath) -> String {
        path.to_string()
    }
}

impl fmt::Display for ScopePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopePath::Action => f.write_str("action"),
            ScopePath::Tags => f.write_str("tags"),
            ScopePath::Args(fields) => write!(f, "args.{}", fields.join(".")),
            ScopePath::Context(fields) => write!(f, "context.{}", fields.join(".")),
        }
    }
}

/// A scoped field and the value a grant holds it to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeValue {
    pub path: String,
    pub value: Value,
}

/// What a rule's `standing` allows, as the policy in force states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingTerms {
    pub rule: String,
    /// The longest window a person may grant.
    pub max: Duration,
    /// The scoped fields, `action` first (added when the rule does not list it).
    pub scope: Vec<ScopePath>,
}

impl StandingTerms {
    /// The scope of a grant made from `request` approved with `args`.
    pub fn scope_of(&self, request: &Request, args: &Value) -> Vec<ScopeValue> {
        self.scope
            .iter()
            .map(|path| ScopeValue { path: path.to_string(), value: path.value_in(request, args) })
            .collect()
    }
}

/// A standing approval (`grt_…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    /// The rule whose requests it approves.
    pub rule: String,
    /// The agent key whose requests it approves.
    pub key_id: String,
    /// Every scoped field and its value; a request matches when all are equal.
    pub scope: Vec<ScopeValue>,
    /// The person who granted it; the requests it approves name them.
    pub approver_id: ApproverId,
    pub channel: Channel,
    /// The approved request it was granted with.
    pub request_id: RequestId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub revoked_by: Option<String>,
    /// How many requests it approved.
    #[serde(default)]
    pub uses: u64,
}

/// The longest id a grant can have, for refusing garbage in paths early.
pub const GRANT_ID_MAX_LEN: usize = 64;

impl Grant {
    /// A new grant id: `grt_` and a UUIDv7 in hex.
    pub fn new_id() -> String {
        format!("grt_{}", uuid::Uuid::now_v7().simple())
    }

    /// Whether it still approves requests at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    /// The scope as one canonical string: what the stores compare to find a matching grant.
    pub fn scope_key(scope: &[ScopeValue]) -> String {
        serde_json::to_string(scope).unwrap_or_default()
    }

    /// The `grant_created` event, on the request it was granted with.
    pub fn created_event(&self) -> NewEvent {
        NewEvent::new(
            Some(self.request_id),
            EventKind::GrantCreated,
            Actor::Person(self.approver_id.clone()).to_string(),
            json!({
                "grant_id": self.id,
                "rule": self.rule,
                "key_id": self.key_id,
                "scope": self.scope,
                "approver_id": self.approver_id,
                "channel": self.channel,
                "expires_at": self.expires_at,
            }),
        )
    }

    /// Revokes it; `None` when it was revoked already (revoking twice changes nothing).
    pub fn revoke(&mut self, actor: &str, now: DateTime<Utc>) -> Option<NewEvent> {
        if self.revoked_at.is_some() {
            return None;
        }
        self.revoked_at = Some(now);
        self.revoked_by = Some(actor.to_string());
        Some(NewEvent::new(
            Some(self.request_id),
            EventKind::GrantRevoked,
            actor,
            json!({ "grant_id": self.id, "expires_at": self.expires_at, "uses": self.uses }),
        ))
    }
}

impl Request {
    /// Grants a standing approval from this request, just approved by one person under `terms`' rule, for `window`
    /// (at most `terms.max`). Refused unless the request is an approval that one person's approval decided under that
    /// very rule (no quorum, no evaluation error).
    pub fn grant(&self, terms: &StandingTerms, window: Duration, now: DateTime<Utc>) -> Result<Grant, DomainError> {
        let invalid = |message: String| DomainError::Invalid { field: "standing_s", message };
        if window.is_zero() || window > terms.max {
            return Err(invalid(format!(
                "a standing approval under rule `{}` lasts 1 s to {} s",
                terms.rule,
                terms.max.as_secs()
            )));
        }
        let placed_by_rule =
            self.policy.as_ref().is_some_and(|p| p.error.is_none() && p.rule.as_deref() == Some(terms.rule.as_str()));
        if self.kind != Kind::Approval || !placed_by_rule || self.approvals_required != 1 {
            return Err(invalid(format!(
                "only a request that rule `{}` routes for one approval can be approved with a standing approval",
                terms.rule
            )));
        }
        let Some(Decision {
            outcome: DecisionOutcome::Approved,
            by: DecidedBy::Human { approver_id, channel },
            args,
            ..
        }) = &self.decision
        else {
            return Err(invalid("a standing approval comes only with an approval".to_string()));
        };
        let expires_at = now + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        Ok(Grant {
            id: Grant::new_id(),
            rule: terms.rule.clone(),
            key_id: self.requested_by.key_id.clone(),
            scope: terms.scope_of(self, args),
            approver_id: approver_id.clone(),
            channel: *channel,
            request_id: self.id,
            created_at: now,
            expires_at,
            revoked_at: None,
            revoked_by: None,
            uses: 0,
        })
    }

    /// Approves this new request at once under `grant` (which the store found live and matching), naming the grant
    /// and the person behind it. Does nothing to a request that is not a pending approval.
    pub fn approve_by_grant(&mut self, grant: &Grant, now: DateTime<Utc>) -> Vec<NewEvent> {
        if self.status != Status::Pending || self.kind != Kind::Approval {
            return Vec::new();
        }
        let decision = Decision {
            outcome: DecisionOutcome::Approved,
            args: self.args.clone(),
            edited: false,
            comment: Some(format!("approved by standing grant {} of {}", grant.id, grant.approver_id)),
            reason: None,
            by: DecidedBy::Grant { grant_id: grant.id.clone(), approver_id: grant.approver_id.clone() },
            at: now,
            answer: None,
        };
        vec![self.finish(decision)]
    }
}
