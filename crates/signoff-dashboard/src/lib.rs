//! Signoff's web dashboard: the pages people use to see what waits for them and decide it, served by the same
//! binary at `/` beside the `/v1` API.
//!
//! Pages are rendered on the server (askama templates, every value escaped) and work without JavaScript; one small
//! script adds local times, keyboard shortcuts and live updates of the queue. The script and the style sheet are
//! embedded in the binary and served from `/assets/`; the Content-Security-Policy allows nothing else. Decisions go
//! through `signoff_server::service::decide` with [`Channel::Dashboard`](signoff_domain::Channel::Dashboard): this
//! crate renders and signs people in, and never re-implements a rule.
#![forbid(unsafe_code)]

mod admin;
mod admin_audit;
mod admin_keys;
mod admin_policy;
mod advice;
mod assets;
mod batch;
mod charts;
mod expired;
mod grants;
mod history;
mod lists;
mod live;
mod page;
mod queue;
mod request_page;
mod review;
mod session;
mod sign_in;
mod stats;
mod view;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use signoff_server::{AppState, FailureLimiter};
use std::time::Duration;

pub use session::{SESSION_COOKIE, start_session};

/// How the dashboard signs people in.
#[derive(Debug, Clone)]
pub struct DashboardSettings {
    /// How long a session lasts from sign-in. Default 12 hours.
    pub session_ttl: Duration,
    /// Failed sign-ins allowed per client address at once; then one more per [`Self::sign_in_refill`].
    pub sign_in_burst: u32,
    pub sign_in_refill: Duration,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            session_ttl: Duration::from_secs(12 * 60 * 60),
            sign_in_burst: 10,
            sign_in_refill: Duration::from_secs(30),
        }
    }
}

/// What every dashboard handler shares.
#[derive(Clone)]
pub struct Dashboard {
    pub app: AppState,
    pub settings: DashboardSettings,
    sign_in_failures: FailureLimiter,
}

impl Dashboard {
    pub fn new(app: AppState, settings: DashboardSettings) -> Dashboard {
        let sign_in_failures = FailureLimiter::new(settings.sign_in_burst, settings.sign_in_refill);
        Dashboard { app, settings, sign_in_failures }
    }

    /// Whether cookies must be `Secure`: the server is reached over https.
    fn secure_cookies(&self) -> bool {
        self.app.public_url.starts_with("https://")
    }
}

/// The largest form body accepted (an edited set of arguments fits well within it).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The dashboard's routes, to pass to `signoff_server::serve_with_metrics` beside the API.
pub fn router(app: AppState, settings: DashboardSettings) -> Router {
    Router::new()
        .route("/", get(queue::show))
        .route("/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/sign-in/email", post(sign_in::email_link))
        .route("/sign-in/link", get(sign_in::link_page).post(sign_in::use_link))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/batch", get(batch::show).post(batch::decide))
        .route("/requests/{id}", get(request_page::show))
        .route("/requests/{id}/decide", post(request_page::decide))
        .route("/requests/{id}/answer", post(request_page::answer))
        .route("/requests/{id}/flag", post(request_page::flag))
        // The follow-up pages: expired requests, sampled reports to review, and what was decided.
        .route("/expired", get(expired::show))
        .route("/review", get(review::show))
        .route("/review/{id}", post(review::decide))
        .route("/history", get(history::show))
        .route("/stats", get(stats::show))
        .route("/advice", get(advice::show))
        .route("/advice/apply", post(advice::apply))
        .route("/grants", get(grants::show))
        .route("/grants/{id}/revoke", post(grants::revoke))
        .route("/live", get(live::stream))
        // The admin pages: only for sessions signed in with an admin key bound to a person.
        .route("/admin", get(admin::index))
        .route("/admin/policy", get(admin_policy::show))
        .route("/admin/policy/test", post(admin_policy::test))
        .route("/admin/keys", get(admin_keys::list).post(admin_keys::create))
        .route("/admin/keys/{id}/revoke", get(admin_keys::confirm_revoke).post(admin_keys::revoke))
        .route("/admin/audit", get(admin_audit::show))
        .route("/admin/audit/verify", get(admin_audit::verify))
        .route("/admin/audit/export", get(admin_audit::export))
        .route("/assets/{name}", get(assets::serve))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(Dashboard::new(app, settings))
}
