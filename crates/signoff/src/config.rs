//! Configuration, layered: built-in defaults, then an optional TOML file (`--config`), then `SIGNOFF_*` variables.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::Path;

/// Everything the binary reads at start.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://PATH` (the default, `sqlite://./signoff.db`) or `postgres://USER@HOST/DB`.
    pub database_url: String,
    /// Address the server listens on.
    pub listen: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { database_url: "sqlite://./signoff.db".into(), listen: "127.0.0.1:8700".into() }
    }
}

impl std::fmt::Debug for Config {
    /// The database URL may carry a password: mask it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &mask_password(&self.database_url))
            .field("listen", &self.listen)
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
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<Config>("listn = \"x\"").is_err());
    }
}
