//! Configuration, layered: built-in defaults, then an optional TOML file (`--config`), then `SIGNOFF_*` variables.

use anyhow::{Context, bail};
use serde::Deserialize;
use signoff_domain::Channel;
use signoff_domain::checkpoint::CheckpointKey;
use std::path::Path;

/// Everything the binary reads at start.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://PATH` (the default, `sqlite://./signoff.db`) or `postgres://USER@HOST/DB`.
    pub database_url: String,
    /// Address the server listens on.
    pub listen: String,
    /// Decision callbacks.
    pub callbacks: CallbacksConfig,
    /// Limits on abuse: timeouts, the connection cap, rate limits, page sizes.
    pub limits: LimitsConfig,
    /// Who may read `/metrics`, and where.
    pub metrics: MetricsConfig,
    /// Signed audit checkpoints.
    pub audit: AuditConfig,
    /// Where people reach this server, e.g. `https://signoff.example.com`: links in messages point here.
    pub public_url: String,
    /// The Slack channel (unset: off).
    pub slack: SlackConfig,
    /// The email channel (unset: off).
    pub email: EmailConfig,
    /// The Discord channel (unset: off).
    pub discord: DiscordConfig,
    /// The SMS channel, through Twilio (unset: off).
    pub twilio: TwilioConfig,
    /// The Telegram channel (unset: off).
    pub telegram: TelegramConfig,
    /// The web dashboard's sessions.
    pub dashboard: DashboardConfig,
}

/// `[dashboard]` in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// How long a dashboard session lasts from sign-in, e.g. `12h` (`SIGNOFF_DASHBOARD_SESSION_TTL`).
    pub session_ttl: String,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig { session_ttl: "12h".into() }
    }
}

impl DashboardConfig {
    pub fn settings(&self) -> anyhow::Result<signoff_dashboard::DashboardSettings> {
        let session_ttl = signoff_policy::parse_duration(&self.session_ttl)
            .map_err(|e| anyhow::anyhow!("dashboard.session_ttl: {e}"))?;
        if session_ttl.is_zero() {
            bail!("dashboard.session_ttl must be longer than zero");
        }
        Ok(signoff_dashboard::DashboardSettings { session_ttl, ..signoff_dashboard::DashboardSettings::default() })
    }
}

/// `[slack]` in the config file: on when both the bot token and the signing secret are set.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// The bot's `xoxb-` token (`SIGNOFF_SLACK_BOT_TOKEN`).
    pub bot_token: Option<String>,
    /// The app's signing secret, which signs every interaction Slack sends (`SIGNOFF_SLACK_SIGNING_SECRET`).
    pub signing_secret: Option<String>,
    /// The Web API's base URL (`SIGNOFF_SLACK_API_URL`).
    pub api_url: String,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig { bot_token: None, signing_secret: None, api_url: "https://slack.com/api".into() }
    }
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "***"))
            .field("signing_secret", &self.signing_secret.as_ref().map(|_| "***"))
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// `[discord]` in the config file: on when both the bot token and the application's public key are set.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    /// The bot's token (`SIGNOFF_DISCORD_BOT_TOKEN`).
    pub bot_token: Option<String>,
    /// The application's public key, 64 hex digits, which checks every interaction Discord sends
    /// (`SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY`).
    pub application_public_key: Option<String>,
    /// The REST API's base URL (`SIGNOFF_DISCORD_API_URL`).
    pub api_url: String,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            bot_token: None,
            application_public_key: None,
            api_url: signoff_notify::discord::DEFAULT_API_URL.into(),
        }
    }
}

impl std::fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "***"))
            .field("application_public_key", &self.application_public_key)
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// `[twilio]` in the config file: SMS is on when the account SID, the auth token and the sending number are set.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    /// `AC…` (`SIGNOFF_TWILIO_ACCOUNT_SID`).
    pub account_sid: Option<String>,
    /// Authenticates calls to Twilio and signs the webhooks it sends (`SIGNOFF_TWILIO_AUTH_TOKEN`).
    pub auth_token: Option<String>,
    /// The sending number, E.164 (`SIGNOFF_TWILIO_FROM`).
    pub from: Option<String>,
    /// The REST API's base URL (`SIGNOFF_TWILIO_API_URL`).
    pub api_url: String,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig { account_sid: None, auth_token: None, from: None, api_url: "https://api.twilio.com".into() }
    }
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl DiscordConfig {
    /// The adapter's settings: `None` when Discord is off; an error when only one of the token and the key is set,
    /// or the key is not one.
    pub fn settings(&self) -> anyhow::Result<Option<signoff_notify::discord::DiscordConfig>> {
        match (&self.bot_token, &self.application_public_key) {
            (None, None) => Ok(None),
            (Some(bot_token), Some(key)) => {
                let public_key = signoff_notify::discord::PublicKey::from_hex(key)
                    .map_err(|e| anyhow::anyhow!("SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY: {e}"))?;
                let api_url = self.api_url.clone();
                Ok(Some(signoff_notify::discord::DiscordConfig { bot_token: bot_token.clone(), public_key, api_url }))
            }
            (Some(_), None) => bail!(
                "discord: SIGNOFF_DISCORD_BOT_TOKEN is set without SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY; set both, \
                 or neither"
            ),
            (None, Some(_)) => bail!(
                "discord: SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY is set without SIGNOFF_DISCORD_BOT_TOKEN; set both, \
                 or neither"
            ),
        }
    }
}

impl TwilioConfig {
    /// The adapter's settings, when SMS is configured.
    pub fn settings(&self) -> Option<signoff_notify::sms::TwilioConfig> {
        let (Some(account_sid), Some(auth_token), Some(from)) = (&self.account_sid, &self.auth_token, &self.from)
        else {
            return None;
        };
        Some(signoff_notify::sms::TwilioConfig {
            account_sid: account_sid.clone(),
            auth_token: auth_token.clone(),
            from: from.clone(),
            api_url: self.api_url.clone(),
        })
    }
}

/// `[telegram]` in the config file: on when the bot token and the webhook secret are set.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramConfig {
    /// The bot's token from BotFather, `123456:ABC…` (`SIGNOFF_TELEGRAM_BOT_TOKEN`).
    pub bot_token: Option<String>,
    /// The secret token Telegram sends with every update: 1–256 of `A-Z a-z 0-9 _ -`
    /// (`SIGNOFF_TELEGRAM_WEBHOOK_SECRET`).
    pub webhook_secret: Option<String>,
    /// The Bot API's base URL (`SIGNOFF_TELEGRAM_API_URL`).
    pub api_url: String,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig { bot_token: None, webhook_secret: None, api_url: "https://api.telegram.org".into() }
    }
}

impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "***"))
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "***"))
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl TelegramConfig {
    /// The adapter's settings when Telegram is configured (`None` when it is not); a webhook secret Telegram would
    /// refuse is an error.
    pub fn settings(&self) -> anyhow::Result<Option<signoff_notify::telegram::TelegramConfig>> {
        let (Some(bot_token), Some(webhook_secret)) = (&self.bot_token, &self.webhook_secret) else {
            return Ok(None);
        };
        if !signoff_notify::telegram::valid_secret(webhook_secret) {
            bail!("telegram.webhook_secret must be 1 to 256 of A-Z, a-z, 0-9, `_` and `-` (Telegram's rule)");
        }
        Ok(Some(signoff_notify::telegram::TelegramConfig {
            bot_token: bot_token.clone(),
            webhook_secret: webhook_secret.clone(),
            api_url: self.api_url.clone(),
        }))
    }
}

/// `[email]` in the config file: on when the SMTP URL and the sender are set.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:2525`, `smtp://host:587?tls=required` (STARTTLS) or `smtps://user:pass@host:465`
    /// (`SIGNOFF_SMTP_URL`).
    pub smtp_url: Option<String>,
    /// The sender, e.g. `Signoff <signoff@example.com>` (`SIGNOFF_EMAIL_FROM`).
    pub from: Option<String>,
    /// The key that signs action links, base64 (`SIGNOFF_LINK_SECRET`). Unset: generated once into
    /// `link_secret_file` (default beside the SQLite database, or `./signoff-link.key` for PostgreSQL).
    pub link_secret: Option<String>,
    pub link_secret_file: Option<String>,
}

impl EmailConfig {
    /// The key that signs action links: configured, or read from its file, generated there on first use.
    pub fn link_signer(&self, database_url: &str) -> anyhow::Result<signoff_notify::links::LinkSigner> {
        use signoff_notify::links::LinkSigner;
        let parse = |secret: &str, from: &str| {
            LinkSigner::from_base64(secret.trim())
                .map_err(|e| anyhow::anyhow!("the link secret in {from} is not valid: {e}"))
        };
        if let Some(secret) = &self.link_secret {
            return parse(secret, "email.link_secret");
        }
        let file: std::path::PathBuf = match &self.link_secret_file {
            Some(file) => file.into(),
            None => match database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:")) {
                Some(path) => format!("{path}.link-key").into(),
                None => "signoff-link.key".into(),
            },
        };
        match std::fs::read_to_string(&file) {
            Ok(secret) => parse(&secret, &file.display().to_string()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let secret = LinkSigner::generate_key();
                write_secret_file(&file, &secret)
                    .with_context(|| format!("cannot write the link secret to {}", file.display()))?;
                parse(&secret, &file.display().to_string())
            }
            Err(error) => Err(error).with_context(|| format!("cannot read {}", file.display())),
        }
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("smtp_url", &self.smtp_url.as_deref().map(mask_password))
            .field("from", &self.from)
            .field("link_secret", &self.link_secret.as_ref().map(|_| "***"))
            .field("link_secret_file", &self.link_secret_file)
            .finish()
    }
}

/// `[limits]` in the config file; each default is [`signoff_server::Limits::default`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Time allowed for a request's head, e.g. `5s`.
    pub header_timeout: String,
    /// Time allowed for a request's whole body, e.g. `30s`.
    pub body_timeout: String,
    /// How long a keep-alive connection may sit idle, e.g. `60s`.
    pub idle_timeout: String,
    /// Time allowed for an answer, on every route but `wait`, the event stream and `/mcp`, e.g. `30s`.
    pub request_timeout: String,
    /// Open connections at most; over it, new connections are answered `503 too_many_connections`.
    pub max_connections: usize,
    /// Calls per second per API key (burst: one second's worth); 0 disables.
    pub rate_limit: u32,
    /// Calls per second per client address for calls without an accepted key; 0 disables.
    pub ip_rate_limit: u32,
    /// A list page or event-stream read stops adding items past this many bytes of JSON.
    pub page_bytes: usize,
    /// Caps on a new request's fields: `args`, `context` and `state` in bytes of JSON, `reasoning` in bytes,
    /// `summary` in characters.
    pub max_args_bytes: usize,
    pub max_context_bytes: usize,
    pub max_state_bytes: usize,
    pub max_summary_chars: usize,
    pub max_reasoning_bytes: usize,
}

/// Formats a duration the way the config file writes them (`90s`, `5m`), for the defaults.
fn seconds(duration: std::time::Duration) -> String {
    format!("{}s", duration.as_secs())
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let limits = signoff_server::Limits::default();
        LimitsConfig {
            header_timeout: seconds(limits.header_timeout),
            body_timeout: seconds(limits.body_timeout),
            idle_timeout: seconds(limits.idle_timeout),
            request_timeout: seconds(limits.request_timeout),
            max_connections: limits.max_connections,
            rate_limit: limits.rate_limit,
            ip_rate_limit: limits.ip_rate_limit,
            page_bytes: limits.page_bytes,
            max_args_bytes: limits.fields.args_bytes,
            max_context_bytes: limits.fields.context_bytes,
            max_state_bytes: limits.fields.state_bytes,
            max_summary_chars: limits.fields.summary_chars,
            max_reasoning_bytes: limits.fields.reasoning_bytes,
        }
    }
}

impl LimitsConfig {
    /// The limits the server runs with.
    pub fn limits(&self) -> anyhow::Result<signoff_server::Limits> {
        let duration = |name: &str, text: &str| {
            let duration = signoff_policy::parse_duration(text).map_err(|e| anyhow::anyhow!("limits.{name}: {e}"))?;
            if duration.is_zero() {
                bail!("limits.{name} must be longer than 0s");
            }
            Ok(duration)
        };
        if self.max_connections == 0 {
            bail!("limits.max_connections must be at least 1");
        }
        if self.page_bytes < 1024 {
            bail!("limits.page_bytes must be at least 1024");
        }
        Ok(signoff_server::Limits {
            header_timeout: duration("header_timeout", &self.header_timeout)?,
            body_timeout: duration("body_timeout", &self.body_timeout)?,
            idle_timeout: duration("idle_timeout", &self.idle_timeout)?,
            request_timeout: duration("request_timeout", &self.request_timeout)?,
            max_connections: self.max_connections,
            rate_limit: self.rate_limit,
            ip_rate_limit: self.ip_rate_limit,
            page_bytes: self.page_bytes,
            fields: signoff_server::service::FieldLimits {
                args_bytes: self.max_args_bytes,
                context_bytes: self.max_context_bytes,
                state_bytes: self.max_state_bytes,
                summary_chars: self.max_summary_chars,
                reasoning_bytes: self.max_reasoning_bytes,
            },
        })
    }
}

/// `[metrics]` in the config file.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// When set, `GET /metrics` requires `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// When set, `/metrics` is served only on this address (and the API's listener answers 404 for it).
    pub listen: Option<String>,
}

impl std::fmt::Debug for MetricsConfig {
    /// The token is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("listen", &self.listen)
            .finish()
    }
}

/// `[audit]` in the config file: signed checkpoints of the event chain.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The Ed25519 signing key's 32-byte seed, base64 (`SIGNOFF_CHECKPOINT_KEY`). Unset: the key in
    /// `checkpoint_key_file`, generated there on first use.
    pub checkpoint_key: Option<String>,
    /// Where the generated key is kept. Default: beside the SQLite database (`signoff.db.checkpoint-key`), or
    /// `./signoff-checkpoint.key` for PostgreSQL.
    pub checkpoint_key_file: Option<String>,
    /// Write a checkpoint once this many events were appended since the last one.
    pub checkpoint_every_events: u64,
    /// And at least this often while events are appended, e.g. `10m`.
    pub checkpoint_every: String,
    /// POST every checkpoint here (JSON) so a copy lives outside the database (`SIGNOFF_AUDIT_WITNESS_URL`).
    pub witness_url: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_key: None,
            checkpoint_key_file: None,
            checkpoint_every_events: 1_000,
            checkpoint_every: "10m".into(),
            witness_url: None,
        }
    }
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("checkpoint_key", &self.checkpoint_key.as_ref().map(|_| "***"))
            .field("checkpoint_key_file", &self.checkpoint_key_file)
            .field("checkpoint_every_events", &self.checkpoint_every_events)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("witness_url", &self.witness_url)
            .finish()
    }
}

impl AuditConfig {
    /// The file the generated key lives in, for the database at `database_url`.
    pub fn key_file(&self, database_url: &str) -> std::path::PathBuf {
        if let Some(file) = &self.checkpoint_key_file {
            return file.into();
        }
        match database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:")) {
            Some(path) => format!("{path}.checkpoint-key").into(),
            None => "signoff-checkpoint.key".into(),
        }
    }

    /// The signing key: configured, or read from its file; with `create`, generated into the file when missing.
    pub fn key(&self, database_url: &str, create: bool) -> anyhow::Result<Option<CheckpointKey>> {
        if let Some(seed) = &self.checkpoint_key {
            return Ok(Some(CheckpointKey::from_seed_base64(seed).context("audit.checkpoint_key")?));
        }
        let file = self.key_file(database_url);
        match std::fs::read_to_string(&file) {
            Ok(seed) => Ok(Some(
                CheckpointKey::from_seed_base64(&seed)
                    .with_context(|| format!("the checkpoint key in {} is not valid", file.display()))?,
            )),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && create => {
                let key = CheckpointKey::generate();
                write_secret_file(&file, &key.to_seed_base64())
                    .with_context(|| format!("cannot write the checkpoint key to {}", file.display()))?;
                Ok(Some(key))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", file.display())),
        }
    }

    /// The checkpoint writer's settings (the key is generated on first use).
    pub fn settings(&self, database_url: &str) -> anyhow::Result<signoff_server::checkpoints::CheckpointSettings> {
        let key = self.key(database_url, true)?.expect("created when missing");
        let every = signoff_policy::parse_duration(&self.checkpoint_every)
            .map_err(|e| anyhow::anyhow!("audit.checkpoint_every: {e}"))?;
        if self.checkpoint_every_events == 0 {
            bail!("audit.checkpoint_every_events must be at least 1");
        }
        Ok(signoff_server::checkpoints::CheckpointSettings {
            key,
            every_events: self.checkpoint_every_events,
            every,
            witness_url: self.witness_url.clone(),
        })
    }
}

/// Writes a secret readable by its owner only.
fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// `[callbacks]` in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbacksConfig {
    /// Allow callback URLs on private and loopback addresses (development only).
    pub allow_private: bool,
    /// How long a failing callback is retried, e.g. `3d`.
    pub retry_for: String,
    /// The wait before the first retry, e.g. `5s`; later waits grow to minutes, then hours.
    pub first_retry: String,
    /// Time allowed for one attempt, e.g. `15s`.
    pub timeout: String,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        CallbacksConfig {
            allow_private: false,
            retry_for: "3d".into(),
            first_retry: "5s".into(),
            timeout: "15s".into(),
        }
    }
}

impl CallbacksConfig {
    /// The settings the server runs with.
    pub fn settings(&self) -> anyhow::Result<signoff_server::CallbackSettings> {
        let duration = |name: &str, text: &str| {
            signoff_policy::parse_duration(text).map_err(|e| anyhow::anyhow!("callbacks.{name}: {e}"))
        };
        let retry = signoff_server::RetryPolicy {
            first_retry: duration("first_retry", &self.first_retry)?,
            max_age: duration("retry_for", &self.retry_for)?,
            ..signoff_server::RetryPolicy::default()
        };
        Ok(signoff_server::CallbackSettings {
            allow_private: self.allow_private,
            timeout: duration("timeout", &self.timeout)?,
            retry,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://./signoff.db".into(),
            listen: "127.0.0.1:8700".into(),
            callbacks: CallbacksConfig::default(),
            audit: AuditConfig::default(),
            limits: LimitsConfig::default(),
            metrics: MetricsConfig::default(),
            public_url: "http://127.0.0.1:8700".into(),
            slack: SlackConfig::default(),
            email: EmailConfig::default(),
            discord: DiscordConfig::default(),
            twilio: TwilioConfig::default(),
            telegram: TelegramConfig::default(),
            dashboard: DashboardConfig::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    /// The database URL may carry a password: mask it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &mask_password(&self.database_url))
            .field("listen", &self.listen)
            .field("callbacks", &self.callbacks)
            .field("audit", &self.audit)
            .field("public_url", &self.public_url)
            .field("slack", &self.slack)
            .field("email", &self.email)
            .field("discord", &self.discord)
            .field("twilio", &self.twilio)
            .field("telegram", &self.telegram)
            .field("dashboard", &self.dashboard)
            .field("limits", &self.limits)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// The database URL with its password masked, in every form PostgreSQL takes: `postgres://user:secret@host/db`
/// (or `postgresql://`) → `postgres://user:***@host/db`; a `password=` query parameter → `password=***`; and a
/// key=value connection string `host=h password=secret` (quoted or not) → `host=h password=***`.
pub fn mask_password(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (before_query, query) = match rest.find(['?', '#']) {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            let authority_masked = match before_query.rfind('@') {
                Some(at) => {
                    let (credentials, host) = before_query.split_at(at);
                    match credentials.split_once(':') {
                        Some((user, _)) => format!("{user}:***{host}"),
                        None => before_query.to_string(),
                    }
                }
                None => before_query.to_string(),
            };
            format!("{scheme}://{authority_masked}{}", mask_query_passwords(query))
        }
        None => mask_keyword_passwords(url),
    }
}

/// Whether a connection parameter name carries a password (`password`, `sslpassword`, any case).
fn is_password_key(key: &str) -> bool {
    key.trim().to_ascii_lowercase().ends_with("password")
}

/// `?sslmode=require&password=secret` → `?sslmode=require&password=***`.
fn mask_query_passwords(query: &str) -> String {
    let Some(lead) = query.chars().next() else { return String::new() };
    let pairs: Vec<String> = query[1..]
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_password_key(key) => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{lead}{}", pairs.join("&"))
}

/// `host=h password='se cret' dbname=d` → `host=h password=*** dbname=d`; quoted values may hold spaces and
/// `\'` escapes.
fn mask_keyword_passwords(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq].trim_end().rfind(char::is_whitespace).map_or(0, |at| at + 1);
        let key = &rest[key_start..eq];
        let value_start = eq + 1 + (rest[eq + 1..].len() - rest[eq + 1..].trim_start().len());
        let value = &rest[value_start..];
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut escaped = false;
            let end = quoted
                .char_indices()
                .find(|&(_, c)| {
                    let closes = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    closes
                })
                .map_or(quoted.len(), |(at, _)| at + 1);
            1 + end
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        masked.push_str(&rest[..value_start]);
        if is_password_key(key) {
            masked.push_str("***");
        } else {
            masked.push_str(&value[..value_len]);
        }
        rest = &value[value_len..];
    }
    masked.push_str(rest);
    masked
}

impl Config {
    /// The notification channels this configuration turns on (the dashboard needs none).
    pub fn configured_channels(&self) -> std::collections::BTreeSet<Channel> {
        let mut channels = std::collections::BTreeSet::new();
        if self.slack.bot_token.is_some() && self.slack.signing_secret.is_some() {
            channels.insert(Channel::Slack);
        }
        if self.email.smtp_url.is_some() && self.email.from.is_some() {
            channels.insert(Channel::Email);
        }
        if self.discord.bot_token.is_some() && self.discord.application_public_key.is_some() {
            channels.insert(Channel::Discord);
        }
        if self.twilio.settings().is_some() {
            channels.insert(Channel::Sms);
        }
        if self.telegram.bot_token.is_some() && self.telegram.webhook_secret.is_some() {
            channels.insert(Channel::Telegram);
        }
        channels
    }

    /// One line for each channel a group of `policy` notifies on that this configuration does not turn on: its
    /// members are not told there (never an error: the dashboard still shows their queue).
    pub fn unconfigured_channels(&self, policy: &signoff_policy::Policy) -> Vec<String> {
        let configured = self.configured_channels();
        let mut missing: std::collections::BTreeMap<Channel, Vec<&str>> = std::collections::BTreeMap::new();
        for group in policy.groups() {
            for &channel in group.notify.iter().filter(|c| **c != Channel::Dashboard && !configured.contains(c)) {
                missing.entry(channel).or_default().push(&group.name);
            }
        }
        missing
            .into_iter()
            .map(|(channel, groups)| {
                format!(
                    "groups {} notify on {channel}, which this server has not configured; they are not told there",
                    groups.join(", ")
                )
            })
            .collect()
    }

    /// Loads defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(url) = var("SIGNOFF_DATABASE_URL") {
            self.database_url = url;
        }
        if let Some(listen) = var("SIGNOFF_LISTEN") {
            self.listen = listen;
        }
        if let Some(allow) = var("SIGNOFF_ALLOW_PRIVATE_CALLBACKS") {
            self.callbacks.allow_private = match allow.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                other => bail!("SIGNOFF_ALLOW_PRIVATE_CALLBACKS must be true or false, not `{other}`"),
            };
        }
        let text_settings: [(&str, &mut Option<String>); 11] = [
            ("SIGNOFF_SLACK_BOT_TOKEN", &mut self.slack.bot_token),
            ("SIGNOFF_SLACK_SIGNING_SECRET", &mut self.slack.signing_secret),
            ("SIGNOFF_SMTP_URL", &mut self.email.smtp_url),
            ("SIGNOFF_EMAIL_FROM", &mut self.email.from),
            ("SIGNOFF_LINK_SECRET", &mut self.email.link_secret),
            ("SIGNOFF_LINK_SECRET_FILE", &mut self.email.link_secret_file),
            ("SIGNOFF_TWILIO_ACCOUNT_SID", &mut self.twilio.account_sid),
            ("SIGNOFF_TWILIO_AUTH_TOKEN", &mut self.twilio.auth_token),
            ("SIGNOFF_TWILIO_FROM", &mut self.twilio.from),
            ("SIGNOFF_TELEGRAM_BOT_TOKEN", &mut self.telegram.bot_token),
            ("SIGNOFF_TELEGRAM_WEBHOOK_SECRET", &mut self.telegram.webhook_secret),
        ];
        for (name, field) in text_settings {
            if let Some(value) = var(name).filter(|value| !value.trim().is_empty()) {
                *field = Some(value);
            }
        }
        if let Some(url) = var("SIGNOFF_SLACK_API_URL") {
            self.slack.api_url = url;
        }
        for (name, field) in [
            ("SIGNOFF_DISCORD_BOT_TOKEN", &mut self.discord.bot_token),
            ("SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY", &mut self.discord.application_public_key),
        ] {
            if let Some(value) = var(name).filter(|value| !value.trim().is_empty()) {
                *field = Some(value);
            }
        }
        if let Some(url) = var("SIGNOFF_DISCORD_API_URL") {
            self.discord.api_url = url;
        }
        self.discord.settings()?;
        if let Some(url) = var("SIGNOFF_TWILIO_API_URL") {
            self.twilio.api_url = url;
        }
        if let Some(url) = var("SIGNOFF_TELEGRAM_API_URL") {
            self.telegram.api_url = url;
        }
        if let Some(ttl) = var("SIGNOFF_DASHBOARD_SESSION_TTL") {
            self.dashboard.session_ttl = ttl;
        }
        if let Some(url) = var("SIGNOFF_PUBLIC_URL") {
            self.public_url = url;
        }
        self.public_url = self.public_url.trim_end_matches('/').to_string();
        if let Some(seed) = var("SIGNOFF_CHECKPOINT_KEY") {
            self.audit.checkpoint_key = Some(seed);
        }
        if let Some(file) = var("SIGNOFF_CHECKPOINT_KEY_FILE") {
            self.audit.checkpoint_key_file = Some(file);
        }
        if let Some(url) = var("SIGNOFF_AUDIT_WITNESS_URL") {
            self.audit.witness_url = Some(url);
        }
        let limits = &mut self.limits;
        for (name, field) in [
            ("SIGNOFF_HEADER_TIMEOUT", &mut limits.header_timeout),
            ("SIGNOFF_BODY_TIMEOUT", &mut limits.body_timeout),
            ("SIGNOFF_IDLE_TIMEOUT", &mut limits.idle_timeout),
            ("SIGNOFF_REQUEST_TIMEOUT", &mut limits.request_timeout),
        ] {
            if let Some(value) = var(name) {
                *field = value;
            }
        }
        if let Some(value) = var("SIGNOFF_MAX_CONNECTIONS") {
            limits.max_connections = number("SIGNOFF_MAX_CONNECTIONS", &value)?;
        }
        if let Some(value) = var("SIGNOFF_RATE_LIMIT") {
            limits.rate_limit = number("SIGNOFF_RATE_LIMIT", &value)?;
        }
        if let Some(value) = var("SIGNOFF_IP_RATE_LIMIT") {
            limits.ip_rate_limit = number("SIGNOFF_IP_RATE_LIMIT", &value)?;
        }
        if let Some(token) = var("SIGNOFF_METRICS_TOKEN") {
            self.metrics.token = Some(token);
        }
        if let Some(listen) = var("SIGNOFF_METRICS_LISTEN") {
            self.metrics.listen = Some(listen);
        }
        if self.metrics.token.as_deref().is_some_and(|token| token.trim().is_empty()) {
            bail!("the metrics token is empty: unset SIGNOFF_METRICS_TOKEN, or give it a value");
        }
        self.limits.limits()?;
        if self.database_url.trim().is_empty() {
            bail!("the database URL is empty: set SIGNOFF_DATABASE_URL or database_url in the config file");
        }
        Ok(())
    }
}

/// A whole number from an environment variable.
fn number<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T> {
    value.trim().parse().map_err(|_| anyhow::anyhow!("{name} must be a whole number, not `{value}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let mut config: Config = toml::from_str("listen = \"0.0.0.0:9000\"").unwrap();
        assert_eq!(config.database_url, "sqlite://./signoff.db");
        config.apply_env(|name| (name == "SIGNOFF_DATABASE_URL").then(|| "postgres://u:pw@h/db".to_string())).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.database_url, "postgres://u:pw@h/db");
        assert!(!format!("{config:?}").contains("pw"));
    }

    #[test]
    fn callbacks_are_configured_by_file_and_environment() {
        let mut config: Config = toml::from_str("[callbacks]\nretry_for = \"1h\"\nfirst_retry = \"2s\"").unwrap();
        assert!(!config.callbacks.allow_private);
        config.apply_env(|name| (name == "SIGNOFF_ALLOW_PRIVATE_CALLBACKS").then(|| "true".to_string())).unwrap();
        let settings = config.callbacks.settings().unwrap();
        assert!(settings.allow_private);
        assert_eq!(settings.retry.max_age, std::time::Duration::from_secs(3600));
        assert_eq!(settings.retry.first_retry, std::time::Duration::from_secs(2));
        assert!(config.apply_env(|_| Some("maybe".to_string())).is_err());
    }

    #[test]
    fn discord_is_on_with_both_its_token_and_a_valid_public_key() {
        // The public key of RFC 8032's first Ed25519 test vector.
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".to_string();
        let env = |token: bool, public_key: Option<&str>| {
            let public_key = public_key.map(str::to_string);
            move |name: &str| match name {
                "SIGNOFF_DISCORD_BOT_TOKEN" if token => Some("MTk4.bot-token".to_string()),
                "SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY" => public_key.clone(),
                "SIGNOFF_DISCORD_API_URL" => Some("http://127.0.0.1:1/api/v10".to_string()),
                _ => None,
            }
        };
        let mut config = Config::default();
        config.apply_env(env(true, Some(&key))).unwrap();
        assert!(config.configured_channels().contains(&Channel::Discord));
        let settings = config.discord.settings().unwrap().unwrap();
        assert_eq!(
            (settings.public_key.to_hex(), settings.api_url.as_str()),
            (key.clone(), "http://127.0.0.1:1/api/v10")
        );
        assert!(!format!("{config:?}").contains("MTk4"), "the bot token is never printed");

        let only_token = Config::default().apply_env(env(true, None)).unwrap_err().to_string();
        assert!(only_token.contains("without SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY"), "{only_token}");
        let only_key = Config::default().apply_env(env(false, Some(&key))).unwrap_err().to_string();
        assert!(only_key.contains("without SIGNOFF_DISCORD_BOT_TOKEN"), "{only_key}");
        let bad_key = Config::default().apply_env(env(true, Some("not-hex"))).unwrap_err().to_string();
        assert!(bad_key.contains("SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY: the Discord public key is not hexadecimal"));
        assert!(!Config::default().configured_channels().contains(&Channel::Discord));
        let file: Config =
            toml::from_str(&format!("[discord]\nbot_token = \"t\"\napplication_public_key = \"{key}\"")).unwrap();
        assert_eq!(file.discord.settings().unwrap().unwrap().api_url, "https://discord.com/api/v10");
        assert!(toml::from_str::<Config>("[discord]\npublic_key = \"x\"").is_err());
    }

    #[test]
    fn twilio_is_configured_by_file_and_environment_and_debug_masks_its_token() {
        let mut config: Config = toml::from_str("[twilio]\naccount_sid = \"AC1\"\nfrom = \"+15005550006\"").unwrap();
        assert_eq!(config.twilio.settings(), None, "no auth token yet");
        assert!(!config.configured_channels().contains(&Channel::Sms));
        config
            .apply_env(|name| match name {
                "SIGNOFF_TWILIO_AUTH_TOKEN" => Some("secret-token".into()),
                "SIGNOFF_TWILIO_API_URL" => Some("http://127.0.0.1:9".into()),
                _ => None,
            })
            .unwrap();
        let settings = config.twilio.settings().expect("configured");
        assert_eq!((settings.account_sid.as_str(), settings.api_url.as_str()), ("AC1", "http://127.0.0.1:9"));
        assert!(config.configured_channels().contains(&Channel::Sms));
        assert!(!format!("{config:?}").contains("secret-token"));
        assert_eq!(Config::default().twilio.api_url, "https://api.twilio.com");
    }

    #[test]
    fn telegram_is_configured_by_file_and_environment_and_its_secret_checked() {
        let mut config: Config = toml::from_str("[telegram]\nbot_token = \"123:abc\"").unwrap();
        assert!(config.telegram.settings().unwrap().is_none(), "no webhook secret yet");
        config
            .apply_env(|name| match name {
                "SIGNOFF_TELEGRAM_WEBHOOK_SECRET" => Some("s3cret_token-1".into()),
                "SIGNOFF_TELEGRAM_API_URL" => Some("http://127.0.0.1:9".into()),
                _ => None,
            })
            .unwrap();
        let settings = config.telegram.settings().unwrap().expect("configured");
        assert_eq!((settings.bot_id(), settings.api_url.as_str()), (Some(123), "http://127.0.0.1:9"));
        assert!(config.configured_channels().contains(&Channel::Telegram));
        let shown = format!("{config:?}");
        assert!(!shown.contains("123:abc") && !shown.contains("s3cret_token-1"), "{shown}");
        config.telegram.webhook_secret = Some("has spaces".into());
        assert!(config.telegram.settings().unwrap_err().to_string().contains("webhook_secret"));
        assert_eq!(Config::default().telegram.api_url, "https://api.telegram.org");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<Config>("listn = \"x\"").is_err());
    }

    #[test]
    fn limits_default_to_the_documented_values_and_are_set_by_file_and_environment() {
        let defaults = Config::default().limits.limits().unwrap();
        assert_eq!(defaults, signoff_server::Limits::default());
        assert_eq!(defaults.header_timeout, std::time::Duration::from_secs(5));
        assert_eq!((defaults.max_connections, defaults.rate_limit), (10_000, 100));

        let mut config: Config =
            toml::from_str("[limits]\nheader_timeout = \"2s\"\nrate_limit = 7\npage_bytes = 4096").unwrap();
        let env = |name: &str| match name {
            "SIGNOFF_REQUEST_TIMEOUT" => Some("1m".to_string()),
            "SIGNOFF_MAX_CONNECTIONS" => Some("50".to_string()),
            "SIGNOFF_IP_RATE_LIMIT" => Some("0".to_string()),
            "SIGNOFF_METRICS_TOKEN" => Some("tok3n".to_string()),
            "SIGNOFF_METRICS_LISTEN" => Some("127.0.0.1:9100".to_string()),
            _ => None,
        };
        config.apply_env(env).unwrap();
        let limits = config.limits.limits().unwrap();
        assert_eq!(limits.header_timeout, std::time::Duration::from_secs(2));
        assert_eq!(limits.request_timeout, std::time::Duration::from_secs(60));
        assert_eq!((limits.rate_limit, limits.ip_rate_limit, limits.max_connections), (7, 0, 50));
        assert_eq!(limits.page_bytes, 4096);
        assert_eq!(config.metrics.listen.as_deref(), Some("127.0.0.1:9100"));
        assert!(!format!("{config:?}").contains("tok3n"), "the metrics token is never printed");

        for (name, value) in [
            ("SIGNOFF_RATE_LIMIT", "lots"),
            ("SIGNOFF_HEADER_TIMEOUT", "0s"),
            ("SIGNOFF_BODY_TIMEOUT", "soon"),
            ("SIGNOFF_MAX_CONNECTIONS", "0"),
            ("SIGNOFF_METRICS_TOKEN", " "),
        ] {
            let result = Config::default().apply_env(|n| (n == name).then(|| value.to_string()));
            assert!(result.is_err(), "{name}={value} is refused");
        }
        assert!(toml::from_str::<Config>("[limits]\nrate_limt = 1").is_err());
    }

    #[test]
    fn database_passwords_are_masked_in_every_url_form() {
        for (url, masked) in [
            ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
            ("postgresql://u:pw@h:5432/db?sslmode=require", "postgresql://u:***@h:5432/db?sslmode=require"),
            ("postgres://u:p@ss/w@h/db", "postgres://u:***@h/db"),
            ("postgres://u@h/db?sslmode=require&password=pw", "postgres://u@h/db?sslmode=require&password=***"),
            ("postgres://h/db?PASSWORD=pw&user=u", "postgres://h/db?PASSWORD=***&user=u"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite://./signoff.db", "sqlite://./signoff.db"),
            ("host=h user=u password=pw dbname=db", "host=h user=u password=*** dbname=db"),
            ("host=h password = pw dbname=db", "host=h password = *** dbname=db"),
            ("host=h password='p w\\'x' dbname=db", "host=h password=*** dbname=db"),
            ("password=pw", "password=***"),
            ("host=h sslpassword=pw", "host=h sslpassword=***"),
        ] {
            let got = mask_password(url);
            assert_eq!(got, masked, "{url}");
            assert!(!got.contains("pw") && !got.contains("p w"), "{url} → {got}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    //! Property tests: the config file and its durations never panic the loader, whatever the text.

    use super::*;
    use proptest::prelude::*;

    /// `default` cases, or `PROPTEST_CASES` when it is set.
    fn config(default: u32) -> ProptestConfig {
        let config = match std::env::var_os("PROPTEST_CASES") {
            Some(_) => ProptestConfig::default(),
            None => ProptestConfig::with_cases(default),
        };
        ProptestConfig { failure_persistence: None, ..config }
    }

    fn duration_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{0,12}",
            "[0-9dhms]{0,12}",
            Just("365d".to_string()),
            Just("366d".to_string()),
            Just("18446744073709551615s".to_string()),
            Just("213503982334601d".to_string()),
            Just("0s".to_string()),
        ]
    }

    fn toml_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            duration_text().prop_map(|s| format!("{s:?}")),
            Just("true".to_string()),
            Just("9223372036854775808".to_string()),
            Just("-1".to_string()),
            Just("1e999".to_string()),
            Just("nan".to_string()),
            Just("1979-05-27T07:32:00Z".to_string()),
            Just("'''x'''".to_string()),
            Just("\"\\u0000\"".to_string()),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec(inner, 0..3).prop_map(|v| {
                    let pairs: Vec<String> = v.into_iter().enumerate().map(|(i, v)| format!("k{i} = {v}")).collect();
                    format!("{{ {} }}", pairs.join(", "))
                }),
            ]
        })
    }

    fn document() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "database_url",
            "listen",
            "allow_private",
            "retry_for",
            "first_retry",
            "timeout",
            "[callbacks]",
            "[[callbacks]]",
            "[database_url]",
            "callbacks.timeout",
            "bogus",
        ]);
        prop::collection::vec((key, toml_value()), 0..6).prop_map(|lines| {
            lines
                .into_iter()
                .map(|(key, value)| if key.starts_with('[') { key.to_string() } else { format!("{key} = {value}") })
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// Loads `text` as the config file would be, then the callback settings; never panics.
    fn load(text: &str) {
        if let Ok(config) = toml::from_str::<Config>(text) {
            let _ = config.callbacks.settings();
        }
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            load(&text);
        }

        #[test]
        fn toml_like_text_never_panics(text in "[a-z_\\[\\]{}=\"'., \n0-9]{0,200}") {
            load(&text);
        }

        #[test]
        fn plausible_documents_never_panic(text in document()) {
            load(&text);
        }

        #[test]
        fn callback_durations_are_checked_and_named(retry_for in duration_text(), first_retry in duration_text(), timeout in duration_text()) {
            let callbacks = CallbacksConfig { allow_private: false, retry_for, first_retry, timeout };
            let parsed = [&callbacks.first_retry, &callbacks.retry_for, &callbacks.timeout]
                .map(|text| signoff_policy::parse_duration(text));
            match callbacks.settings() {
                Ok(settings) => {
                    prop_assert_eq!(Ok(settings.retry.first_retry), parsed[0].clone());
                    prop_assert_eq!(Ok(settings.retry.max_age), parsed[1].clone());
                    prop_assert_eq!(Ok(settings.timeout), parsed[2].clone());
                }
                Err(error) => {
                    let names = ["first_retry", "retry_for", "timeout"];
                    let first_bad = parsed.iter().position(Result::is_err).expect("an error comes from a bad duration");
                    prop_assert!(error.to_string().starts_with(&format!("callbacks.{}: ", names[first_bad])), "{}", error);
                }
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        for deep in [
            format!("listen = {}{}", "[".repeat(10_000), "]".repeat(10_000)),
            format!("listen = {}1{}", "{ a = ".repeat(10_000), " }".repeat(10_000)),
            format!("{} = 1", vec!["a"; 10_000].join(".")),
        ] {
            assert!(toml::from_str::<Config>(&deep).is_err());
        }
    }
}
