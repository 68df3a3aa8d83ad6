//! Stats: the approval statistics of a period (`signoff_server::insights`, the same figures as `GET /v1/stats`) as
//! charts drawn on the server (`charts.rs`) with their numbers in tables: volume per day by policy and by people,
//! approval, unchanged and edit rates, rejection reasons, time to decision, deadlines and escalations, very fast
//! approvals, the load per approver, and a breakdown by rule (with its flag rates), action, group or approver.

use crate::Dashboard;
use crate::charts::{BarChart, BarInput, DayChart, DayInput, bars_x};
use crate::page::{Chrome, PageError, render};
use crate::session::SignedIn;
use crate::view::Moment;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use signoff_insights::stats::{Figures, GroupBy, StatsReport, format_rate, format_seconds};
use signoff_server::insights;

/// The periods the form offers (any other `since` the address carries is offered too).
const PERIODS: [(&str, &str); 5] = [
    ("1d", "Last day"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("365d", "Last year"),
];

#[derive(Debug, Default, Deserialize)]
pub struct StatsParams {
    #[serde(default)]
    since: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    fast_under: String,
}

struct Choice {
    value: String,
    label: String,
}

/// A figure of the summary: what it is, and its value.
struct Fact {
    name: &'static str,
    value: String,
}

/// One row of the breakdown table.
struct BreakdownRow {
    key: String,
    requests: u64,
    auto: u64,
    human: u64,
    approval_rate: String,
    unchanged_rate: String,
    edit_rate: String,
    p50: String,
    timed_out: u64,
    fast: u64,
    sampled: u64,
    flags: u64,
    flag_rate: String,
}

struct LoadRow {
    approver: String,
    decisions: u64,
    share: String,
    approved: u64,
    rejected: u64,
    quorum_approvals: u64,
    answered: u64,
    p50: String,
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    chrome: Chrome,
    periods: Vec<Choice>,
    groupings: Vec<Choice>,
    since: String,
    by: String,
    fast_under: String,
    error: Option<String>,
    report: Option<Report>,
}

/// What the page shows of a report.
struct Report {
    since: Moment,
    until: Moment,
    facts: Vec<Fact>,
    volume: DayChart,
    rates: BarChart,
    reasons: BarChart,
    times: BarChart,
    deadlines: BarChart,
    load: BarChart,
    load_rows: Vec<LoadRow>,
    /// What the breakdown is by (`rule`, ...), when there is one.
    by: Option<String>,
    breakdown: Vec<BreakdownRow>,
    /// The flag rate of each rule with sampled reviews (when broken down by rule).
    flag_rates: Option<BarChart>,
    bars_x: String,
}

/// `GET /stats`.
pub async fn show(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
    Query(params): Query<StatsParams>,
) -> Result<Response, PageError> {
    let since = given(&params.since).unwrap_or(insights::DEFAULT_SINCE).to_string();
    let options = insights::options(Some(&since), given(&params.by), given(&params.fast_under), signoff_store::now());
    let (report, error) = match options {
        Ok(options) => {
            let report = insights::report(&dashboard.app, &options)
                .await
                .map_err(|e| PageError::from(e).for_person(signed_in.person()))?;
            (Some(view(&report)), None)
        }
        Err(error) => (None, Some(crate::page::sentence(&error.message))),
    };
    let mut periods: Vec<Choice> =
        PERIODS.iter().map(|(value, label)| Choice { value: value.to_string(), label: label.to_string() }).collect();
    if !periods.iter().any(|p| p.value == since) {
        periods.push(Choice { value: since.clone(), label: format!("Since {since}") });
    }
    let groupings =
        GroupBy::ALL.iter().map(|by| Choice { value: by.as_str().to_string(), label: format!("By {by}") }).collect();
    let page = StatsPage {
        chrome: Chrome::new(Some(signed_in.person()), "stats"),
        periods,
        groupings,
        since,
        by: params.by.trim().to_string(),
        fast_under: given(&params.fast_under).unwrap_or("10s").to_string(),
        error: error.clone(),
        report,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(render(status, &page))
}

/// A form field as given: `None` when left empty.
fn given(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

fn view(report: &StatsReport) -> Report {
    let t = &report.totals;
    let volume = DayChart::new(
        "volume",
        "Requests per day",
        report
            .per_day
            .iter()
            .map(|d| {
                let f = &d.figures;
                let (auto, human) = (f.auto_decided(), f.human_decided);
                DayInput { day: d.day, auto, human, other: f.requests - auto - human }
            })
            .collect(),
    );
    let rate_bar = |label: &str, rate: Option<f64>| BarInput::new(label, rate.unwrap_or(0.0), format_rate(rate), "bar");
    let rates = BarChart::new(
        "rates",
        "Decisions by people",
        vec![
            rate_bar("approved", t.approval_rate),
            rate_bar("approved unchanged", t.unchanged_rate),
            rate_bar("approved with edits", t.edit_rate),
            rate_bar("rejected", (t.human_decided > 0).then(|| t.rejected as f64 / t.human_decided as f64)),
        ],
        Some(1.0),
    );
    let mut reasons: Vec<(&String, &u64)> = t.rejection_reasons.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let reasons = BarChart::new(
        "reasons",
        "Rejection reasons",
        reasons.into_iter().map(|(reason, n)| BarInput::new(reason, *n as f64, n.to_string(), "bar reject")).collect(),
        None,
    );
    let p = &t.time_to_decision;
    let times = BarChart::new(
        "times",
        "Time to decision",
        [("p50", p.p50_s), ("p90", p.p90_s), ("p99", p.p99_s)]
            .into_iter()
            .map(|(name, seconds)| BarInput::new(name, seconds.unwrap_or(0.0), format_seconds(seconds), "bar"))
            .collect(),
        None,
    );
    let count = |label: String, n: u64, class| BarInput::new(label, n as f64, n.to_string(), class);
    let deadlines = BarChart::new(
        "deadlines",
        "Deadlines, escalations and very fast approvals",
        vec![
            count("timed out".into(), t.timed_out, "bar reject"),
            count("expired".into(), t.expired, "bar reject"),
            count("escalated".into(), t.escalated, "bar"),
            count(format!("approved in under {} s", report.fast_under_s), t.fast_approvals, "bar fast"),
        ],
        None,
    );
    let load = BarChart::new(
        "load",
        "Decisions per approver",
        report
            .approvers
            .iter()
            .map(|l| {
                BarInput::new(
                    &l.approver,
                    l.decisions as f64,
                    format!("{} ({})", l.decisions, format_rate(Some(l.share))),
                    "bar",
                )
            })
            .collect(),
        None,
    );
    let flag_rates = (report.by == Some(GroupBy::Rule)).then(|| {
        BarChart::new(
            "flags",
            "Flag rate per rule (sampled reviews flagged)",
            report
                .breakdown
                .iter()
                .filter(|b| b.figures.sampled_reviews > 0)
                .map(|b| {
                    let f = &b.figures;
                    let value = format!("{} ({} of {})", format_rate(f.flag_rate), f.flags, f.sampled_reviews);
                    BarInput::new(&b.key, f.flag_rate.unwrap_or(0.0), value, "bar reject")
                })
                .collect(),
            Some(1.0),
        )
    });
    Report {
        since: Moment::of(report.since),
        until: Moment::of(report.until),
        facts: facts(t, report.fast_under_s),
        volume,
        rates,
        reasons,
        times,
        deadlines,
        load,
        load_rows: report
            .approvers
            .iter()
            .map(|l| LoadRow {
                approver: l.approver.clone(),
                decisions: l.decisions,
                share: format_rate(Some(l.share)),
                approved: l.approved,
                rejected: l.rejected,
                quorum_approvals: l.quorum_approvals,
                answered: l.answered,
                p50: format_seconds(l.time_to_decision.p50_s),
            })
            .collect(),
        by: report.by.map(|by| by.as_str().to_string()),
        breakdown: report.breakdown.iter().map(|b| breakdown_row(&b.key, &b.figures)).collect(),
        flag_rates,
        bars_x: bars_x(),
    }
}

fn facts(t: &Figures, fast_under_s: u64) -> Vec<Fact> {
    let fact = |name, value: String| Fact { name, value };
    let p = &t.time_to_decision;
    vec![
        fact("Requests", format!("{} ({} questions, {} pending)", t.requests, t.questions, t.pending)),
        fact(
            "Decided by policy",
            format!("{} ({} approved, {} denied)", t.auto_decided(), t.auto_approved, t.auto_denied),
        ),
        fact("Decided by people", format!("{} ({} approved, {} rejected)", t.human_decided, t.approved, t.rejected)),
        fact("Approval rate", format_rate(t.approval_rate)),
        fact("Approved unchanged", format_rate(t.unchanged_rate)),
        fact("Edit rate", format_rate(t.edit_rate)),
        fact(
            "Time to decision",
            format!(
                "p50 {}, p90 {}, p99 {} ({} decisions)",
                format_seconds(p.p50_s),
                format_seconds(p.p90_s),
                format_seconds(p.p99_s),
                p.count
            ),
        ),
        fact(
            "Very fast approvals",
            format!("{} under {fast_under_s} s ({} of approvals)", t.fast_approvals, format_rate(t.fast_approval_rate)),
        ),
        fact("Timed out", format!("{} ({} expired)", t.timed_out, t.expired)),
        fact("Escalated", t.escalated.to_string()),
        fact("Cancelled", t.cancelled.to_string()),
        fact("Questions answered", t.answered.to_string()),
        fact("Sampled reviews", format!("{} ({} flagged, {})", t.sampled_reviews, t.flags, format_rate(t.flag_rate))),
        fact("Misses", t.misses.to_string()),
        fact("Approved by standing grants", t.granted.to_string()),
    ]
}

fn breakdown_row(key: &str, f: &Figures) -> BreakdownRow {
    BreakdownRow {
        key: key.to_string(),
        requests: f.requests,
        auto: f.auto_decided(),
        human: f.human_decided,
        approval_rate: format_rate(f.approval_rate),
        unchanged_rate: format_rate(f.unchanged_rate),
        edit_rate: format_rate(f.edit_rate),
        p50: format_seconds(f.time_to_decision.p50_s),
        timed_out: f.timed_out,
        fast: f.fast_approvals,
        sampled: f.sampled_reviews,
        flags: f.flags,
        flag_rate: format_rate(f.flag_rate),
    }
}
