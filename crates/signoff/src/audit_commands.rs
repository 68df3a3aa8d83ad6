//! `signoff audit verify | export`: prove the event log is untouched, and take it elsewhere as JSON Lines.

use crate::config::Config;
use anyhow::{Context, bail};
use clap::Subcommand;
use signoff_domain::{ChainVerifier, Event};
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain of the configured database, or of an export file, and name the first bad event.
    Verify {
        /// Verify this JSON Lines export instead of the database (offline).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Write the events as JSON Lines (one event per line, oldest first).
    Export {
        /// Only events of the last DURATION (e.g. `30d`); the export still verifies on its own.
        #[arg(long)]
        since: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub async fn run(command: AuditCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { file: Some(file) } => verify_file(&file),
        AuditCommand::Verify { file: None } => {
            let store = signoff_store::open(&config.database_url).await?;
            let verification = signoff_server::verify_audit_log(store.as_ref()).await?;
            match verification.problem {
                None => {
                    println!(
                        "ok: {} events, chain head {}",
                        verification.events,
                        verification.head.unwrap_or_default()
                    );
                    Ok(())
                }
                Some(problem) => {
                    bail!("the audit log is broken at {problem} ({} events before it check out)", verification.events)
                }
            }
        }
        AuditCommand::Export { since, output } => export(config, since, output).await,
    }
}

fn verify_file(file: &PathBuf) -> anyhow::Result<()> {
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?);
    let mut verifier = ChainVerifier::from_first();
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event =
            serde_json::from_str(&line).with_context(|| format!("line {} is not an event", number + 1))?;
        if let Err(broken) = verifier.check(&event) {
            bail!("{} is broken at {broken} (line {})", file.display(), number + 1);
        }
    }
    println!("ok: {} events, chain head {}", verifier.checked(), verifier.head().unwrap_or("none"));
    Ok(())
}

async fn export(config: &Config, since: Option<String>, output: Option<PathBuf>) -> anyhow::Result<()> {
    let since = since
        .map(|text| {
            let window = signoff_policy::parse_duration(&text).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            anyhow::Ok(signoff_store::now() - chrono::Duration::from_std(window)?)
        })
        .transpose()?;
    let store = signoff_store::open(&config.database_url).await?;
    let mut out: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let (mut after, mut written) = (0, 0u64);
    // The export is a contiguous slice of the chain: from the first event at or after `since`, everything.
    let mut started = since.is_none();
    loop {
        let page = store.events_after(after, 5_000, None).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            started = started || since.is_some_and(|since| event.at >= since);
            if !started {
                continue;
            }
            serde_json::to_writer(&mut out, event)?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    out.flush()?;
    if let Some(path) = output {
        eprintln!("exported {written} events to {}", path.display());
    }
    Ok(())
}
