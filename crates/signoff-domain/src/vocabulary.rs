//! The vocabulary shared by the domain and the policy engine: modes, channels, deadlines, and the
//! policy's verdict on a request (with its route), plus the duration notation they display in.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Whether a request asks before acting (`pre`) or reports an action already taken (`post`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Pre-execution approval.
    #[default]
    Pre,
    /// Post-execution report (review).
    Post,
}

impl Mode {
    /// `"pre"` or `"post"`, as seen by conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Pre => "pre",
            Mode::Post => "post",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "pre" => Ok(Mode::Pre),
            "post" => Ok(Mode::Post),
            _ => Err(format!("invalid mode `{s}`; expected `pre` or `post`")),
        }
    }
}

/// A channel a person acts through or is notified on.
///
/// Every channel but [`Channel::Api`] can notify; `api` is only a way to act (a decision sent
/// with an approver key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Slack direct message.
    Slack,
    /// Email.
    Email,
    /// SMS to `phone`.
    Sms,
    /// Telegram message.
    Telegram,
    /// Discord message.
    Discord,
    /// The web dashboard queue (always available).
    Dashboard,
    /// The HTTP API, used directly with an approver key. Never a notification channel.
    Api,
}

impl Channel {
    /// All channels, in declaration order.
    pub const ALL: [Channel; 7] = [
        Channel::Slack,
        Channel::Email,
        Channel::Sms,
        Channel::Telegram,
        Channel::Discord,
        Channel::Dashboard,
        Channel::Api,
    ];

    /// The channels a policy's `notify:` list may name, in declaration order.
    pub const NOTIFY: [Channel; 6] =
        [Channel::Slack, Channel::Email, Channel::Sms, Channel::Telegram, Channel::Discord, Channel::Dashboard];

    /// The channel's name as written in a policy and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Slack => "slack",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Telegram => "telegram",
            Channel::Discord => "discord",
            Channel::Dashboard => "dashboard",
            Channel::Api => "api",
        }
    }

    /// Parses a channel name (any of [`Channel::ALL`]).
    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether people can be notified on this channel (everything but `api`).
    pub fn notifies(self) -> bool {
        self != Channel::Api
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens when a routed request's deadline passes without a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The request is approved (decided by `timeout`).
    Approve,
    /// The request is rejected (decided by `timeout`).
    Reject,
    /// The request ends with status `expired`.
    Fail,
}

impl OnTimeout {
    /// The value as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            OnTimeout::Approve => "approve",
            OnTimeout::Reject => "reject",
            OnTimeout::Fail => "fail",
        }
    }
}

impl fmt::Display for OnTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One escalation step: after `after`, the request is also sent to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationStep {
    /// Time since the request was routed (whole seconds in JSON).
    #[serde(with = "secs")]
    pub after: Duration,
    /// Group to escalate to.
    pub to: String,
    /// When to remind the group escalated to, after the escalation (its `remind` schedule; whole seconds in JSON).
    #[serde(default, with = "secs_list", skip_serializing_if = "Vec::is_empty")]
    pub remind: Vec<Duration>,
}

/// A route to people, with everything the service needs to wait, escalate and time out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The rule that routed; `None` when no rule matched (defaults). When `eval_error` is set,
    /// this is the rule whose condition failed and the route comes from `defaults.on_error`.
    pub rule: Option<String>,
    /// Group to ask.
    pub group: String,
    /// Distinct approvals needed; any single rejection rejects.
    pub approvals: u32,
    /// Whether approvers may edit the arguments.
    pub allow_edit: bool,
    /// If non-empty, a rejection must pick one of these reasons.
    pub reject_reasons: Vec<String>,
    /// Deadline, relative to routing (whole seconds in JSON).
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// What the deadline does.
    pub on_timeout: OnTimeout,
    /// Escalation steps, in increasing order of `after`.
    pub escalate: Vec<EscalationStep>,
    /// When to remind the group's members who have not yet approved, after routing (the group's `remind` schedule).
    #[serde(default, with = "secs_list", skip_serializing_if = "Vec::is_empty")]
    pub remind: Vec<Duration>,
    /// Why a condition could not be evaluated (the request then goes where `defaults.on_error` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_error: Option<String>,
}

/// The policy's answer for one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// Approved by `rule` without asking anyone.
    Approve {
        /// Rule name.
        rule: String,
    },
    /// Denied by `rule` without asking anyone. With `error` set, `rule`'s condition could not be
    /// evaluated and `defaults.on_error` (`deny`) denied the request.
    Deny {
        /// Rule name.
        rule: String,
        /// Why the rule's condition could not be evaluated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Sent to people.
    Route(Route),
    /// A post-execution report matched a review rule. `sampled == false`: the service accepts it
    /// at once, marked not sampled; `true`: it goes to `group`'s review queue.
    Review {
        /// Rule name.
        rule: String,
        /// Reviewing group.
        group: String,
        /// Whether this report was drawn into the review queue.
        sampled: bool,
    },
}

impl Verdict {
    /// The rule that produced this verdict (`None`: defaults, no rule matched).
    pub fn rule(&self) -> Option<&str> {
        match self {
            Verdict::Approve { rule } | Verdict::Deny { rule, .. } | Verdict::Review { rule, .. } => Some(rule),
            Verdict::Route(r) => r.rule.as_deref(),
        }
    }

    /// The evaluation error, if a condition could not be evaluated and `defaults.on_error` decided
    /// (a deny, or a route to its group).
    pub fn eval_error(&self) -> Option<&str> {
        match self {
            Verdict::Route(r) => r.eval_error.as_deref(),
            Verdict::Deny { error, .. } => error.as_deref(),
            Verdict::Approve { .. } | Verdict::Review { .. } => None,
        }
    }

    /// The comparable outcome (used by replay).
    pub fn outcome(&self) -> VerdictOutcome {
        match self {
            Verdict::Approve { .. } => VerdictOutcome::AutoApprove,
            Verdict::Deny { .. } => VerdictOutcome::AutoDeny,
            Verdict::Route(r) => VerdictOutcome::Person { group: r.group.clone() },
            Verdict::Review { group, sampled, .. } => {
                VerdictOutcome::Review { group: group.clone(), sampled: *sampled }
            }
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Approve { rule } => write!(f, "approve (rule `{rule}`)"),
            Verdict::Deny { rule, error: None } => write!(f, "deny (rule `{rule}`)"),
            Verdict::Deny { error: Some(e), .. } => write!(f, "deny (defaults, on_error: {e})"),
            Verdict::Review { rule, group, sampled } => {
                write!(f, "review by {group}, {} (rule `{rule}`)", if *sampled { "sampled" } else { "not sampled" })
            }
            Verdict::Route(r) => {
                write!(f, "route to {}", r.group)?;
                if r.approvals > 1 {
                    write!(f, ", {} approvals", r.approvals)?;
                }
                write!(f, ", timeout {} then {}", format_duration(r.timeout), r.on_timeout)?;
                for s in &r.escalate {
                    write!(f, ", escalate to {} after {}", s.to, format_duration(s.after))?;
                }
                match (&r.rule, &r.eval_error) {
                    (_, Some(e)) => write!(f, " (defaults, on_error: {e})"),
                    (Some(rule), None) => write!(f, " (rule `{rule}`)"),
                    (None, None) => write!(f, " (defaults: no rule matched)"),
                }
            }
        }
    }
}

/// A small comparable summary of a verdict, for replay and statistics (`signoff_policy::Outcome`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VerdictOutcome {
    /// Approved by policy.
    AutoApprove,
    /// Denied by policy.
    AutoDeny,
    /// Sent to a person in `group`.
    Person {
        /// Group name.
        group: String,
    },
    /// Post-execution review.
    Review {
        /// Group name.
        group: String,
        /// Drawn into the review queue.
        sampled: bool,
    },
}

impl fmt::Display for VerdictOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerdictOutcome::AutoApprove => f.write_str("auto-approve"),
            VerdictOutcome::AutoDeny => f.write_str("auto-deny"),
            VerdictOutcome::Person { group } => write!(f, "person ({group})"),
            VerdictOutcome::Review { group, sampled } => {
                write!(f, "review ({group}, {})", if *sampled { "sampled" } else { "not sampled" })
            }
        }
    }
}

/// Formats a duration in the policy notation, largest units first (`1d4h`, `90s` → `1m30s`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Serde helper: a [`Duration`] as whole seconds (`#[serde(with = "signoff_domain::secs")]`).
pub mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes the duration as whole seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    /// Reads whole seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Serde for a list of durations as whole seconds.
pub mod secs_list {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(Duration::as_secs))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<u64>::deserialize(d).map(|list| list.into_iter().map(Duration::from_secs).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_and_only_api_cannot_notify() {
        for c in Channel::ALL {
            assert_eq!(Channel::from_name(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
            assert_eq!(c.notifies(), c != Channel::Api);
        }
        assert_eq!(Channel::NOTIFY.len(), Channel::ALL.len() - 1);
        assert!(Channel::NOTIFY.iter().all(|c| c.notifies()));
    }

    #[test]
    fn durations_format_largest_units_first() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(100_800)), "1d4h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
