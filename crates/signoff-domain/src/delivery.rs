//! Callback deliveries as the API shows them: where each stands and what its last attempt answered.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet: retried at `next_attempt_at`.
    Pending,
    /// The receiver answered `2xx`.
    Delivered,
    /// The receiver answered `410 Gone`: never retried.
    Gone,
    /// Given up after the last retry.
    Failed,
}

impl DeliveryState {
    /// Every state, in the order above.
    pub const ALL: [DeliveryState; 4] =
        [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Gone, DeliveryState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Gone => "gone",
            DeliveryState::Failed => "failed",
        }
    }
}

/// A delivery as `GET /v1/requests/{id}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub webhook_id: String,
    pub url: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}
