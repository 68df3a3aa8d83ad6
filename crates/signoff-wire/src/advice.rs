//! The advice report, `GET /v1/advice`: which gates to relax or tighten, with their evidence, a policy draft and its
//! replay over history. Computed by `signoff-insights`, serialized by the server and read by the client;
//! docs/advice.md says how each finding is found.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::stats::Figures;
use signoff_domain::VerdictOutcome;

/// `GET /v1/advice`: the findings over the requests created in `[since, until)`, against the policy in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdviceReport {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The policy version the findings (and their drafts) are about.
    pub policy_version: i64,
    pub policy_hash: String,
    /// Human decisions a rule needs before it gets findings.
    pub min_decisions: u64,
    pub findings: Vec<Finding>,
}

/// What a finding suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// People approve this rule's requests unchanged nearly always: let policy approve them.
    RelaxAutoApprove,
    /// Above a confidence the agent reports, people approve unchanged nearly always: approve those by policy.
    ConfidenceThreshold,
    /// Many of this rule's requests are rejected, mostly for one reason: the agent should check before asking.
    TightenCheckBeforeAsking,
    /// One group decides most of all human decisions: a tier of other reviewers would share the load.
    AddTier,
    /// Reviewers flag many of this rule's sampled reports: ask people first again.
    GateAgain,
    /// Actions this rule let through were flagged as misses: sample more of them for review.
    SampleMore,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::RelaxAutoApprove => "relax_auto_approve",
            FindingKind::ConfidenceThreshold => "confidence_threshold",
            FindingKind::TightenCheckBeforeAsking => "tighten_check_before_asking",
            FindingKind::AddTier => "add_tier",
            FindingKind::GateAgain => "gate_again",
            FindingKind::SampleMore => "sample_more",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable while the policy and the suggestion stay the same: `POST /v1/advice/apply` names it.
    pub id: String,
    pub kind: FindingKind,
    /// The rule it is about (`None` for a group finding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The group it is about (`add_tier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// One sentence: what was seen and what to do.
    pub message: String,
    pub evidence: Evidence,
    /// For `confidence_threshold`: approval by confidence and the threshold found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// The policy change suggested, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<Draft>,
}

/// The figures behind a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The figures of the rule's (or the group's) requests in the period.
    pub figures: Figures,
    /// The most frequent rejection reason, for `tighten_check_before_asking`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_reason: Option<ReasonShare>,
    /// For `add_tier`: the group's share of all human decisions in the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_of_decisions: Option<f64>,
}

/// A rejection reason and how many of the human decisions it accounts for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonShare {
    pub reason: String,
    pub count: u64,
    /// `count` over the rule's human decisions.
    pub share: f64,
}

/// A suggested policy: the whole draft source, its line diff against the policy in force, and what replaying the
/// period's requests against it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub source: String,
    /// Unified line diff (`+`, `-` or a space before each line; far unchanged lines folded).
    pub diff: String,
    pub replay: ReplaySummary,
}

/// Which past outcomes the draft would have changed (`signoff policy test`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplaySummary {
    /// Requests replayed (those policy placed).
    pub total: u64,
    /// Of those, requests whose outcome would change.
    pub changed: u64,
    /// Requests on which a draft condition could not be evaluated.
    pub draft_errors: u64,
    /// The changes, most frequent first.
    pub transitions: Vec<ReplayChange>,
}

/// One kind of change, with how many requests it affects and a few of their ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayChange {
    pub from: VerdictOutcome,
    pub to: VerdictOutcome,
    pub count: u64,
    pub examples: Vec<String>,
}

/// How often people approved a rule's requests unchanged, by the confidence the agent reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The unchanged approval rate a threshold must reach.
    pub target: f64,
    /// Ten buckets 0.1 wide (`[0.9, 1.0]` includes 1), over human-decided requests that carry a confidence.
    pub buckets: Vec<ConfidenceBucket>,
    /// The lowest confidence X such that, of the human-decided requests with confidence ≥ X, at least `target`
    /// were approved unchanged (and there are at least the minimum number of them); `None` if there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
}

/// Human decisions of requests with a confidence in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceBucket {
    pub from: f64,
    pub to: f64,
    pub human_decided: u64,
    pub approved_unchanged: u64,
    /// `None` when no request fell in the bucket.
    pub unchanged_rate: Option<f64>,
}

/// A confidence threshold, with what people did above it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// X: one of the confidences seen.
    pub confidence: f64,
    /// Human-decided requests with confidence ≥ X.
    pub human_decided: u64,
    pub approved_unchanged: u64,
    pub unchanged_rate: f64,
    /// The 95 % Wilson score interval of `unchanged_rate`.
    pub wilson_low: f64,
    pub wilson_high: f64,
}

/// `POST /v1/advice/apply`: the finding to apply, found again over the same period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyAdvice {
    pub id: String,
    /// A policy duration (`30d`) or an RFC 3339 time; default `30d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Human decisions a rule needs; default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
}

/// The answer to `POST /v1/advice/apply`: the finding applied and the policy version now in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedAdvice {
    pub finding: Finding,
    pub policy: crate::PolicyView,
}
