//! `signoff advise`: the advice over the API (approver or admin key), printed as findings with their evidence,
//! drafts and replays, or as JSON; `--apply ID` applies one finding's draft as a new policy version (admin key).

use clap::Args;
use signoff_wire::advice::{AdviceReport, ApplyAdvice, Finding};

use crate::client_commands::Connection;

#[derive(Debug, Args)]
pub struct AdviseArgs {
    #[command(flatten)]
    connection: Connection,
    /// The period: a policy duration back from now (`30d`, `12h`) or an RFC 3339 time.
    #[arg(long, default_value = "30d")]
    since: String,
    /// Human decisions a rule needs before it gets advice.
    #[arg(long, default_value_t = 20)]
    min: u64,
    /// Print the report (or, with --apply, the answer) as JSON.
    #[arg(long)]
    json: bool,
    /// Apply the draft of this finding as a new policy version (admin key).
    #[arg(long, value_name = "ID")]
    apply: Option<String>,
}

pub async fn advise(args: AdviseArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    if let Some(id) = args.apply {
        let body = ApplyAdvice { id, since: Some(args.since), min: Some(args.min) };
        let applied = client.apply_advice(&body).await?;
        if args.json {
            return crate::client_commands::print_json(&applied);
        }
        println!(
            "applied finding {} ({}) as policy version {}",
            applied.finding.id, applied.finding.kind, applied.policy.version
        );
        return Ok(());
    }
    let report = client.advice(Some(&args.since), Some(args.min)).await?;
    if args.json {
        return crate::client_commands::print_json(&report);
    }
    print!("{}", render(&report));
    Ok(())
}

/// The report as text: a heading, then each finding with its draft's diff and replay.
fn render(report: &AdviceReport) -> String {
    let mut out = format!(
        "Advice for policy version {} over {} – {} (rules with at least {} human decisions)\n",
        report.policy_version,
        report.since.format("%Y-%m-%d %H:%M"),
        report.until.format("%Y-%m-%d %H:%M"),
        report.min_decisions,
    );
    if report.findings.is_empty() {
        out.push_str("\nNo findings: no rule or group stands out.\n");
    }
    for finding in &report.findings {
        out.push_str(&render_finding(finding));
    }
    out
}

fn render_finding(finding: &Finding) -> String {
    let mut out = format!("\n[{}] {}\n  {}\n", finding.kind, finding.id, finding.message);
    if let Some(calibration) = &finding.calibration {
        out.push_str("  confidence   decided  unchanged\n");
        for bucket in calibration.buckets.iter().filter(|b| b.human_decided > 0) {
            let rate = bucket.unchanged_rate.map_or("-".to_string(), |r| format!("{:.1} %", r * 100.0));
            out.push_str(&format!("  {:.1}–{:.1}  {:>9}  {:>9}\n", bucket.from, bucket.to, bucket.human_decided, rate));
        }
    }
    if let Some(draft) = &finding.draft {
        let replay = &draft.replay;
        out.push_str(&format!(
            "  Replayed {} requests against the draft: {} would change.\n",
            replay.total, replay.changed
        ));
        for change in &replay.transitions {
            out.push_str(&format!(
                "    {} → {}: {}   e.g. {}\n",
                change.from,
                change.to,
                change.count,
                change.examples.join(", ")
            ));
        }
        out.push_str("  Draft:\n");
        for line in draft.diff.lines() {
            out.push_str(&format!("    {line}\n"));
        }
        out.push_str(&format!("  Apply it with: signoff advise --apply {}\n", finding.id));
    }
    out
}
