//! Signoff's channel adapters: how a request reaches an approver on Slack, Discord, Telegram, by SMS or by email, and
//! how their answer comes back. Each adapter owns its provider's wire format and signature check, and knows nothing of
//! the store or the server (the server's notification worker calls them, and its inbound routes decide through the
//! service layer).
#![forbid(unsafe_code)]

pub mod slack;

use signoff_domain::ApproverId;
use std::collections::HashMap;
use std::time::Duration;

/// A failed call to a provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// For operators; never contains a secret.
    pub message: String,
    /// How long the provider asked us to wait (a `429` with `Retry-After`), if it said.
    pub retry_after: Option<Duration>,
    /// Retrying cannot help (an unknown Slack channel, an SMTP 5xx): the notification is given up.
    pub permanent: bool,
}

impl ProviderError {
    /// A failure that may pass: try again later.
    pub fn transient(message: impl Into<String>) -> Self {
        ProviderError { message: message.into(), retry_after: None, permanent: false }
    }

    /// A failure that will not pass by retrying.
    pub fn permanent(message: impl Into<String>) -> Self {
        ProviderError { message: message.into(), retry_after: None, permanent: true }
    }
}

/// Where a sent message lives at the provider, so it can be updated or replied to later: Slack's `{channel}:{ts}`,
/// or an email's `Message-ID` (with its angle brackets).
pub type ProviderRef = String;

/// What a message about a request shows beyond the request itself: the policy's names and where it is going.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestView {
    /// `SIGNOFF_PUBLIC_URL`, without a trailing slash: links to the dashboard and the email action pages.
    pub public_url: String,
    /// The group this message asks (the request's group when it was sent).
    pub group: String,
    /// The addressee; `None` for a group's shared Slack channel.
    pub person: Option<ApproverId>,
    /// Display names from the policy, for "Approved by Dana".
    pub person_names: HashMap<ApproverId, String>,
    /// Set once the request escalated away from `group`.
    pub moved_to: Option<String>,
}

impl RequestView {
    /// A person's display name: their name in the policy, else their id.
    pub fn name_of<'a>(&'a self, person: &'a ApproverId) -> &'a str {
        self.person_names.get(person).map_or(person.as_str(), String::as_str)
    }
}

pub mod digest;
pub mod discord;
pub mod email;
pub mod links;
pub mod pages;
pub mod sms;
pub mod telegram;
