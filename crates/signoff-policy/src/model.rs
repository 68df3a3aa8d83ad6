//! The validated policy model: approvers, groups, defaults and rules.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

use signoff_domain::secs;
pub use signoff_domain::{Channel, EscalationStep, OnTimeout};

/// The reserved group that implicitly contains every approver (and, for the service, any
/// approver key). It needs no declaration.
pub const EVERYONE: &str = "everyone";

/// A person who can decide requests, with their identities on each channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    /// Unique id, used by approver keys and in decisions.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Slack member id (e.g. `U024BE7LH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<String>,
    /// Phone number for SMS, kept exactly as written (e.g. `+15550100`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Telegram chat id, kept as text (written as a number or a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<String>,
    /// Discord user id, kept as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<String>,
    /// Declared groups this approver belongs to (never includes the implicit `everyone`).
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Approver {
    /// The approver's address on `channel`, if they have one (`dashboard` always yields the id;
    /// `api` is not a notification channel and yields `None`).
    pub fn address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Slack => self.slack.as_deref(),
            Channel::Email => self.email.as_deref(),
            Channel::Sms => self.phone.as_deref(),
            Channel::Telegram => self.telegram.as_deref(),
            Channel::Discord => self.discord.as_deref(),
            Channel::Dashboard => Some(&self.id),
            Channel::Api => None,
        }
    }
}

/// A group of approvers: a queue that policy routes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Channels used to notify the group's members, in order.
    pub notify: Vec<Channel>,
    /// A Slack channel the group's requests are also posted in, where any member may act (`slack_channel: C0123`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_channel: Option<String>,
    /// A Discord channel the group's requests are also posted in, where any member may act
    /// (`discord_channel: "1100000000000000001"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_channel: Option<String>,
    /// When to remind members who have not approved yet, counted from when a request reaches the group
    /// (`remind: [1h, 4h]`), in increasing order (whole seconds in JSON).
    #[serde(default, with = "signoff_domain::secs_list", skip_serializing_if = "Vec::is_empty")]
    pub remind: Vec<Duration>,
    /// An on-call rotation: the group's own notifications go to the member on call only (any member may still
    /// decide).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<crate::Rotation>,
    /// A digest: members get one message per channel listing the group's pending requests at each digest time,
    /// instead of one ask per request (Slack and email; other channels keep their asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<crate::Digest>,
}

/// The `defaults` section: used when no rule matches or a rule fails to evaluate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Defaults {
    /// Group requests go to.
    pub route: String,
    /// Deadline for routed requests (also the default for rules' `timeout`).
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// What a deadline does (also the default for rules' `on_timeout`).
    pub on_timeout: OnTimeout,
    /// What happens when a rule's condition cannot be evaluated.
    pub on_error: OnError,
}

/// `defaults.on_error`: what happens to a request when a rule's condition cannot be evaluated
/// (a missing field, a type error). Either way the action is never let through unasked.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Deny the request (`on_error: deny`, the default).
    #[default]
    Deny,
    /// Send it to `group` with a quorum of `approvals` (`on_error: { route: GROUP, approvals: N }`);
    /// its deadline uses `defaults.timeout` and never approves.
    Route {
        /// Group to ask.
        group: String,
        /// Distinct approvals needed.
        approvals: u32,
    },
}

/// An automatic decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Approve without asking anyone.
    Approve,
    /// Deny without asking anyone.
    Deny,
}

/// The `route` part of a rule, with `timeout` and `on_timeout` resolved against the defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// Group to route to.
    pub group: String,
    /// Distinct approvals needed (quorum); any single rejection rejects.
    pub approvals: u32,
    /// Whether approvers may edit the arguments before approving.
    pub allow_edit: bool,
    /// If non-empty, the reasons an approver picks from when rejecting.
    pub reject_reasons: Vec<String>,
    /// Deadline (whole seconds in JSON).
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// Escalation steps, in increasing order of `after`.
    pub escalate: Vec<EscalationStep>,
    /// What the deadline does.
    pub on_timeout: OnTimeout,
    /// Whether a person may approve a request "and similar ones" for a while (`standing: {max, scope}`); only on
    /// rules needing one approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<Standing>,
}

/// A route rule's `standing`: the longest standing approval a person may grant, and the fields it is scoped to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Whole seconds in JSON.
    #[serde(with = "secs")]
    pub max: Duration,
    /// `action` first, whether listed or not.
    pub scope: Vec<signoff_domain::ScopePath>,
}

/// What a rule does when it matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// `decide: approve | deny`.
    Decide(Decision),
    /// `route: GROUP` and its options.
    Route(RouteSpec),
    /// `review: {sample, group}`: post-execution reports only.
    Review {
        /// Share of matching reports sampled into the review queue, in `[0, 1]`.
        sample: f64,
        /// Group reviewing the sampled reports.
        group: String,
    },
}

/// A validated rule. Its condition is compiled once, when the policy is parsed.
#[derive(Clone)]
pub struct Rule {
    /// Unique rule name.
    pub name: String,
    /// The CEL condition as written (`None`: always true).
    pub when: Option<String>,
    /// What the rule does.
    pub action: RuleAction,
    /// Line of the rule in the policy source (1-based).
    pub line: usize,
    pub(crate) program: Option<std::sync::Arc<cel::Program>>,
}

impl Rule {
    /// Whether this is a `review` rule (only considered for `mode: post` requests).
    pub fn is_review(&self) -> bool {
        matches!(self.action, RuleAction::Review { .. })
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("when", &self.when)
            .field("action", &self.action)
            .field("line", &self.line)
            .finish()
    }
}
