//! Inbound routes of the notification channels: where approvers' answers on Slack, email and SMS come back.

pub mod email;
pub mod slack;
pub mod sms;
