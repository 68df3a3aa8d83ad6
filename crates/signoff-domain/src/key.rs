//! API keys: who is calling, and in which role.

use crate::identity::{Actor, ApproverId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The public identifier of an API key (not its secret).
pub type KeyId = String;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Creates and reads its own requests, cancels them, reports outcomes; never decides.
    Agent,
    /// Bound to an approver id; sees and decides requests.
    Approver,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "approver" => Ok(Role::Approver),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role `{other}`: expected agent, approver or admin")),
        }
    }
}

/// A stored API key. The secret itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: KeyId,
    pub name: String,
    pub role: Role,
    /// The person this key acts for (approver keys always; admin keys when bound): the approver recorded in
    /// decisions. An admin key bound to no one manages but never decides.
    pub approver_id: Option<ApproverId>,
    /// For agent keys: the person responsible for the agent, who never approves its requests.
    #[serde(default)]
    pub owner_id: Option<ApproverId>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// Who acts through this key: the person it is bound to, or else the key itself.
    pub fn actor(&self) -> Actor {
        match (&self.role, &self.approver_id) {
            (Role::Agent, _) | (_, None) => Actor::Key { role: self.role, name: self.name.clone() },
            (_, Some(person)) => Actor::Person(person.clone()),
        }
    }

    /// The person responsible for what this key asks for, who must never approve it: an agent's owner, or the
    /// person an admin or approver key is bound to.
    pub fn responsible_person(&self) -> Option<&ApproverId> {
        match self.role {
            Role::Agent => self.owner_id.as_ref(),
            Role::Approver | Role::Admin => self.approver_id.as_ref(),
        }
    }
}

/// Keys are long random strings, so a plain SHA-256 is the right hash: nothing to brute-force.
pub fn hash_key_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
