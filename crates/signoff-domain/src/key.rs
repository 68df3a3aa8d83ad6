//! API keys: who is calling, and in which role.

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
    /// For approver keys: the approver id recorded in decisions.
    pub approver_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// The name this key is recorded under in events and decisions.
    pub fn actor(&self) -> String {
        match (&self.role, &self.approver_id) {
            (Role::Approver, Some(approver)) => format!("approver:{approver}"),
            (role, _) => format!("{role}:{}", self.name),
        }
    }
}

/// Keys are long random strings, so a plain SHA-256 is the right hash: nothing to brute-force.
pub fn hash_key_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
