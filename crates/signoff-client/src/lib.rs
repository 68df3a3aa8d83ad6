//! A Rust client for the Signoff HTTP API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), signoff_client::ClientError> {
//! use signoff_client::Client;
//! use signoff_wire::NewRequest;
//! let client = Client::new("http://127.0.0.1:8700", "so_agent_...")?;
//! let created = client.create_request(&NewRequest::action("refund"), None).await?;
//! let decided = client.wait(created.request.id, 60).await?;
//! println!("{:?}", decided.status);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use signoff_wire::{
    CancelBody, DecisionBody, ErrorBody, ErrorCode, ErrorItem, Event, NewRequest, OutcomeBody, Page, Request, RequestId,
};
use std::time::Duration;

/// What a call can fail with. API errors carry the server's stable code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{code:?} ({status}): {message}")]
    Api { status: u16, code: ErrorCode, message: String, details: Vec<ErrorItem> },
    #[error("cannot reach Signoff: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The API error code, if the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A created (or, on an idempotent retry, found) request.
#[derive(Debug, Clone)]
pub struct CreatedRequest {
    pub request: Request,
    /// False when the server returned the original of an idempotent retry.
    pub created: bool,
}

/// Filters for [`Client::list_requests`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<String>,
    /// Only requests routed to this group (its queue).
    pub group: Option<String>,
    pub action: Option<String>,
    pub run_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A Signoff API client bound to one key. Cheap to clone. Its `Debug` shows the server, never the key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("key", &"***").finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the server at `base_url` (like `http://127.0.0.1:8700`) calling with `key`.
    pub fn new(base_url: &str, key: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build()?;
        Self::with_http(http, base_url, key)
    }

    /// A client sharing an existing `reqwest::Client` (its connection pool and settings).
    pub fn with_http(http: reqwest::Client, base_url: &str, key: &str) -> Result<Self, ClientError> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "the server URL `{base_url}` must start with http:// or https://"
            )));
        }
        Ok(Client { http, base: base_url.trim_end_matches('/').to_string(), key: key.to_string() })
    }

    fn call(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key)
    }

    async fn send<T: DeserializeOwned>(builder: RequestBuilder) -> Result<(StatusCode, T), ClientError> {
        let response = builder.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok((status, response.json().await?));
        }
        let bytes = response.bytes().await?;
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
                details: body.error.details,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: if status.is_server_error() { ErrorCode::Internal } else { ErrorCode::BadRequest },
                message: String::from_utf8_lossy(&bytes).into_owned(),
                details: Vec::new(),
            },
        })
    }

    /// Creates a request. With an `idempotency_key` (or `run_id` + `call_id`), retries return the original.
    pub async fn create_request(
        &self,
        request: &NewRequest,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedRequest, ClientError> {
        let mut builder = self.call(Method::POST, "/v1/requests").json(request);
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        let (status, request) = Self::send(builder).await?;
        Ok(CreatedRequest { request, created: status == StatusCode::CREATED })
    }

    pub async fn request(&self, id: RequestId) -> Result<Request, ClientError> {
        Ok(Self::send(self.call(Method::GET, &format!("/v1/requests/{id}"))).await?.1)
    }

    /// One page of requests, newest first.
    pub async fn list_requests(&self, query: &ListQuery) -> Result<Page<Request>, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        for (name, value) in
            [("status", &query.status), ("action", &query.action), ("run_id", &query.run_id), ("cursor", &query.cursor)]
        {
            if let Some(value) = value {
                params.push((name, value.clone()));
            }
        }
        if let Some(limit) = query.limit {
            params.push(("limit", limit.to_string()));
        }
        Ok(Self::send(self.call(Method::GET, "/v1/requests").query(&params)).await?.1)
    }

    /// Blocks until the request is decided or `timeout_s` (at most 300) passes; returns it either way.
    pub async fn wait(&self, id: RequestId, timeout_s: u64) -> Result<Request, ClientError> {
        let builder = self
            .call(Method::GET, &format!("/v1/requests/{id}/wait"))
            .query(&[("timeout_s", timeout_s)])
            .timeout(Duration::from_secs(timeout_s + 30));
        Ok(Self::send(builder).await?.1)
    }

    pub async fn decide(&self, id: RequestId, decision: &DecisionBody) -> Result<Request, ClientError> {
        Ok(Self::send(self.call(Method::POST, &format!("/v1/requests/{id}/decision")).json(decision)).await?.1)
    }

    pub async fn cancel(&self, id: RequestId, reason: Option<String>) -> Result<Request, ClientError> {
        let body = CancelBody { reason };
        Ok(Self::send(self.call(Method::POST, &format!("/v1/requests/{id}/cancel")).json(&body)).await?.1)
    }

    pub async fn report_outcome(&self, id: RequestId, outcome: &OutcomeBody) -> Result<Request, ClientError> {
        Ok(Self::send(self.call(Method::POST, &format!("/v1/requests/{id}/outcome")).json(outcome)).await?.1)
    }

    pub async fn events(&self, id: RequestId) -> Result<Vec<Event>, ClientError> {
        Ok(Self::send(self.call(Method::GET, &format!("/v1/requests/{id}/events"))).await?.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let client = Client::new("http://127.0.0.1:8700/", "so_agent_s3cret").unwrap();
        let printed = format!("{client:?} {client:#?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("http://127.0.0.1:8700"), "{printed}");
    }
}
