//! A stored version of the policy document.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One applied policy version. Versions count up from 1; 0 stands for the built-in default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub version: i64,
    /// Hex SHA-256 of `source`.
    pub content_hash: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}
