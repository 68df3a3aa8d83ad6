//! Signed checkpoints of the audit chain: `{seq, head_hash, at}` signed with Ed25519, written every N events or M
//! minutes by a worker (and on demand by `signoff audit checkpoint`), served at `GET /v1/audit/checkpoints`, and
//! POSTed to an optional witness that keeps a copy outside the database. `signoff audit verify --checkpoints FILE`
//! holds the chain against them (see `signoff_domain::checkpoint` for what that proves).

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use signoff_domain::Role;
use signoff_domain::checkpoint::{CheckpointKey, SignedCheckpoint};
use signoff_store::{Store, StoreError};
use std::time::Duration;
use tokio::sync::watch;

/// How often the worker looks at the chain's head.
const TICK: Duration = Duration::from_secs(1);
/// Attempts to hand one checkpoint to the witness.
const WITNESS_ATTEMPTS: u32 = 3;

/// When and how checkpoints are written.
#[derive(Clone)]
pub struct CheckpointSettings {
    pub key: CheckpointKey,
    /// Write one once this many events were appended since the last.
    pub every_events: u64,
    /// Write one this long after the last, if any event was appended since.
    pub every: Duration,
    /// POST each checkpoint here (JSON), so a copy lives outside the database.
    pub witness_url: Option<String>,
}

impl std::fmt::Debug for CheckpointSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSettings")
            .field("key_id", &self.key.key_id())
            .field("every_events", &self.every_events)
            .field("every", &self.every)
            .field("witness_url", &self.witness_url)
            .finish()
    }
}

impl CheckpointSettings {
    /// The defaults: every 1,000 events or 10 minutes, no witness.
    pub fn new(key: CheckpointKey) -> Self {
        CheckpointSettings { key, every_events: 1_000, every: Duration::from_secs(600), witness_url: None }
    }
}

/// Signs the chain's current head and stores the checkpoint; `None` when the log is still empty.
pub async fn write_checkpoint(store: &dyn Store, key: &CheckpointKey) -> Result<Option<SignedCheckpoint>, StoreError> {
    let Some((seq, head_hash)) = store.chain_head().await? else { return Ok(None) };
    let checkpoint = key.sign(seq, &head_hash, signoff_store::now());
    store.save_checkpoint(&checkpoint).await?;
    Ok(Some(checkpoint))
}

/// `GET /v1/audit/checkpoints` (admin): every checkpoint, oldest first.
pub async fn list_route(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SignedCheckpoint>>, ApiError> {
    caller.require(&[Role::Admin], "read the audit checkpoints")?;
    Ok(Json(state.store.checkpoints().await?))
}

/// The worker: writes a checkpoint when enough events or enough time have passed since the last one.
pub(crate) async fn run(state: AppState, settings: CheckpointSettings, mut shutdown: watch::Receiver<bool>) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().ok();
    let mut last = match state.store.checkpoints().await {
        Ok(all) => all.last().map(|c| (c.seq, c.at)),
        Err(error) => {
            tracing::warn!(%error, "cannot read the stored checkpoints");
            None
        }
    };
    let started = signoff_store::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        let head = match state.store.chain_head().await {
            Ok(Some((seq, _))) => seq,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, "cannot read the chain head");
                continue;
            }
        };
        let (last_seq, last_at) = last.unwrap_or((0, started));
        let since = (signoff_store::now() - last_at).to_std().unwrap_or_default();
        let due = head.saturating_sub(last_seq) as u64 >= settings.every_events
            || (head > last_seq && since >= settings.every);
        if !due {
            continue;
        }
        match write_checkpoint(state.store.as_ref(), &settings.key).await {
            Ok(Some(checkpoint)) => {
                tracing::info!(seq = checkpoint.seq, key_id = %checkpoint.key_id, "audit checkpoint written");
                last = Some((checkpoint.seq, checkpoint.at));
                if let (Some(url), Some(http)) = (&settings.witness_url, &http) {
                    tokio::spawn(send_to_witness(http.clone(), url.clone(), checkpoint));
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot write an audit checkpoint"),
        }
    }
}

/// POSTs a checkpoint to the witness, retrying a few times; a witness that stays down is logged, never fatal.
async fn send_to_witness(http: reqwest::Client, url: String, checkpoint: SignedCheckpoint) {
    for attempt in 1..=WITNESS_ATTEMPTS {
        match http.post(&url).json(&checkpoint).send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::warn!(status = %response.status(), attempt, "the audit witness refused a checkpoint")
            }
            Err(error) => tracing::warn!(%error, attempt, "cannot reach the audit witness"),
        }
        tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
    }
    tracing::error!(seq = checkpoint.seq, "the audit witness did not take the checkpoint; it stays in the database");
}
