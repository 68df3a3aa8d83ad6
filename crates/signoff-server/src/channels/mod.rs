//! Inbound routes of the notification channels: where approvers' answers on Slack, Discord and email come back.

pub mod discord;
pub mod email;
pub mod slack;
