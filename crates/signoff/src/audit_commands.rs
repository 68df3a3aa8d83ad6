//! `signoff audit verify | export`: prove the event log is untouched, and take it elsewhere as JSON Lines.

use crate::config::Config;
use anyhow::{Context, bail};
use clap::Subcommand;
use futures::StreamExt;
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
    let checked = check_export(reader).map_err(|problem| anyhow::anyhow!("{}: {problem}", file.display()))?;
    println!("ok: {} events, chain head {}", checked.events, checked.head.as_deref().unwrap_or("none"));
    Ok(())
}

/// What a JSON Lines export that checks out holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedExport {
    /// The number of events.
    pub events: u64,
    /// The hash of the last event, `None` for an export without events.
    pub head: Option<String>,
}

/// Checks a JSON Lines export (one event per line, blank lines ignored) as one contiguous slice of the hash chain.
/// The error is a sentence that names the first line at fault.
pub fn check_export(mut reader: impl BufRead) -> Result<CheckedExport, String> {
    let mut verifier = ChainVerifier::from_first();
    let mut line = Vec::new();
    for number in 1u64.. {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|e| format!("line {number} cannot be read: {e}"))?;
        if read == 0 {
            break;
        }
        let text = std::str::from_utf8(&line).map_err(|_| format!("line {number} is not UTF-8 text"))?;
        if text.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(text).map_err(|e| format!("line {number} is not an event: {e}"))?;
        verifier.check(&event).map_err(|broken| format!("broken at {broken} (line {number})"))?;
    }
    Ok(CheckedExport { events: verifier.checked(), head: verifier.head().map(String::from) })
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
    let mut written = 0;
    let mut pages = std::pin::pin!(signoff_server::export_audit_log(store, since));
    while let Some(page) = pages.next().await {
        let page = page?;
        out.write_all(&signoff_server::json_lines(&page)?)?;
        written += page.len();
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use signoff_domain::{EventKind, NewEvent};

    /// `default` cases, or `PROPTEST_CASES` when it is set.
    fn config(default: u32) -> ProptestConfig {
        let config = match std::env::var_os("PROPTEST_CASES") {
            Some(_) => ProptestConfig::default(),
            None => ProptestConfig::with_cases(default),
        };
        ProptestConfig { failure_persistence: None, ..config }
    }

    /// A well-formed slice of the chain: `count` events from `first_seq` on (fewer if the sequence would overflow).
    fn chain(first_seq: i64, count: usize, amounts: &[f64]) -> Vec<Event> {
        let mut prev = "f".repeat(64);
        let mut events = Vec::new();
        for i in 0..count {
            let Some(seq) = first_seq.checked_add(i as i64) else { break };
            let at = DateTime::from_timestamp_micros(1_780_000_000_000_000 + seq.rem_euclid(1 << 40)).unwrap();
            let amount = amounts.get(i).copied().unwrap_or(1.0);
            let data = json!({"action": "refund", "args": {"amount": amount, "note": "ünïcode \u{0}"}});
            let request = Some(uuid::Uuid::from_u128(seq as u128).into());
            let owner = (i % 2 == 0).then(|| "key_1".to_string());
            let event = NewEvent::new(request, EventKind::Created, "agent:bot", data).seal(seq, at, prev, owner);
            prev = event.hash.clone();
            events.push(event);
        }
        events
    }

    fn lines(events: &[Event]) -> Vec<String> {
        events.iter().map(|e| serde_json::to_string(e).unwrap()).collect()
    }

    fn check(lines: &[String]) -> Result<CheckedExport, String> {
        check_export((lines.join("\n") + "\n").as_bytes())
    }

    fn first_seq() -> impl Strategy<Value = i64> {
        prop_oneof![1i64..1_000_000, (i64::MAX - 8)..=i64::MAX, Just(i64::MIN), Just(0)]
    }

    fn a_chain() -> impl Strategy<Value = Vec<Event>> {
        a_chain_of(1)
    }

    /// A chain of at least `min` events.
    fn a_chain_of(min: usize) -> impl Strategy<Value = Vec<Event>> {
        let first = first_seq().prop_map(move |seq| seq.min(i64::MAX - (min as i64 - 1)));
        (first, min..8, prop::collection::vec(any::<f64>().prop_filter("finite", |f| f.is_finite()), 8))
            .prop_map(|(first, count, amounts)| chain(first, count, &amounts))
    }

    /// The line an error names, `(line N)` or `line N …`.
    fn named_line(error: &str) -> Option<usize> {
        let at = error.find("line ")? + "line ".len();
        error[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
    }

    const FIELDS: [&str; 9] = ["seq", "request_id", "kind", "actor", "data", "owner_key_id", "at", "prev_hash", "hash"];

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            Just(json!(i64::MAX)),
            "\\PC{0,16}".prop_map(Value::String),
            Just(json!("2026-01-01T00:00:00Z")),
            Just(json!("created")),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| prop::collection::vec(inner, 0..3).prop_map(Value::Array))
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn a_real_export_verifies(events in a_chain()) {
            let checked = check(&lines(&events)).unwrap();
            prop_assert_eq!(checked.events, events.len() as u64);
            prop_assert_eq!(checked.head.as_deref(), events.last().map(|e| e.hash.as_str()));
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_errors_name_a_line(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Err(error) = check_export(bytes.as_slice()) {
                prop_assert!(named_line(&error).is_some(), "{}", error);
            }
        }

        #[test]
        fn arbitrary_lines_after_a_real_export_are_named(events in a_chain(), extra in "\\PC{0,80}") {
            let mut text = lines(&events);
            text.push(extra.replace(['\n', '\r'], " "));
            match check(&text) {
                Ok(checked) => prop_assert!(checked.events >= events.len() as u64),
                Err(error) => prop_assert_eq!(named_line(&error), Some(text.len()), "{}", error),
            }
        }

        #[test]
        fn any_event_after_the_last_is_checked_without_overflow(events in a_chain(), seq in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN)]) {
            let last = events.last().unwrap();
            let next = NewEvent::new(None, EventKind::Routed, "system", json!({})).seal(seq, last.at, last.hash.clone(), None);
            let mut text = lines(&events);
            text.push(serde_json::to_string(&next).unwrap());
            match check(&text) {
                Ok(_) => prop_assert_eq!(Some(seq), last.seq.checked_add(1)),
                Err(error) => {
                    prop_assert_ne!(Some(seq), last.seq.checked_add(1));
                    prop_assert_eq!(named_line(&error), Some(text.len()), "{}", error);
                }
            }
        }

        #[test]
        fn a_truncated_export_fails_at_the_cut_line_or_verifies_what_is_whole(events in a_chain(), cut in any::<prop::sample::Index>()) {
            let text = lines(&events).join("\n");
            let mut at = cut.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let cut_text = &text[..at];
            let line = cut_text.matches('\n').count() + 1;
            match check_export(cut_text.as_bytes()) {
                Ok(checked) => {
                    // A cut verifies only where it leaves whole lines, and then it holds just those.
                    let pieces: Vec<&str> = cut_text.split('\n').filter(|piece| !piece.is_empty()).collect();
                    prop_assert_eq!(checked.events as usize, pieces.len());
                    prop_assert!(pieces.iter().zip(lines(&events)).all(|(piece, whole)| *piece == whole));
                }
                Err(error) => prop_assert_eq!(named_line(&error), Some(line), "{}", error),
            }
        }

        #[test]
        fn an_altered_field_is_named_by_its_line(events in a_chain(), which in any::<prop::sample::Index>(), field in prop::sample::select(FIELDS.to_vec()), value in any_json()) {
            let mut text = lines(&events);
            let index = which.index(text.len());
            let mut event: Value = serde_json::from_str(&text[index]).unwrap();
            prop_assume!(event[field] != value);
            event[field] = value;
            text[index] = event.to_string();
            let error = check(&text).unwrap_err();
            prop_assert_eq!(named_line(&error), Some(index + 1), "{}", error);
        }

        #[test]
        fn reordered_lines_are_named(events in a_chain_of(2), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
            let mut text = lines(&events);
            // Two different lines: `i`, and `j` somewhere after it.
            let i = a.index(text.len() - 1);
            let j = i + 1 + b.index(text.len() - 1 - i);
            text.swap(i, j);
            let error = check(&text).unwrap_err();
            // The first line is trusted as the start of the slice, so a swap with it shows on the second line.
            let expected = if i == 0 { 2 } else { i + 1 };
            prop_assert_eq!(named_line(&error), Some(expected), "{}", error);
        }
    }

    #[test]
    fn an_empty_export_verifies_with_no_head() {
        assert_eq!(check_export(&b"\n \n"[..]), Ok(CheckedExport { events: 0, head: None }));
    }

    #[test]
    fn an_event_after_the_largest_sequence_number_is_refused() {
        let events = chain(i64::MAX, 1, &[]);
        let last = &events[0];
        let next = NewEvent::new(None, EventKind::Routed, "system", json!({})).seal(
            i64::MIN,
            last.at,
            last.hash.clone(),
            None,
        );
        let error = check(&[lines(&events)[0].clone(), serde_json::to_string(&next).unwrap()]).unwrap_err();
        assert!(error.contains("(line 2)") && error.contains("no event can follow"), "{error}");
    }
}
