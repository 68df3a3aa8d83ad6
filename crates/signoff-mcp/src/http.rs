//! `/mcp` inside `signoff serve`: the tools over streamable HTTP, calling the service layer in process on behalf of the
//! API key that authenticated each HTTP call.
//!
//! Every call needs `Authorization: Bearer <key>`, checked like any API call (a missing, unknown or revoked key is
//! `401 unauthorized` with the API's error body), so the tools act with that key's role and see what it may see.
//! The endpoint is stateless (no `Mcp-Session-Id`), so any replica answers any call.

use crate::backend::{Connect, Failure, Signoff};
use crate::tools::Tools;
use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use rmcp::model::Extensions;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;
use signoff_server::service;
use signoff_server::{AppState, Caller};
use signoff_wire::{ApiKey, ErrorCode, NewRequest, Request as SignoffRequest, RequestId};
use std::sync::Arc;
use std::time::Duration;

/// The `/mcp` route, to serve beside the API (it sets no fallback). Without sessions there is no stream left open
/// between calls, and a call waiting at shutdown is answered at once (the waiters are), so shutdown waits for none.
pub fn router(state: AppState) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_allowed_hosts(allowed_hosts(&state.public_url))
        .with_max_request_body_bytes(signoff_server::MAX_BODY_BYTES);
    let tools = Tools::new(InProcess(state.clone()));
    let service =
        StreamableHttpService::new(move || Ok(tools.clone()), Arc::new(NeverSessionManager::default()), config);
    Router::new()
        .route_service(signoff_server::MCP_PATH, service)
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// The `Host` names `/mcp` answers to (a guard against DNS rebinding): loopback, and the host of the public URL.
fn allowed_hosts(public_url: &str) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    if let Some(host) = url::Url::parse(public_url).ok().and_then(|url| url.host_str().map(String::from)) {
        hosts.push(host.trim_start_matches('[').trim_end_matches(']').to_string());
    }
    hosts
}

/// Lets through only calls with a live API key, and hands the key to the tools in the request's extensions.
async fn authenticate(caller: Caller, mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(caller.0);
    next.run(request).await
}

/// The service layer of this process, for whichever key makes each call.
#[derive(Clone)]
pub struct InProcess(pub AppState);

impl Connect for InProcess {
    type Signoff = OnBehalf;

    fn connect(&self, extensions: &Extensions) -> Result<OnBehalf, Failure> {
        let key = extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<ApiKey>())
            .cloned()
            .ok_or_else(|| Failure::new(ErrorCode::Unauthorized, "this call carried no API key"))?;
        Ok(OnBehalf { state: self.0.clone(), key })
    }
}

/// The service layer's use cases, called as one API key.
pub struct OnBehalf {
    pub state: AppState,
    pub key: ApiKey,
}

impl Signoff for OnBehalf {
    async fn create(&self, new: NewRequest) -> Result<SignoffRequest, Failure> {
        let idempotency_key = new.run_call_key();
        Ok(service::create(&self.state, &self.key, new, idempotency_key).await?.request)
    }

    async fn request(&self, id: RequestId) -> Result<SignoffRequest, Failure> {
        Ok(service::visible(&self.state, &self.key, id).await?)
    }

    async fn wait(&self, id: RequestId, timeout: Duration) -> Result<SignoffRequest, Failure> {
        Ok(service::wait(&self.state, &self.key, id, timeout).await?)
    }

    async fn cancel(&self, id: RequestId, reason: Option<String>) -> Result<SignoffRequest, Failure> {
        Ok(service::cancel(&self.state, id, &self.key, reason).await?)
    }

    async fn report_outcome(&self, id: RequestId, ok: bool, detail: Option<Value>) -> Result<SignoffRequest, Failure> {
        Ok(service::report_outcome(&self.state, id, &self.key, ok, detail).await?)
    }
}
