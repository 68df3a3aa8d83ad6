//! Evaluation inputs and results: [`EvalInput`], [`Verdict`], [`Route`], [`Outcome`], traces.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cel::Value;
use cel::objects::{Key, Map};

use crate::duration::{format_duration, secs};
use crate::model::{EscalationStep, OnTimeout};

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

/// A route to people, with everything the service needs to wait, escalate and time out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The rule that routed; `None` when no rule matched (defaults). When `eval_error` is set,
    /// this is the rule whose condition failed and the route comes from the defaults.
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
    /// Why a condition could not be evaluated (the request then goes to `defaults.route`).
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
    /// Denied by `rule` without asking anyone.
    Deny {
        /// Rule name.
        rule: String,
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
            Verdict::Approve { rule } | Verdict::Deny { rule } | Verdict::Review { rule, .. } => Some(rule),
            Verdict::Route(r) => r.rule.as_deref(),
        }
    }

    /// The evaluation error, if a condition failed and the request went to the defaults.
    pub fn eval_error(&self) -> Option<&str> {
        match self {
            Verdict::Route(r) => r.eval_error.as_deref(),
            _ => None,
        }
    }

    /// The comparable outcome (used by replay).
    pub fn outcome(&self) -> Outcome {
        match self {
            Verdict::Approve { .. } => Outcome::AutoApprove,
            Verdict::Deny { .. } => Outcome::AutoDeny,
            Verdict::Route(r) => Outcome::Person { group: r.group.clone() },
            Verdict::Review { group, sampled, .. } => Outcome::Review { group: group.clone(), sampled: *sampled },
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Approve { rule } => write!(f, "approve (rule `{rule}`)"),
            Verdict::Deny { rule } => write!(f, "deny (rule `{rule}`)"),
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
                    (_, Some(e)) => write!(f, " (defaults: {e})"),
                    (Some(rule), None) => write!(f, " (rule `{rule}`)"),
                    (None, None) => write!(f, " (defaults: no rule matched)"),
                }
            }
        }
    }
}

/// A small comparable summary of a verdict, for replay and statistics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
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

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::AutoApprove => f.write_str("auto-approve"),
            Outcome::AutoDeny => f.write_str("auto-deny"),
            Outcome::Person { group } => write!(f, "person ({group})"),
            Outcome::Review { group, sampled } => {
                write!(f, "review ({group}, {})", if *sampled { "sampled" } else { "not sampled" })
            }
        }
    }
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

/// Converts JSON to a CEL value: integers stay `int` (or `uint` above `i64::MAX`), other
/// numbers become `double`.
pub(crate) fn json_to_cel(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => Value::List(Arc::new(items.iter().map(json_to_cel).collect())),
        serde_json::Value::Object(map) => {
            let m: HashMap<Key, Value> =
                map.iter().map(|(k, v)| (Key::String(Arc::new(k.clone())), json_to_cel(v))).collect();
            Value::Map(Map { map: Arc::new(m) })
        }
    }
}

pub(crate) fn string_value(s: &str) -> Value {
    Value::String(Arc::new(s.to_string()))
}
