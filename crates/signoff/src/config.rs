//! Configuration, layered: built-in defaults, then an optional TOML file (`--config`), then `SIGNOFF_*` variables.

use anyhow::{Context, bail};
use serde::Deserialize;
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
    /// Signed audit checkpoints.
    pub audit: AuditConfig,
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
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_string() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl Config {
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
        if let Some(seed) = var("SIGNOFF_CHECKPOINT_KEY") {
            self.audit.checkpoint_key = Some(seed);
        }
        if let Some(file) = var("SIGNOFF_CHECKPOINT_KEY_FILE") {
            self.audit.checkpoint_key_file = Some(file);
        }
        if let Some(url) = var("SIGNOFF_AUDIT_WITNESS_URL") {
            self.audit.witness_url = Some(url);
        }
        if self.database_url.trim().is_empty() {
            bail!("the database URL is empty: set SIGNOFF_DATABASE_URL or database_url in the config file");
        }
        Ok(())
    }
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
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<Config>("listn = \"x\"").is_err());
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
