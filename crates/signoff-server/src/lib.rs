//! Signoff's HTTP server: the `/v1` JSON API on axum, API-key auth, and long-poll waiters.
//!
//! [`app`] builds the router and [`serve`] runs it until a shutdown signal, so tests and the benchmark start
//! the real thing in-process.
#![forbid(unsafe_code)]

mod auth;
pub mod checkpoints;
mod error;
mod events;
mod extract;
mod metrics;
mod policy;
mod routes;
pub mod service;
mod waiters;
mod workers;

use axum::Router;
use signoff_store::Store;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use events::{Verification, verify as verify_audit_log};
pub use metrics::Metrics;
pub use policy::{ActivePolicy, PolicyCell};
pub use signoff_webhooks::RetryPolicy;
pub use waiters::Waiters;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The longest a `wait` call may block, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 300;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub waiters: Waiters,
    pub policy: PolicyCell,
    pub metrics: Metrics,
    pub callbacks: CallbackSettings,
    pub field_limits: service::FieldLimits,
    /// Signed audit checkpoints: written by a worker when set.
    pub checkpoints: Option<checkpoints::CheckpointSettings>,
}

/// How decision callbacks are checked and delivered.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// Allow callback URLs on private and loopback addresses (for development).
    pub allow_private: bool,
    /// Time allowed for one attempt.
    pub timeout: std::time::Duration,
    pub retry: RetryPolicy,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            allow_private: false,
            timeout: signoff_webhooks::DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }
}

impl AppState {
    /// State over `store`: the policy in force, and the waiter hub listening to the store's changes.
    pub async fn load(store: Arc<dyn Store>, callbacks: CallbackSettings) -> Result<Self, signoff_store::StoreError> {
        let waiters = Waiters::start(store.changes());
        let policy = PolicyCell::load(store.clone()).await?;
        let field_limits = service::FieldLimits::default();
        Ok(AppState { store, waiters, policy, metrics: Metrics::default(), callbacks, field_limits, checkpoints: None })
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Serves `state` on `listener` until `shutdown` resolves; then in-flight calls finish and waiters are answered.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let waiters = state.waiters.clone();
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    workers::spawn(&state, workers_stopped);
    // A make-service clones the built router per connection (an Arc); serving the `Router` itself would
    // rebuild its route table for every connection, about 10 KiB each, which adds up with idle waiters.
    axum::serve(listener, app(state).into_make_service())
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_workers.send(true);
            waiters.shut_down();
        })
        .await
}
