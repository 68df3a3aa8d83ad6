//! The notification outbox's vocabulary: a message asking a person (or a group's shared channel) to decide a request,
//! and the updates that change such a message once the request moves on.

use crate::identity::ApproverId;
use crate::request::RequestId;
use crate::vocabulary::Channel;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a notification is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Asks its addressee to decide: sent when the request is routed or escalated to their group.
    Ask,
    /// Brings an earlier ask up to date (decided, approvals so far, moved to another group): Slack edits the message,
    /// email replies in its thread.
    Update,
    /// Reminds the addressee of an earlier ask that still waits for them: Slack replies in the message's thread,
    /// email replies in the ask's thread with fresh links.
    Reminder,
    /// One message listing a digest group's pending requests that its addressee may decide (Slack and email).
    Digest,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Ask => "ask",
            Purpose::Update => "update",
            Purpose::Reminder => "reminder",
            Purpose::Digest => "digest",
        }
    }

    pub fn parse(text: &str) -> Option<Purpose> {
        [Purpose::Ask, Purpose::Update, Purpose::Reminder, Purpose::Digest].into_iter().find(|p| p.as_str() == text)
    }
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// Waiting to be sent (again).
    Pending,
    Sent,
    /// Given up: the provider refused for good, or retries ran out.
    Failed,
    /// Not sent, because by the time it was due it had nothing to say: a reminder about a request already decided,
    /// moved to another group, or approved by its addressee.
    Skipped,
}

impl NotificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Sent => "sent",
            NotificationState::Failed => "failed",
            NotificationState::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<NotificationState> {
        [NotificationState::Pending, NotificationState::Sent, NotificationState::Failed, NotificationState::Skipped]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A message to send: who, on which channel at which address, for which group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAsk {
    /// `None` for a group's shared Slack channel, where any member may act.
    pub approver_id: Option<ApproverId>,
    pub channel: Channel,
    /// The Slack member or channel id, or the email address.
    pub address: String,
    pub group: String,
}

/// What one change to a request means for its notifications, decided by the planner inside the change's transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotificationPlan {
    /// New messages to send (the request was routed or escalated to a group).
    pub asks: Vec<NewAsk>,
    /// Whether every message already sent (or waiting to be) about the request must be brought up to date.
    pub update_sent: bool,
    /// A reminder fell due: remind the addressees of the asks to the request's current group, except these people
    /// (they approved already).
    pub remind: Option<RemindPlan>,
}

/// Who a reminder goes to: the asks of `group`, but not to the people in `except`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemindPlan {
    pub group: String,
    pub except: Vec<ApproverId>,
}

/// A stored notification, as `GET /v1/requests/{id}/notifications` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub request_id: RequestId,
    pub approver_id: Option<ApproverId>,
    pub channel: Channel,
    pub address: String,
    pub purpose: Purpose,
    pub group: String,
    /// For an update: the ask whose message it changes.
    pub updates_id: Option<String>,
    pub state: NotificationState,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Where the sent message lives at the provider (Slack `{channel}:{ts}`, an email's `Message-ID`).
    pub provider_ref: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
