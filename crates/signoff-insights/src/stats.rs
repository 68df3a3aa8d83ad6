//! Approval statistics: what happened to the requests created in a period, in total, per day, per rule, action,
//! group or approver, and each person's share of the decisions. docs/stats.md says what each figure counts.

use chrono::{DateTime, Days, NaiveDate, Utc};
use signoff_domain::{DecidedBy, DecisionOutcome, Kind, Request, ReviewVerdict, Status};
use std::collections::BTreeMap;
use std::time::Duration;

pub use signoff_wire::stats::{ApproverLoad, Breakdown, DayFigures, Figures, GroupBy, Percentiles, StatsReport};

/// Below this, a person's approval counts as very fast unless the caller says otherwise.
pub const DEFAULT_FAST_UNDER: Duration = Duration::from_secs(10);

/// The breakdown key of requests no rule matched (the policy's defaults placed them).
pub const NO_RULE: &str = "(defaults)";
/// The breakdown key of requests that never went to a group (policy decided them at once).
pub const NO_GROUP: &str = "(no group)";
/// The breakdown key of requests no person decided or answered.
pub const NO_PERSON: &str = "(no person)";
/// The rejection reason of a person's rejection that gave none.
pub const NO_REASON: &str = "(none)";

/// Which requests to count and how to break them down.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsOptions {
    /// Requests created at or after this...
    pub since: DateTime<Utc>,
    /// ...and before this.
    pub until: DateTime<Utc>,
    pub by: Option<GroupBy>,
    /// A person's approval faster than this (from the request's creation) counts as very fast.
    pub fast_under: Duration,
}

impl StatsOptions {
    /// Requests created in `[since, until)`, no breakdown, very fast meaning under [`DEFAULT_FAST_UNDER`].
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>) -> StatsOptions {
        StatsOptions { since, until, by: None, fast_under: DEFAULT_FAST_UNDER }
    }
}

/// The statistics of the `requests` created in `[options.since, options.until)`; the others are ignored, so a
/// caller may pass more than the period.
pub fn compute(requests: &[Request], options: &StatsOptions) -> StatsReport {
    let in_period: Vec<&Request> =
        requests.iter().filter(|r| options.since <= r.created_at && r.created_at < options.until).collect();
    let fast_under = chrono::Duration::from_std(options.fast_under).unwrap_or(chrono::Duration::MAX);
    let figures_of = |requests: &[&Request]| {
        let mut tally = Tally::default();
        for request in requests {
            tally.count(request, fast_under);
        }
        tally.figures()
    };

    let mut by_day: BTreeMap<NaiveDate, Vec<&Request>> = BTreeMap::new();
    for request in &in_period {
        by_day.entry(request.created_at.date_naive()).or_default().push(request);
    }
    let per_day = days(options.since, options.until)
        .into_iter()
        .map(|day| DayFigures { day, figures: figures_of(by_day.get(&day).map_or(&[][..], Vec::as_slice)) })
        .collect();

    let mut breakdown = Vec::new();
    if let Some(by) = options.by {
        let mut keyed: BTreeMap<String, Vec<&Request>> = BTreeMap::new();
        for request in &in_period {
            keyed.entry(key_of(request, by)).or_default().push(request);
        }
        breakdown =
            keyed.into_iter().map(|(key, requests)| Breakdown { key, figures: figures_of(&requests) }).collect();
        breakdown.sort_by(|a, b| b.figures.requests.cmp(&a.figures.requests).then_with(|| a.key.cmp(&b.key)));
    }

    let totals = figures_of(&in_period);
    let approvers = approver_loads(&in_period, totals.human_decided);
    StatsReport {
        since: options.since,
        until: options.until,
        fast_under_s: options.fast_under.as_secs(),
        totals,
        per_day,
        by: options.by,
        breakdown,
        approvers,
    }
}

/// Every UTC day that `[since, until)` touches, oldest first.
fn days(since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<NaiveDate> {
    if since >= until {
        return Vec::new();
    }
    let last = (until - chrono::Duration::nanoseconds(1)).date_naive();
    std::iter::successors(Some(since.date_naive()), |day| day.checked_add_days(Days::new(1)))
        .take_while(|day| *day <= last)
        .collect()
}

fn key_of(request: &Request, by: GroupBy) -> String {
    match by {
        GroupBy::Rule => request.policy.as_ref().and_then(|p| p.rule.clone()).unwrap_or_else(|| NO_RULE.to_string()),
        GroupBy::Action => request.action.clone(),
        GroupBy::Group => request.group.clone().unwrap_or_else(|| NO_GROUP.to_string()),
        GroupBy::Approver => match request.decision.as_ref().map(|d| &d.by) {
            Some(DecidedBy::Human { approver_id, .. }) => approver_id.to_string(),
            _ => NO_PERSON.to_string(),
        },
    }
}

/// Seconds from the request's creation to its decision (0 if the clocks disagree).
fn seconds_to_decide(request: &Request, decided_at: DateTime<Utc>) -> f64 {
    let elapsed = decided_at - request.created_at;
    elapsed.num_microseconds().map_or(f64::MAX, |us| us as f64 / 1e6).max(0.0)
}

/// The figures counted one request at a time, then finished by [`Tally::figures`].
#[derive(Default)]
struct Tally {
    figures: Figures,
    decision_seconds: Vec<f64>,
}

impl Tally {
    fn count(&mut self, request: &Request, fast_under: chrono::Duration) {
        let f = &mut self.figures;
        f.requests += 1;
        if request.kind == Kind::Question {
            f.questions += 1;
            if request.status == Status::Answered {
                f.answered += 1;
            }
            return;
        }
        if request.sampled == Some(true) {
            f.sampled_reviews += 1;
        }
        if let Some(review) = &request.review
            && review.verdict == ReviewVerdict::Flagged
        {
            if review.miss {
                f.misses += 1;
            } else {
                f.flags += 1;
            }
        }
        if request.escalations.iter().any(|step| step.fired_at.is_some()) {
            f.escalated += 1;
        }
        let Some(decision) = &request.decision else {
            f.pending += 1;
            return;
        };
        match (&decision.by, decision.outcome) {
            (DecidedBy::Policy { .. }, DecisionOutcome::Approved) => f.auto_approved += 1,
            (DecidedBy::Policy { .. }, _) => f.auto_denied += 1,
            (DecidedBy::Human { .. }, DecisionOutcome::Approved) => {
                f.human_decided += 1;
                f.approved += 1;
                if decision.edited {
                    f.edited += 1;
                } else {
                    f.approved_unchanged += 1;
                }
                if decision.at - request.created_at < fast_under {
                    f.fast_approvals += 1;
                }
                self.decision_seconds.push(seconds_to_decide(request, decision.at));
            }
            (DecidedBy::Human { .. }, DecisionOutcome::Rejected) => {
                f.human_decided += 1;
                f.rejected += 1;
                let reason = decision.reason.clone().unwrap_or_else(|| NO_REASON.to_string());
                *f.rejection_reasons.entry(reason).or_default() += 1;
                self.decision_seconds.push(seconds_to_decide(request, decision.at));
            }
            (DecidedBy::Human { .. }, _) => {}
            (DecidedBy::Timeout, outcome) => {
                f.timed_out += 1;
                if outcome == DecisionOutcome::Expired {
                    f.expired += 1;
                }
            }
            (DecidedBy::Agent { .. }, _) => f.cancelled += 1,
            (DecidedBy::Grant { .. }, _) => f.granted += 1,
        }
    }

    fn figures(mut self) -> Figures {
        let f = &mut self.figures;
        f.time_to_decision = percentiles(&mut self.decision_seconds);
        f.approval_rate = rate(f.approved, f.human_decided);
        f.unchanged_rate = rate(f.approved_unchanged, f.human_decided);
        f.edit_rate = rate(f.edited, f.human_decided);
        f.flag_rate = rate(f.flags, f.sampled_reviews);
        f.fast_approval_rate = rate(f.fast_approvals, f.approved);
        self.figures
    }
}

/// `part / whole`, or `None` when there is no whole.
pub fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The nearest-rank p50, p90 and p99 of `values` (which it sorts).
pub fn percentiles(values: &mut [f64]) -> Percentiles {
    values.sort_by(f64::total_cmp);
    let nearest_rank = |p: u64| {
        let n = values.len() as u64;
        // The smallest rank r with r / n >= p / 100.
        let rank = (p * n).div_ceil(100).max(1);
        values.get(rank as usize - 1).copied()
    };
    Percentiles {
        count: values.len() as u64,
        p50_s: nearest_rank(50),
        p90_s: nearest_rank(90),
        p99_s: nearest_rank(99),
    }
}

/// A rate as people read it: `57.1 %`, or `-` when there is none.
pub fn format_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_string(), |rate| format!("{:.1} %", rate * 100.0))
}

/// A duration in seconds as people read it: `4 s`, `9.5 s`, `2.5 min`, `3.2 h`, `1.5 d`; `-` when there is none.
pub fn format_seconds(seconds: Option<f64>) -> String {
    let Some(seconds) = seconds else { return "-".to_string() };
    let (value, unit) = match seconds {
        s if s < 60.0 => (s, "s"),
        s if s < 3_600.0 => (s / 60.0, "min"),
        s if s < 86_400.0 => (s / 3_600.0, "h"),
        s => (s / 86_400.0, "d"),
    };
    let text = format!("{value:.1}");
    format!("{} {unit}", text.strip_suffix(".0").unwrap_or(&text))
}

/// Each person's final verdicts, answers and approvals toward a quorum, the most decisions first.
fn approver_loads(requests: &[&Request], human_decided: u64) -> Vec<ApproverLoad> {
    #[derive(Default)]
    struct Load {
        approved: u64,
        rejected: u64,
        quorum_approvals: u64,
        answered: u64,
        seconds: Vec<f64>,
    }
    let mut loads: BTreeMap<String, Load> = BTreeMap::new();
    for request in requests {
        let decider = match &request.decision {
            Some(decision) => match &decision.by {
                DecidedBy::Human { approver_id, .. } => {
                    let load = loads.entry(approver_id.to_string()).or_default();
                    match decision.outcome {
                        DecisionOutcome::Approved => load.approved += 1,
                        DecisionOutcome::Rejected => load.rejected += 1,
                        DecisionOutcome::Answered => load.answered += 1,
                        DecisionOutcome::Expired | DecisionOutcome::Cancelled => {}
                    }
                    if matches!(decision.outcome, DecisionOutcome::Approved | DecisionOutcome::Rejected) {
                        load.seconds.push(seconds_to_decide(request, decision.at));
                    }
                    Some((approver_id, decision.outcome))
                }
                _ => None,
            },
            None => None,
        };
        for approval in &request.approvals {
            let ended_it = decider
                .is_some_and(|(id, outcome)| *id == approval.approver_id && outcome == DecisionOutcome::Approved);
            if !ended_it {
                loads.entry(approval.approver_id.to_string()).or_default().quorum_approvals += 1;
            }
        }
    }
    let mut loads: Vec<ApproverLoad> = loads
        .into_iter()
        .map(|(approver, mut load)| {
            let decisions = load.approved + load.rejected;
            ApproverLoad {
                approver,
                decisions,
                approved: load.approved,
                rejected: load.rejected,
                share: rate(decisions, human_decided).unwrap_or(0.0),
                quorum_approvals: load.quorum_approvals,
                answered: load.answered,
                time_to_decision: percentiles(&mut load.seconds),
            }
        })
        .collect();
    loads.sort_by(|a, b| b.decisions.cmp(&a.decisions).then_with(|| a.approver.cmp(&b.approver)));
    loads
}

#[cfg(test)]
mod tests;
