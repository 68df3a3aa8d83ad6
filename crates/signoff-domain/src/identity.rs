//! Who acts: people (approvers, named by their id in the policy's directory) and the actor every event records.
//!
//! People decide, not keys: a decision names an [`ApproverId`] and the channel it came through, whichever key or
//! channel carried it, so quorum counts people and separation of duties holds across keys.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of a person in the policy's `approvers` directory (`dana`, `carl`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApproverId(String);

impl ApproverId {
    /// An approver id: 1 to 128 characters, no whitespace or control characters.
    pub fn parse(id: &str) -> Result<ApproverId, String> {
        let chars = id.chars().count();
        if chars == 0 || chars > 128 {
            return Err("an approver id must be 1 to 128 characters".into());
        }
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "the approver id `{}` must not contain spaces or control characters",
                id.escape_debug()
            ));
        }
        Ok(ApproverId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApproverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for ApproverId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// Who caused an event, as written in its `actor` field. The string forms are stable: they are part of the hashed
/// audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person: `approver:dana`.
    Person(ApproverId),
    /// A key acting on its own behalf (an agent creating or cancelling, an admin key bound to no one):
    /// `agent:refund-bot`, `admin:root`.
    Key { role: crate::Role, name: String },
    /// A policy rule (`policy:small-expense`), or the defaults when no rule matched (`policy:defaults`).
    Policy(Option<String>),
    /// A stored timer (escalation, deadline): `timer`.
    Timer,
    /// The callback delivery worker: `callbacks`.
    Callbacks,
    /// An operator at the command line: `cli:root`.
    Operator(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Person(id) => write!(f, "approver:{id}"),
            Actor::Key { role, name } => write!(f, "{role}:{name}"),
            Actor::Policy(Some(rule)) => write!(f, "policy:{rule}"),
            Actor::Policy(None) => f.write_str("policy:defaults"),
            Actor::Timer => f.write_str("timer"),
            Actor::Callbacks => f.write_str("callbacks"),
            Actor::Operator(user) => write!(f, "cli:{user}"),
        }
    }
}

impl From<Actor> for String {
    fn from(actor: Actor) -> String {
        actor.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approver_ids_are_short_visible_words() {
        assert_eq!(ApproverId::parse("dana").unwrap().as_str(), "dana");
        assert!(ApproverId::parse("").is_err());
        assert!(ApproverId::parse("da na").is_err());
        assert!(ApproverId::parse("dana\0").is_err());
        assert!(ApproverId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn actors_keep_their_audit_spelling() {
        let dana = ApproverId::parse("dana").unwrap();
        assert_eq!(Actor::Person(dana).to_string(), "approver:dana");
        assert_eq!(Actor::Key { role: crate::Role::Agent, name: "bot".into() }.to_string(), "agent:bot");
        assert_eq!(Actor::Policy(None).to_string(), "policy:defaults");
        assert_eq!(Actor::Policy(Some("r".into())).to_string(), "policy:r");
        assert_eq!(Actor::Timer.to_string(), "timer");
    }
}
