//! Inbound routes of the notification channels: what an approver's click or link comes back to.

pub mod email;
