//! The `signoff` binary: the server, the operator and approver CLI, the MCP server over stdio, and the benchmark.
#![forbid(unsafe_code)]

mod advice_commands;
mod audit_commands;
mod bench;
mod channel_commands;
mod client_commands;
mod config;
mod key_commands;
mod policy_commands;
mod stats_command;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::Config;
use std::path::PathBuf;

/// Untouched pages of an allocation stay out of the resident set: an idle long-poll waiter's 16 KiB of hyper
/// buffers cost about 6 KiB less RSS than under the system allocator (see docs/benchmarks.md, issue 14).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Signoff: human-in-the-loop approvals for AI agents.
#[derive(Debug, Parser)]
#[command(name = "signoff", version, about)]
struct Cli {
    /// A TOML configuration file (database_url, listen). SIGNOFF_* variables override it.
    #[arg(long, global = true, env = "SIGNOFF_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite at ./signoff.db unless configured otherwise).
    Serve,
    /// Create, list and revoke API keys, directly in the configured database.
    #[command(subcommand)]
    Keys(key_commands::KeysCommand),
    /// Check, apply and test policies.
    #[command(subcommand)]
    Policy(policy_commands::PolicyCommand),
    /// Check the notification channels' wiring.
    #[command(subcommand)]
    Channels(channel_commands::ChannelsCommand),
    /// Verify and export the hash-chained audit log.
    #[command(subcommand)]
    Audit(audit_commands::AuditCommand),
    /// Ask for approval (agent or admin key).
    Request(Box<client_commands::RequestArgs>),
    /// List pending requests.
    Pending(client_commands::PendingArgs),
    /// Show one request.
    Show(client_commands::ShowArgs),
    /// Approve a request (approver or admin key).
    Approve(client_commands::ApproveArgs),
    /// Reject a request; a comment saying why is required.
    Reject(client_commands::RejectArgs),
    /// Cancel a pending request (the requesting agent or an admin).
    Cancel(client_commands::CancelArgs),
    /// Approval statistics: volume, approval and edit rates, time to decide, load per approver (approver or admin
    /// key).
    Stats(stats_command::StatsArgs),
    /// List and revoke standing approvals.
    #[command(subcommand)]
    Grants(client_commands::GrantsCommand),
    /// Serve the MCP tools on standard input and output, for an agent to start; they call the server at SIGNOFF_URL
    /// with SIGNOFF_KEY.
    Mcp(client_commands::McpArgs),
    /// Which gates to relax or tighten, with drafts replayed over history (approver or admin key); `--apply ID`
    /// applies one (admin key).
    Advise(advice_commands::AdviseArgs),
    /// Measure create and decision throughput and waiter wake latency.
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve(Config::load(cli.config.as_deref())?).await,
        Command::Keys(command) => key_commands::run(command, &Config::load(cli.config.as_deref())?).await,
        Command::Policy(command) => policy_commands::run(command, &Config::load(cli.config.as_deref())?).await,
        Command::Audit(command) => audit_commands::run(command, &Config::load(cli.config.as_deref())?).await,
        Command::Channels(command) => channel_commands::run(command, &Config::load(cli.config.as_deref())?).await,
        Command::Request(args) => client_commands::request(*args).await,
        Command::Pending(args) => client_commands::pending(args).await,
        Command::Show(args) => client_commands::show(args).await,
        Command::Approve(args) => client_commands::approve(args).await,
        Command::Reject(args) => client_commands::reject(args).await,
        Command::Cancel(args) => client_commands::cancel(args).await,
        Command::Stats(args) => stats_command::stats(args).await,
        Command::Grants(command) => client_commands::grants(command).await,
        Command::Mcp(args) => client_commands::mcp(args).await,
        Command::Advise(args) => advice_commands::advise(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}

/// Lets one process hold as many connections (long-poll waiters) as the system allows.
pub fn raise_open_file_limit() {
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SIGNOFF_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    raise_open_file_limit();
    let _only_server = claim_sqlite_file(&config.database_url)?;
    let store = signoff_store::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", config::mask_password(&config.database_url)))?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    println!("signoff {} listening on http://{address}", env!("CARGO_PKG_VERSION"));
    println!("database: {}", config::mask_password(&config.database_url));
    if store.keys().await?.iter().all(|key| key.is_revoked()) {
        println!("no API keys yet; create the first admin key with:");
        println!(
            "  signoff keys create --role admin --name admin --approver YOUR_ID   # bound to you, so it may also decide"
        );
    }
    let metrics_listener = match &config.metrics.listen {
        Some(listen) => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen for metrics on {listen}"))?;
            println!("metrics on http://{}/metrics", listener.local_addr()?);
            Some(listener)
        }
        None => None,
    };
    let mut state = signoff_server::AppState::load(store, config.callbacks.settings()?).await?;
    state.limits = config.limits.limits()?;
    state.metrics_token = config.metrics.token.as_deref().map(signoff_server::MetricsToken::new);
    let checkpoints = config.audit.settings(&config.database_url)?;
    println!(
        "audit checkpoints: every {} events or {}, key {}{}",
        checkpoints.every_events,
        config.audit.checkpoint_every,
        checkpoints.key.key_id(),
        checkpoints.witness_url.as_ref().map(|url| format!(", witness {url}")).unwrap_or_default()
    );
    state.checkpoints = Some(checkpoints);
    configure_channels(&config, &mut state)?;
    let active = state.policy.current();
    match &active.record {
        Some(record) => println!(
            "policy: version {} ({} rules, sha256 {})",
            record.version,
            active.policy.rules().len(),
            &record.content_hash[..12]
        ),
        None => {
            println!("policy: none applied; the built-in default routes every request to any approver");
            println!("  apply one with: signoff policy apply policy.yaml");
        }
    }
    let dashboard = signoff_dashboard::router(state.clone(), config.dashboard.settings()?);
    let sign_in = if state.mailer.is_some() { "by email link, or with" } else { "with" };
    println!("dashboard: {}/ (sign in {sign_in} an approver key, or an admin key bound to you)", state.public_url);
    let pages = dashboard.merge(signoff_mcp::router(state.clone()));
    println!(
        "mcp: {}{} (streamable HTTP, with an API key as bearer token)",
        state.public_url,
        signoff_server::MCP_PATH
    );
    signoff_server::serve_with_metrics(listener, metrics_listener, state, pages, shutdown_signal()).await?;
    println!("signoff stopped");
    Ok(())
}

/// Turns on the channels the configuration names (Slack, Discord, Telegram, SMS, email), says which, and warns about
/// the ones the policy in force names but this server has not configured.
fn configure_channels(config: &Config, state: &mut signoff_server::AppState) -> anyhow::Result<()> {
    use signoff_domain::Channel;
    use signoff_server::notify::{DiscordSender, EmailSender, SlackSender, SmsSender, TelegramSender};
    use std::sync::Arc;
    state.public_url = config.public_url.clone();
    if let (Some(bot_token), Some(signing_secret)) = (&config.slack.bot_token, &config.slack.signing_secret) {
        let slack = signoff_notify::slack::SlackConfig {
            bot_token: bot_token.clone(),
            signing_secret: signing_secret.clone(),
            api_url: config.slack.api_url.clone(),
        };
        let client = signoff_notify::slack::SlackClient::new(&slack).map_err(|e| anyhow::anyhow!("slack: {e}"))?;
        state.senders.insert(Channel::Slack, Arc::new(SlackSender(client)));
        state.slack = Some(slack);
    }
    if let Some(discord) = config.discord.settings()? {
        let client =
            signoff_notify::discord::DiscordClient::new(&discord).map_err(|e| anyhow::anyhow!("discord: {e}"))?;
        state.senders.insert(Channel::Discord, Arc::new(DiscordSender(client)));
        state.discord = Some(discord);
    }
    if let (Some(smtp_url), Some(from)) = (&config.email.smtp_url, &config.email.from) {
        let email = signoff_notify::email::EmailConfig { smtp_url: smtp_url.clone(), from: from.clone() };
        let mailer = signoff_notify::email::Mailer::new(&email).map_err(|e| anyhow::anyhow!("email: {e}"))?;
        let signer = config.email.link_signer(&config.database_url)?;
        state.link_signer = Some(signer.clone());
        state.mailer = Some(mailer.clone());
        state.senders.insert(Channel::Email, Arc::new(EmailSender { mailer, signer }));
    }
    if let Some(twilio) = config.twilio.settings() {
        let client = signoff_notify::sms::TwilioClient::new(&twilio).map_err(|e| anyhow::anyhow!("sms: {e}"))?;
        // SMS links open the email channel's confirmation page, signed with the same link key.
        let signer = config.email.link_signer(&config.database_url)?;
        state.link_signer = Some(signer.clone());
        let store = state.store.clone();
        state.senders.insert(Channel::Sms, Arc::new(SmsSender { client, signer, store }));
        state.twilio = Some(twilio);
    }
    if let Some(telegram) = config.telegram.settings()? {
        let client =
            signoff_notify::telegram::TelegramClient::new(&telegram).map_err(|e| anyhow::anyhow!("telegram: {e}"))?;
        state.senders.insert(Channel::Telegram, Arc::new(TelegramSender(client)));
        state.telegram = Some(telegram);
    }
    let channels: Vec<String> = state.senders.channels().iter().map(|c| c.to_string()).collect();
    if channels.is_empty() {
        println!("channels: none configured (approvers use the API or the CLI); see docs/channels/");
    } else {
        println!("channels: {} (links point to {})", channels.join(", "), state.public_url);
    }
    for warning in config.unconfigured_channels(&state.policy.current().policy) {
        tracing::warn!("{warning}");
        println!("warning: {warning}");
    }
    Ok(())
}

/// One server per SQLite file: a second `signoff serve` on the same database would fight the first for the writer
/// lock and double the timers. The lock file is held (locked) for as long as the server runs; CLI commands do not
/// take it. PostgreSQL takes several replicas, so nothing is claimed there.
fn claim_sqlite_file(database_url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:")) else {
        return Ok(None);
    };
    let lock_path = format!("{path}.serve-lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open the lock file {lock_path}"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `signoff serve` is already running on {path} (it holds {lock_path}); one server per SQLite \
             database — stop it first, or use PostgreSQL for several replicas"
        ),
        Err(std::fs::TryLockError::Error(error)) => Err(error).with_context(|| format!("cannot lock {lock_path}")),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
