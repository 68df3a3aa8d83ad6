//! Evaluation inputs and traces. [`Verdict`], [`Route`] and [`Outcome`] live in `signoff-domain`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

pub use signoff_domain::{Mode, Route, Verdict, VerdictOutcome as Outcome};

/// Everything a policy looks at for one request. Borrowed, so evaluation copies nothing up front.
#[derive(Clone, Copy, Debug)]
pub struct EvalInput<'a> {
    /// Request id: seeds review sampling (not visible to conditions).
    pub request_id: &'a str,
    /// `action` in conditions.
    pub action: &'a str,
    /// `args` in conditions (usually a JSON object).
    pub args: &'a serde_json::Value,
    /// `context` in conditions (usually a JSON object; `null` if absent).
    pub context: &'a serde_json::Value,
    /// `confidence` in conditions (`null` when `None`).
    pub confidence: Option<f64>,
    /// `tags` in conditions.
    pub tags: &'a [String],
    /// `mode` in conditions (`"pre"` or `"post"`); `review` rules only match `post`.
    pub mode: Mode,
    /// `agent` in conditions: the calling key's name.
    pub agent: &'a str,
    /// `run_id` in conditions (`null` when `None`).
    pub run_id: Option<&'a str>,
}

/// What happened to one rule while evaluating a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "error", rename_all = "snake_case")]
pub enum TraceStatus {
    /// The condition was true (or absent): this rule decided.
    Matched,
    /// The condition was false.
    NotMatched,
    /// The condition could not be evaluated; evaluation stopped and the defaults apply.
    Error(String),
    /// A `review` rule, skipped for a `pre` request.
    Skipped,
}

/// One line of an explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTrace {
    /// Rule name.
    pub rule: String,
    /// Line of the rule in the policy source.
    pub line: usize,
    /// What happened.
    pub status: TraceStatus,
}

/// The rules considered for a request, in order, up to and including the deciding one, and
/// the verdict. `Display` prints a readable trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Rules considered, in order.
    pub rules: Vec<RuleTrace>,
    /// The verdict (identical to `Policy::evaluate`).
    pub verdict: Verdict,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.rules.iter().map(|r| r.rule.len()).max().unwrap_or(0);
        for t in &self.rules {
            let status = match &t.status {
                TraceStatus::Matched => "matched".to_string(),
                TraceStatus::NotMatched => "did not match".to_string(),
                TraceStatus::Error(e) => format!("error: {e}"),
                TraceStatus::Skipped => "skipped (review rule, pre request)".to_string(),
            };
            writeln!(f, "  {:<width$}  line {:<4} {status}", t.rule, t.line, width = width)?;
        }
        if self.rules.is_empty() {
            writeln!(f, "  (no rules)")?;
        } else if !self.rules.last().is_some_and(|t| matches!(t.status, TraceStatus::Matched | TraceStatus::Error(_))) {
            writeln!(f, "  (no rule matched)")?;
        }
        write!(f, "=> {}", self.verdict)
    }
}

/// The deterministic sampling draw for a request and a review rule: a uniform number in
/// `[0, 1)` from `sha256(request_id + "\0" + rule)`. A report is sampled iff it is `< sample`.
pub fn sample_draw(request_id: &str, rule: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(request_id.as_bytes());
    h.update([0u8]);
    h.update(rule.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}
