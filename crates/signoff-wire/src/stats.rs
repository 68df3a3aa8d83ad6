//! The approval statistics report, `GET /v1/stats`: computed by `signoff-insights`, serialized by the server and
//! read by the client. docs/stats.md says what each figure counts.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the statistics are broken down by (`by=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The policy rule that placed the request (`(defaults)` when none matched).
    Rule,
    /// The request's action.
    Action,
    /// The group the request was with when it ended (or is with now): after escalation, the group escalated to.
    Group,
    /// The person who gave the request's final verdict or answer (`(no person)` when nobody did).
    Approver,
}

impl GroupBy {
    pub const ALL: [GroupBy; 4] = [GroupBy::Rule, GroupBy::Action, GroupBy::Group, GroupBy::Approver];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Rule => "rule",
            GroupBy::Action => "action",
            GroupBy::Group => "group",
            GroupBy::Approver => "approver",
        }
    }
}

impl std::fmt::Display for GroupBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupBy::ALL
            .into_iter()
            .find(|by| by.as_str() == s)
            .ok_or_else(|| format!("by: expected one of rule, action, group, approver; found `{}`", s.escape_debug()))
    }
}

/// `GET /v1/stats`: figures over the requests created in `[since, until)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// A person's approval faster than this (seconds from creation to decision) counts as very fast.
    pub fast_under_s: u64,
    pub totals: Figures,
    /// Every UTC day that `[since, until)` touches, oldest first, days without requests included.
    pub per_day: Vec<DayFigures>,
    pub by: Option<GroupBy>,
    /// One entry per key when `by` is set (empty otherwise), the most requests first.
    pub breakdown: Vec<Breakdown>,
    /// Each person who decided, answered or approved toward a quorum, the most decisions first.
    pub approvers: Vec<ApproverLoad>,
}

/// The figures of a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Every request, questions included.
    pub requests: u64,
    /// Of those, questions (`kind: question`): they count in `requests`, `questions` and `answered` only.
    pub questions: u64,
    pub pending: u64,
    /// Decided by policy when created: approved (not-sampled reviews included) and denied.
    pub auto_approved: u64,
    pub auto_denied: u64,
    /// Final verdicts by a person: `approved + rejected`.
    pub human_decided: u64,
    /// Approved by a person: `approved_unchanged + edited`.
    pub approved: u64,
    pub approved_unchanged: u64,
    pub edited: u64,
    pub rejected: u64,
    /// A person's rejections by `reason`; without one, under `(none)`.
    pub rejection_reasons: BTreeMap<String, u64>,
    /// From creation to a person's final verdict.
    pub time_to_decision: Percentiles,
    /// Ended at the deadline with `on_timeout: fail`.
    pub expired: u64,
    /// Ended at the deadline, whatever `on_timeout` made of it (`expired` included).
    pub timed_out: u64,
    /// With at least one escalation step fired.
    pub escalated: u64,
    /// Approved by a person in less than `fast_under_s` seconds from creation.
    pub fast_approvals: u64,
    /// Withdrawn by the agent.
    pub cancelled: u64,
    /// Questions a person answered.
    pub answered: u64,
    /// Post-execution reports drawn for review (`sampled: true`).
    pub sampled_reviews: u64,
    /// Sampled reviews flagged by a reviewer.
    pub flags: u64,
    /// Requests that policy approved and a person later flagged (a miss of the gate).
    pub misses: u64,
    /// Approved by a standing grant.
    pub granted: u64,
    /// `approved / human_decided`; `None` when nobody decided.
    pub approval_rate: Option<f64>,
    /// `approved_unchanged / human_decided`.
    pub unchanged_rate: Option<f64>,
    /// `edited / human_decided`.
    pub edit_rate: Option<f64>,
    /// `flags / sampled_reviews`; `None` when there were no sampled reviews.
    pub flag_rate: Option<f64>,
    /// `fast_approvals / approved`; `None` when nobody approved.
    pub fast_approval_rate: Option<f64>,
}

impl Figures {
    /// Requests decided by policy when created.
    pub fn auto_decided(&self) -> u64 {
        self.auto_approved + self.auto_denied
    }
}

/// Percentiles of a list of durations, by nearest rank: the smallest value with at least p % of the values at or
/// below it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_s: Option<f64>,
    pub p90_s: Option<f64>,
    pub p99_s: Option<f64>,
}

/// The figures of the requests created on one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayFigures {
    pub day: NaiveDate,
    pub figures: Figures,
}

/// The figures of the requests with one key of [`GroupBy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    pub key: String,
    pub figures: Figures,
}

/// One person's share of the decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApproverLoad {
    pub approver: String,
    /// Final verdicts this person gave: `approved + rejected`.
    pub decisions: u64,
    pub approved: u64,
    pub rejected: u64,
    /// `decisions` over every person's final verdicts.
    pub share: f64,
    /// Approvals this person gave that did not end the request (toward a quorum still short, or one another
    /// person's rejection ended).
    pub quorum_approvals: u64,
    /// Questions this person answered.
    pub answered: u64,
    /// From creation to this person's final verdicts.
    pub time_to_decision: Percentiles,
}
