//! Replaying past requests against a draft policy (`signoff policy test`), without any I/O.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

use crate::eval::{EvalInput, Mode, Outcome, Verdict};
use crate::policy::Policy;
use signoff_domain::Request;

/// How many request ids each transition keeps as examples.
pub const EXAMPLES_PER_TRANSITION: usize = 3;

/// An owned copy of what a past request showed the policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayRecord {
    /// Request id (seeds review sampling).
    pub request_id: String,
    /// Action name.
    pub action: String,
    /// Arguments as submitted (before any edit).
    pub args: serde_json::Value,
    /// Context.
    pub context: serde_json::Value,
    /// Confidence, if given.
    pub confidence: Option<f64>,
    /// Tags.
    pub tags: Vec<String>,
    /// Mode.
    pub mode: Mode,
    /// Calling key's name.
    pub agent: String,
    /// Run id, if given.
    pub run_id: Option<String>,
}

impl ReplayRecord {
    /// What policy sees of a request.
    pub fn of_request(request: &Request) -> ReplayRecord {
        ReplayRecord {
            request_id: request.id.to_string(),
            action: request.action.clone(),
            args: request.args.clone(),
            context: request.context.clone(),
            confidence: request.confidence,
            tags: request.tags.clone(),
            mode: request.mode,
            agent: request.requested_by.key_name.clone(),
            run_id: request.run_id.clone(),
        }
    }

    /// A stored request with the verdict stored on it, to replay; `None` for a request policy never placed (stored
    /// before policies existed).
    pub fn with_stored_verdict(request: &Request) -> Option<(ReplayRecord, Verdict)> {
        let verdict = request.policy.as_ref()?.verdict.clone();
        Some((ReplayRecord::of_request(request), verdict))
    }

    /// Borrows the record as an evaluation input.
    pub fn input(&self) -> EvalInput<'_> {
        EvalInput {
            request_id: &self.request_id,
            action: &self.action,
            args: &self.args,
            context: &self.context,
            confidence: self.confidence,
            tags: &self.tags,
            mode: self.mode,
            agent: &self.agent,
            run_id: self.run_id.as_deref(),
        }
    }
}

/// A change from one outcome to another, with how often it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Outcome under the current policy (as stored).
    pub from: Outcome,
    /// Outcome under the draft.
    pub to: Outcome,
    /// Number of requests.
    pub count: usize,
    /// Up to [`EXAMPLES_PER_TRANSITION`] request ids, in input order.
    pub examples: Vec<String>,
}

impl Transition {
    /// `auto-approve → person (directors)`, or `directors → cfo` between two groups.
    pub fn label(&self) -> String {
        match (&self.from, &self.to) {
            (Outcome::Person { group: a }, Outcome::Person { group: b }) => format!("{a} → {b}"),
            (a, b) => format!("{a} → {b}"),
        }
    }
}

/// The effect of a draft on the requests of one rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleImpact {
    /// Rule name; `(defaults)` when no rule matched; ``(defaults: error in `x`)`` when rule
    /// `x` failed to evaluate.
    pub rule: String,
    /// Requests attributed to this rule.
    pub requests: usize,
    /// Of those, how many would get a different outcome.
    pub changed: usize,
    /// The changes, most frequent first.
    pub transitions: Vec<Transition>,
}

/// What a draft policy would have changed over a set of past requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// SHA-256 of the draft's source.
    pub draft_hash: String,
    /// Requests replayed.
    pub total: usize,
    /// Requests whose outcome would change.
    pub changed: usize,
    /// Requests on which a draft condition failed to evaluate.
    pub draft_errors: usize,
    /// All changes, most frequent first.
    pub transitions: Vec<Transition>,
    /// Per rule of the draft (in draft order, then defaults), including rules that matched
    /// nothing.
    pub by_draft_rule: Vec<RuleImpact>,
    /// Per rule of the current (stored) verdicts, by name, defaults last.
    pub by_current_rule: Vec<RuleImpact>,
}

fn rule_label(v: &Verdict) -> String {
    match (v.rule(), v.eval_error()) {
        (Some(r), Some(_)) => format!("(defaults: error in `{r}`)"),
        (Some(r), None) => r.to_string(),
        (None, _) => "(defaults)".to_string(),
    }
}

#[derive(Default)]
struct Acc {
    requests: usize,
    changed: usize,
    transitions: HashMap<(Outcome, Outcome), (usize, Vec<String>)>,
    first_seen: usize,
}

impl Acc {
    fn add(&mut self, from: &Outcome, to: &Outcome, id: &str) {
        self.requests += 1;
        if from != to {
            self.changed += 1;
            let e = self.transitions.entry((from.clone(), to.clone())).or_default();
            e.0 += 1;
            if e.1.len() < EXAMPLES_PER_TRANSITION {
                e.1.push(id.to_string());
            }
        }
    }

    fn transitions(self) -> Vec<Transition> {
        let mut t: Vec<Transition> = self
            .transitions
            .into_iter()
            .map(|((from, to), (count, examples))| Transition { from, to, count, examples })
            .collect();
        t.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to))));
        t
    }
}

/// Re-evaluates each past request with `draft` and compares the outcome with the stored
/// verdict. Pure: the caller loads the records (e.g. the last 30 days) and prints the report.
pub fn replay<I>(draft: &Policy, records: I) -> ReplayReport
where
    I: IntoIterator<Item = (ReplayRecord, Verdict)>,
{
    let mut total = 0;
    let mut draft_errors = 0;
    let mut all = Acc::default();
    let mut by_draft: HashMap<String, Acc> = HashMap::new();
    let mut by_current: HashMap<String, Acc> = HashMap::new();
    for (record, current) in records {
        total += 1;
        let verdict = draft.evaluate(&record.input());
        if verdict.eval_error().is_some() {
            draft_errors += 1;
        }
        let from = current.outcome();
        let to = verdict.outcome();
        all.add(&from, &to, &record.request_id);
        let n = by_draft.len();
        by_draft.entry(rule_label(&verdict)).or_insert_with(|| Acc { first_seen: n, ..Acc::default() }).add(
            &from,
            &to,
            &record.request_id,
        );
        let n = by_current.len();
        by_current.entry(rule_label(&current)).or_insert_with(|| Acc { first_seen: n, ..Acc::default() }).add(
            &from,
            &to,
            &record.request_id,
        );
    }

    let mut by_draft_rule = Vec::new();
    for rule in draft.rules() {
        let acc = by_draft.remove(&rule.name).unwrap_or_default();
        by_draft_rule.push(impact(rule.name.clone(), acc));
    }
    let mut rest: Vec<(String, Acc)> = by_draft.into_iter().collect();
    rest.sort_by_key(|(_, a)| a.first_seen);
    by_draft_rule.extend(rest.into_iter().map(|(k, a)| impact(k, a)));

    let mut current: Vec<(String, Acc)> = by_current.into_iter().collect();
    current.sort_by(|(a, _), (b, _)| (a.starts_with('('), a).cmp(&(b.starts_with('('), b)));
    let by_current_rule = current.into_iter().map(|(k, a)| impact(k, a)).collect();

    ReplayReport {
        draft_hash: draft.content_hash(),
        total,
        changed: all.changed,
        draft_errors,
        transitions: all.transitions(),
        by_draft_rule,
        by_current_rule,
    }
}

fn impact(rule: String, acc: Acc) -> RuleImpact {
    RuleImpact { rule, requests: acc.requests, changed: acc.changed, transitions: acc.transitions() }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = if self.total == 0 { 0.0 } else { 100.0 * self.changed as f64 / self.total as f64 };
        writeln!(
            f,
            "Replayed {} request{} against draft {}: {} would change ({pct:.1} %), {} unchanged.",
            self.total,
            if self.total == 1 { "" } else { "s" },
            &self.draft_hash[..12.min(self.draft_hash.len())],
            self.changed,
            self.total - self.changed,
        )?;
        if self.draft_errors > 0 {
            writeln!(
                f,
                "{} request{} hit an evaluation error in the draft (handled by `defaults.on_error`).",
                self.draft_errors,
                if self.draft_errors == 1 { "" } else { "s" }
            )?;
        }
        if !self.transitions.is_empty() {
            writeln!(f)?;
            writeln!(f, "Changes:")?;
            let w = self.transitions.iter().map(|t| t.label().chars().count()).max().unwrap_or(0);
            for t in &self.transitions {
                let label = t.label();
                let pad = w - label.chars().count();
                writeln!(f, "  {label}{:pad$}  {:>7}   e.g. {}", "", t.count, t.examples.join(", "))?;
            }
        }
        for (title, rows) in [("By draft rule", &self.by_draft_rule), ("By current rule", &self.by_current_rule)] {
            writeln!(f)?;
            let w = rows.iter().map(|r| r.rule.chars().count()).max().unwrap_or(0).max(title.len() - 2);
            writeln!(f, "{title:<width$}  {:>8}  {:>8}", "requests", "changed", width = w + 2)?;
            for r in rows.iter() {
                let pad = w - r.rule.chars().count();
                writeln!(f, "  {}{:pad$}  {:>8}  {:>8}", r.rule, "", r.requests, r.changed)?;
                for t in &r.transitions {
                    writeln!(f, "      {}: {}", t.label(), t.count)?;
                }
            }
        }
        Ok(())
    }
}
