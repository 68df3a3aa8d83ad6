//! `signoff audit verify | export`: prove the event log is untouched, and take it elsewhere as JSON Lines.

use crate::config::Config;
use anyhow::{Context, bail};
use clap::Subcommand;
use signoff_domain::checkpoint::{SignedCheckpoint, check_chain_against_checkpoints};
use signoff_domain::{ChainVerifier, Event};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain of the configured database, or of an export file, and name the first bad event.
    Verify {
        /// Verify this JSON Lines export instead of the database (offline).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Also hold the chain against these signed checkpoints (JSON Lines, as `audit checkpoints` writes them, or
        /// a witness's copy): detects deleted tail events and a rewritten, rehashed chain.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The public key (base64) checkpoints must be signed with. Default: the configured checkpoint key's.
        #[arg(long)]
        trusted_key: Option<String>,
    },
    /// Sign the chain's current head now and store the checkpoint; prints it as JSON.
    Checkpoint,
    /// Write every stored checkpoint as JSON Lines, oldest first.
    Checkpoints {
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
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
        AuditCommand::Verify { file, checkpoints: Some(checkpoints), trusted_key } => {
            verify_with_checkpoints(config, file.as_deref(), &checkpoints, trusted_key).await
        }
        AuditCommand::Verify { file: Some(file), .. } => verify_file(&file),
        AuditCommand::Checkpoint => {
            let key = config.audit.key(&config.database_url, true)?.expect("created when missing");
            let store = signoff_store::open(&config.database_url).await?;
            match signoff_server::checkpoints::write_checkpoint(store.as_ref(), &key).await? {
                Some(checkpoint) => println!("{}", serde_json::to_string_pretty(&checkpoint)?),
                None => bail!("the audit log is empty: there is nothing to checkpoint yet"),
            }
            Ok(())
        }
        AuditCommand::Checkpoints { output } => {
            let store = signoff_store::open(&config.database_url).await?;
            let mut out = output_to(output.as_ref())?;
            let checkpoints = store.checkpoints().await?;
            for checkpoint in &checkpoints {
                serde_json::to_writer(&mut out, checkpoint)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            if let Some(path) = output {
                eprintln!("exported {} checkpoints to {}", checkpoints.len(), path.display());
            }
            Ok(())
        }
        AuditCommand::Verify { file: None, .. } => {
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
    let mut out = output_to(output.as_ref())?;
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

/// A buffered writer to `path`, or to standard output.
fn output_to(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// Reads a JSON Lines file of `T`, naming the line of the first that does not parse.
fn read_json_lines<T: serde::de::DeserializeOwned>(file: &Path, what: &str) -> anyhow::Result<Vec<T>> {
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?);
    let mut items = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(&line)
            .with_context(|| format!("{} line {} is not {what}", file.display(), number + 1))?;
        items.push(item);
    }
    Ok(items)
}

/// Holds the whole chain (the database's, or a full export) against signed checkpoints.
async fn verify_with_checkpoints(
    config: &Config,
    file: Option<&Path>,
    checkpoints: &Path,
    trusted_key: Option<String>,
) -> anyhow::Result<()> {
    let checkpoints: Vec<SignedCheckpoint> = read_json_lines(checkpoints, "a checkpoint")?;
    let trusted_key = match trusted_key {
        Some(key) => Some(key),
        None => config.audit.key(&config.database_url, false)?.map(|key| key.public_key_base64()),
    };
    let events: Vec<Event> = match file {
        Some(file) => read_json_lines(file, "an event")?,
        None => {
            let store = signoff_store::open(&config.database_url).await?;
            let (mut events, mut after) = (Vec::new(), 0);
            loop {
                let page = store.events_after(after, 5_000, None).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                events.extend(page);
            }
            events
        }
    };
    if let Some(first) = events.first()
        && first.seq != 1
    {
        bail!("checkpoints are checked against the whole chain: export it without --since");
    }
    let report = check_chain_against_checkpoints(events, &checkpoints, trusted_key.as_deref());
    match &trusted_key {
        Some(key) => eprintln!("trusting checkpoints signed with {key}"),
        None => eprintln!(
            "warning: no trusted key (--trusted-key, or the configured checkpoint key): signatures are checked \
             against the key each checkpoint names, which a forger could replace"
        ),
    }
    if report.ok() {
        println!("{report}");
        Ok(())
    } else {
        bail!("{report}")
    }
}
