//! Inbound routes of the notification channels: where approvers' answers on Slack and email come back.

pub mod email;
pub mod slack;
