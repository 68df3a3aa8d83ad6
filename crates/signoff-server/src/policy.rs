//! The policy in force: loaded at start, swapped at once when a version is applied through this server, and
//! picked up within a second when one is applied elsewhere (the CLI, another replica).

use signoff_domain::PolicyVersion;
use signoff_policy::Policy;
use signoff_store::{Store, StoreError};
use signoff_wire::PolicyView;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often a server checks whether another process applied a new policy version.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// A compiled policy and the stored version it came from (`None`: the built-in default).
#[derive(Debug)]
pub struct ActivePolicy {
    pub policy: Policy,
    pub record: Option<PolicyVersion>,
}

impl ActivePolicy {
    /// 0 for the built-in default.
    pub fn version(&self) -> i64 {
        self.record.as_ref().map_or(0, |record| record.version)
    }

    pub fn view(&self) -> PolicyView {
        PolicyView {
            version: self.version(),
            builtin: self.record.is_none(),
            content_hash: self.policy.content_hash(),
            created_at: self.record.as_ref().map(|r| r.created_at),
            created_by: self.record.as_ref().map(|r| r.created_by.clone()),
            rules: self.policy.rules().len(),
            source: self.policy.source().to_string(),
        }
    }
}

/// The shared, swappable policy. Cheap to clone.
#[derive(Clone)]
pub struct PolicyCell {
    active: Arc<RwLock<Arc<ActivePolicy>>>,
}

impl PolicyCell {
    /// Loads the version in force from `store`, and keeps following it.
    pub async fn load(store: Arc<dyn Store>) -> Result<PolicyCell, StoreError> {
        let active = compile(store.current_policy().await?)?;
        let cell = PolicyCell { active: Arc::new(RwLock::new(Arc::new(active))) };
        let follower = cell.clone();
        tokio::spawn(async move { follower.follow(store).await });
        Ok(cell)
    }

    pub fn current(&self) -> Arc<ActivePolicy> {
        self.active.read().expect("policy lock").clone()
    }

    /// Puts a stored version in force, unless a newer one already is.
    pub fn install(&self, policy: Policy, record: PolicyVersion) {
        let mut active = self.active.write().expect("policy lock");
        if active.version() < record.version {
            *active = Arc::new(ActivePolicy { policy, record: Some(record) });
        }
    }

    async fn follow(&self, store: Arc<dyn Store>) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let stored = match store.current_policy_version().await {
                Ok(version) => version,
                Err(error) => {
                    tracing::warn!(%error, "cannot check the policy version");
                    continue;
                }
            };
            if stored <= self.current().version() {
                continue;
            }
            match store.current_policy().await.map(compile) {
                Ok(Ok(ActivePolicy { policy, record: Some(record) })) => {
                    tracing::info!(version = record.version, "policy version applied elsewhere is now in force");
                    self.install(policy, record);
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) | Err(error) => tracing::error!(%error, "cannot load the new policy version"),
            }
        }
    }
}

fn compile(record: Option<PolicyVersion>) -> Result<ActivePolicy, StoreError> {
    match record {
        None => Ok(ActivePolicy { policy: Policy::builtin_default(), record: None }),
        Some(record) => match Policy::parse(&record.source) {
            Ok(policy) => Ok(ActivePolicy { policy, record: Some(record) }),
            Err(errors) => Err(StoreError::other(format!(
                "stored policy version {} does not parse any more:\n{errors}",
                record.version
            ))),
        },
    }
}
