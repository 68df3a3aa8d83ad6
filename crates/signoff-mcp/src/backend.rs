//! What the tools need of Signoff ([`Signoff`]), where a tool call gets it from ([`Connect`]), and how a call fails
//! ([`Failure`]). The HTTP client implements both traits, for `signoff mcp` over stdio.

use rmcp::model::Extensions;
use serde_json::Value;
use signoff_client::{Client, ClientError};
use signoff_wire::{ErrorCode, ErrorDetail, NewRequest, OutcomeBody, Request, RequestId};
use std::future::Future;
use std::time::Duration;

/// A failed call, as the API reports it: a stable code, a message, and itemised problems where there are several.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(pub ErrorDetail);

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure(ErrorDetail { code, message: message.into(), details: Vec::new() })
    }
}

impl From<signoff_server::ApiError> for Failure {
    fn from(error: signoff_server::ApiError) -> Self {
        Failure(ErrorDetail { code: error.code, message: error.message, details: error.details })
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Api { code, message, details, .. } => Failure(ErrorDetail { code, message, details }),
            error @ ClientError::Transport(_) => Failure::new(ErrorCode::Unavailable, error.to_string()),
            error @ ClientError::Config(_) => Failure::new(ErrorCode::InvalidRequest, error.to_string()),
        }
    }
}

/// The calls the tools make, on behalf of one API key, with the API's rules and errors.
pub trait Signoff: Send + Sync {
    /// Creates a request; with `run_id` and `call_id` set, a retry returns the original.
    fn create(&self, new: NewRequest) -> impl Future<Output = Result<Request, Failure>> + Send;
    fn request(&self, id: RequestId) -> impl Future<Output = Result<Request, Failure>> + Send;
    /// Returns once the request is decided, or as it is after `timeout` (at most
    /// [`signoff_server::MAX_WAIT_SECONDS`]), or at once when the server is shutting down.
    fn wait(&self, id: RequestId, timeout: Duration) -> impl Future<Output = Result<Request, Failure>> + Send;
    fn cancel(&self, id: RequestId, reason: Option<String>) -> impl Future<Output = Result<Request, Failure>> + Send;
    fn report_outcome(
        &self,
        id: RequestId,
        ok: bool,
        detail: Option<Value>,
    ) -> impl Future<Output = Result<Request, Failure>> + Send;
}

/// Where a tool call's [`Signoff`] comes from: the caller's, found in the call's extensions (the HTTP request that
/// carried it, when there was one).
pub trait Connect: Send + Sync + 'static {
    type Signoff: Signoff;
    fn connect(&self, extensions: &Extensions) -> Result<Self::Signoff, Failure>;
}

/// `signoff mcp`: one client, one key, for every call.
impl Connect for Client {
    type Signoff = Client;

    fn connect(&self, _: &Extensions) -> Result<Client, Failure> {
        Ok(self.clone())
    }
}

impl Signoff for Client {
    async fn create(&self, new: NewRequest) -> Result<Request, Failure> {
        Ok(self.create_request(&new, None).await?.request)
    }

    async fn request(&self, id: RequestId) -> Result<Request, Failure> {
        Ok(Client::request(self, id).await?)
    }

    async fn wait(&self, id: RequestId, timeout: Duration) -> Result<Request, Failure> {
        Ok(Client::wait(self, id, timeout.as_secs()).await?)
    }

    async fn cancel(&self, id: RequestId, reason: Option<String>) -> Result<Request, Failure> {
        Ok(Client::cancel(self, id, reason).await?)
    }

    async fn report_outcome(&self, id: RequestId, ok: bool, detail: Option<Value>) -> Result<Request, Failure> {
        Ok(Client::report_outcome(self, id, &OutcomeBody { ok, detail }).await?)
    }
}
