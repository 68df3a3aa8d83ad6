//! `signoff policy check | apply | test`: policy as code from the shell. `check` and `test --request` need
//! nothing but the file; `apply` and the replay of `test` work on the configured database directly.

use crate::config::Config;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use signoff_domain::{NewRequest, Request, Requester};
use signoff_policy::{Policy, parse_duration};
use signoff_server::replay::{replay_history, replay_record};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file without applying it: YAML and CEL errors with line and column, unknown groups, ...
    /// Warnings (e.g. a condition reading an `args` field the action's schema does not declare) follow an `ok`.
    Check { file: PathBuf },
    /// Store a policy file as the next version (atomically); running servers pick it up within a second.
    Apply { file: PathBuf },
    /// Replay stored requests against a draft and report which outcomes would change.
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The draft policy.
    draft: PathBuf,
    /// How far back to replay, e.g. `30d`, `12h`.
    #[arg(long, default_value = "30d")]
    since: String,
    /// Instead of replaying: evaluate this one request (a JSON request body) and explain the match.
    #[arg(long, value_name = "FILE.json")]
    request: Option<PathBuf>,
    /// With --request: the calling key's name, as the `agent` variable.
    #[arg(long, default_value = "cli")]
    agent: String,
    /// With --request: the request id, which seeds review sampling (to reproduce a stored request's draw).
    #[arg(long)]
    id: Option<signoff_domain::RequestId>,
}

fn read_policy(file: &Path) -> anyhow::Result<(String, Policy)> {
    let source = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match Policy::parse(&source) {
        Ok(policy) => Ok((source, policy)),
        Err(errors) => bail!("{} is not a valid policy:\n{errors}", file.display()),
    }
}

pub async fn run(command: PolicyCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check { file } => {
            let (_, policy) = read_policy(&file)?;
            println!(
                "{}: ok ({} rules, {} approvers, {} groups)",
                file.display(),
                policy.rules().len(),
                policy.approvers().len(),
                policy.groups().filter(|group| group.name != signoff_policy::EVERYONE).count()
            );
            // A valid policy may still hold likely mistakes: one line each, `file:line:column: warning: ...`.
            for warning in policy.warnings() {
                println!("{}:{}:{}: warning: {}", file.display(), warning.line, warning.column, warning.message);
            }
            for warning in config.unconfigured_channels(&policy) {
                println!("{}: warning: {warning}", file.display());
            }
        }
        PolicyCommand::Apply { file } => {
            let (source, policy) = read_policy(&file)?;
            let store = signoff_store::open(&config.database_url).await?;
            let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into()));
            let applied = store.apply_policy(&source, &policy.content_hash(), &actor).await?;
            if applied.created {
                println!("applied {} as policy version {}", file.display(), applied.policy.version);
            } else {
                println!("{} is already in force as version {}", file.display(), applied.policy.version);
            }
        }
        PolicyCommand::Test(args) => test(args, config).await?,
    }
    Ok(())
}

async fn test(args: TestArgs, config: &Config) -> anyhow::Result<()> {
    let (_, draft) = read_policy(&args.draft)?;
    if let Some(file) = args.request {
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let new: NewRequest = serde_json::from_str(&text).context("not a valid request body")?;
        let requester = Requester { key_id: String::new(), key_name: args.agent, responsible: None };
        let id = args.id.unwrap_or_default();
        let record = replay_record(Request::new(id, new, requester, signoff_store::now()));
        println!("{}", draft.explain(&record.input()));
        return Ok(());
    }
    let window = parse_duration(&args.since).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let since = signoff_store::now() - chrono::Duration::from_std(window)?;
    let store = signoff_store::open(&config.database_url).await?;
    let report = replay_history(store.as_ref(), &draft, since).await?;
    println!("replaying {} requests from the last {} against {}", report.total, args.since, args.draft.display());
    print!("{report}");
    Ok(())
}
