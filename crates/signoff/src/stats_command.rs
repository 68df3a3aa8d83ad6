//! `signoff stats`: the approval statistics of `GET /v1/stats`, as tables or as JSON.

use crate::client_commands::Connection;
use clap::Args;
use signoff_client::StatsQuery;
use signoff_insights::stats::{Figures, GroupBy, StatsReport, format_rate, format_seconds};

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    connection: Connection,
    /// The period: a duration back from now (`30d`, `12h`) or an RFC 3339 time.
    #[arg(long, default_value = "30d")]
    since: String,
    /// Break the figures down by `rule`, `action`, `group` or `approver`.
    #[arg(long)]
    by: Option<GroupBy>,
    /// Approvals faster than this (from the request's creation) count as very fast.
    #[arg(long, default_value = "10s")]
    fast_under: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let query = StatsQuery { since: Some(args.since), by: args.by, fast_under: Some(args.fast_under) };
    let report = args.connection.client()?.stats(&query).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// The report as text: the totals, the breakdown, each person's load, and each day.
fn render(report: &StatsReport) -> String {
    let mut out = String::new();
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    out += &format!("Requests created from {} to {}\n\n", time(report.since), time(report.until));
    out += &totals(&report.totals, report.fast_under_s);
    if let Some(by) = report.by {
        out += &format!("\nBy {by}\n");
        out += &table(
            &[
                "KEY",
                "REQUESTS",
                "AUTO",
                "HUMAN",
                "APPROVED",
                "UNCHANGED",
                "EDITED",
                "P50",
                "P90",
                "TIMED OUT",
                "FLAGS",
            ],
            report.breakdown.iter().map(|b| {
                let f = &b.figures;
                vec![
                    b.key.clone(),
                    f.requests.to_string(),
                    f.auto_decided().to_string(),
                    f.human_decided.to_string(),
                    format_rate(f.approval_rate),
                    format_rate(f.unchanged_rate),
                    format_rate(f.edit_rate),
                    format_seconds(f.time_to_decision.p50_s),
                    format_seconds(f.time_to_decision.p90_s),
                    f.timed_out.to_string(),
                    format!("{} of {}", f.flags, f.sampled_reviews),
                ]
            }),
        );
    }
    if !report.approvers.is_empty() {
        out += "\nLoad per approver\n";
        out += &table(
            &["APPROVER", "DECISIONS", "SHARE", "APPROVED", "REJECTED", "QUORUM", "ANSWERED", "P50"],
            report.approvers.iter().map(|l| {
                vec![
                    l.approver.clone(),
                    l.decisions.to_string(),
                    format_rate(Some(l.share)),
                    l.approved.to_string(),
                    l.rejected.to_string(),
                    l.quorum_approvals.to_string(),
                    l.answered.to_string(),
                    format_seconds(l.time_to_decision.p50_s),
                ]
            }),
        );
    }
    out += "\nPer day (UTC)\n";
    out += &table(
        &["DAY", "REQUESTS", "AUTO", "HUMAN", "APPROVED", "REJECTED", "TIMED OUT", "PENDING"],
        report.per_day.iter().map(|d| {
            let f = &d.figures;
            vec![
                d.day.to_string(),
                f.requests.to_string(),
                f.auto_decided().to_string(),
                f.human_decided.to_string(),
                f.approved.to_string(),
                f.rejected.to_string(),
                f.timed_out.to_string(),
                f.pending.to_string(),
            ]
        }),
    );
    out
}

fn totals(f: &Figures, fast_under_s: u64) -> String {
    let t = &f.time_to_decision;
    let reasons = if f.rejection_reasons.is_empty() {
        "-".to_string()
    } else {
        let mut reasons: Vec<(&String, &u64)> = f.rejection_reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        reasons.iter().map(|(reason, n)| format!("{reason} {n}")).collect::<Vec<_>>().join(", ")
    };
    let lines = [
        ("requests", format!("{} ({} questions, {} pending)", f.requests, f.questions, f.pending)),
        ("decided by policy", format!("{} ({} approved, {} denied)", f.auto_decided(), f.auto_approved, f.auto_denied)),
        ("decided by people", f.human_decided.to_string()),
        ("  approved", format!("{} ({})", f.approved, format_rate(f.approval_rate))),
        ("  unchanged", format!("{} ({})", f.approved_unchanged, format_rate(f.unchanged_rate))),
        ("  edited", format!("{} ({})", f.edited, format_rate(f.edit_rate))),
        ("  rejected", f.rejected.to_string()),
        ("rejection reasons", reasons),
        (
            "time to decide",
            format!(
                "p50 {}, p90 {}, p99 {} ({} decisions)",
                format_seconds(t.p50_s),
                format_seconds(t.p90_s),
                format_seconds(t.p99_s),
                t.count
            ),
        ),
        (
            "very fast approvals",
            format!("{} under {fast_under_s} s ({} of approvals)", f.fast_approvals, format_rate(f.fast_approval_rate)),
        ),
        ("timed out", format!("{} ({} expired)", f.timed_out, f.expired)),
        ("escalated", f.escalated.to_string()),
        ("cancelled", f.cancelled.to_string()),
        ("answered", f.answered.to_string()),
        ("sampled reviews", format!("{} ({} flagged, {})", f.sampled_reviews, f.flags, format_rate(f.flag_rate))),
        ("misses", f.misses.to_string()),
        ("standing grants", format!("{} approved", f.granted)),
    ];
    lines.iter().map(|(label, value)| format!("{label:<20} {value}\n")).collect()
}

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|row| row[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}
