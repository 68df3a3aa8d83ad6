//! Signoff's HTTP server: the `/v1` JSON API on axum, API-key auth, and long-poll waiters.
//!
//! [`app`] builds the router and [`serve`] runs it until a shutdown signal, so tests and the benchmark start
//! the real thing in-process.
#![forbid(unsafe_code)]

pub mod advice;
mod auth;
mod channels;
pub mod checkpoints;
mod digests;
mod error;
mod events;
mod extract;
pub mod insights;
mod limits;
mod metrics;
pub mod notify;
mod observe;
mod policy;
pub mod replay;
mod routes;
pub mod service;
mod waiters;
mod workers;

use axum::Router;
use signoff_store::Store;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use auth::Caller;
pub use error::ApiError;
pub use events::{
    Verification, export as export_audit_log, follow as follow_events, json_lines, verify as verify_audit_log,
};
pub use limits::{FailureLimiter, Limits, MetricsToken};
pub use metrics::Metrics;
pub use policy::{ActivePolicy, PolicyCell};
pub use signoff_webhooks::RetryPolicy;
pub use waiters::Waiters;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The longest a `wait` call may block, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 300;
/// Where the MCP endpoint is served (by `signoff-mcp`, which the binary mounts beside the API). Calls to it are exempt
/// from the request timeout, like `wait`.
pub const MCP_PATH: &str = "/mcp";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub waiters: Waiters,
    pub policy: PolicyCell,
    pub metrics: Metrics,
    pub callbacks: CallbackSettings,
    /// Signed audit checkpoints: written by a worker when set.
    pub checkpoints: Option<checkpoints::CheckpointSettings>,
    /// Where people reach this server (`SIGNOFF_PUBLIC_URL`, no trailing slash): links in messages point here.
    pub public_url: String,
    /// The channels that notify people, with their senders; none by default.
    pub senders: notify::Senders,
    /// Timeouts, the connection cap, rate limits and page sizes; [`Limits::default`] unless set before serving.
    pub limits: Limits,
    /// When set, `GET /metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<MetricsToken>,
    /// Slack's bot token and signing secret: Slack's inbound routes answer only when set.
    pub slack: Option<signoff_notify::slack::SlackConfig>,
    /// Discord's bot token and application public key: Discord's interactions endpoint answers only when set.
    pub discord: Option<signoff_notify::discord::DiscordConfig>,
    /// Signs and checks email action links; `None`: email links answer that they are not configured.
    pub link_signer: Option<signoff_notify::links::LinkSigner>,
    /// Sends email (the channel's asks go through its sender; the dashboard mails sign-in links with it); `None`:
    /// email is not configured.
    pub mailer: Option<signoff_notify::email::Mailer>,
    /// Twilio's account and auth token: the inbound SMS route answers only when set (and checks signatures with it).
    pub twilio: Option<signoff_notify::sms::TwilioConfig>,
    /// The Telegram bot's token and webhook secret: the Telegram webhook answers only when set.
    pub telegram: Option<signoff_notify::telegram::TelegramConfig>,
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
    /// State over `store`: the policy in force, and the waiter hub listening to the store's changes (woken in the
    /// task that committed each change).
    pub async fn load(store: Arc<dyn Store>, callbacks: CallbackSettings) -> Result<Self, signoff_store::StoreError> {
        let waiters = Waiters::listening(|listener| store.listen(listener));
        let policy = PolicyCell::load(store.clone()).await?;
        Ok(AppState {
            store,
            waiters,
            policy,
            metrics: Metrics::default(),
            callbacks,
            limits: Limits::default(),
            metrics_token: None,
            checkpoints: None,
            public_url: "http://127.0.0.1:8700".into(),
            senders: notify::Senders::default(),
            slack: None,
            discord: None,
            link_signer: None,
            mailer: None,
            twilio: None,
            telegram: None,
        })
    }
}

/// The whole HTTP application, `/metrics` included, with the per-call limits of `state.limits`.
pub fn app(state: AppState) -> Router {
    Router::new().fallback_service(limits::service(state, limits::MetricsRoute::Served, Router::new()))
}

/// Serves `state` on `listener` until `shutdown` resolves; then in-flight calls finish and waiters are answered.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_metrics(listener, None, state, Router::new(), shutdown).await
}

/// Like [`serve`], with `pages` served beside the API under the same limits (the dashboard, which this crate does
/// not know: the binary composes it). `pages` must not set a fallback; unknown paths get the API's `404`. With
/// `metrics_listener`, `/metrics` is served only there (every other path answers 404 on it) and `listener` answers
/// 404 for `/metrics`.
pub async fn serve_with_metrics(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    pages: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let waiters = state.waiters.clone();
    let limits = state.limits.clone();
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    workers::spawn(&state, workers_stopped);
    // Each router is built once; connections clone it (an Arc). Building one per connection would cost about
    // 10 KiB each, which adds up with idle waiters.
    let metrics = metrics_listener
        .map(|listener| (listener, limits::service(state.clone(), limits::MetricsRoute::Only, Router::new())));
    let main_metrics = if metrics.is_some() { limits::MetricsRoute::Hidden } else { limits::MetricsRoute::Served };
    let main = limits::service(state, main_metrics, pages);
    limits::serve(listener, main, metrics, &limits, async move {
        shutdown.await;
        let _ = stop_workers.send(true);
        waiters.shut_down();
    })
    .await;
    Ok(())
}
