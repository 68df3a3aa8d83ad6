//! A Rust client for the whole Signoff HTTP API: requests (create, read, list, wait, decide, answer, cancel, report),
//! their events, deliveries and notifications, the live event stream, the audit log, the policy, on-call rotations,
//! approval statistics, advice, health and metrics. It depends only on the wire types (`signoff-wire`); see
//! `README.md` for an example.
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
use signoff_wire::advice::{AdviceReport, AppliedAdvice, ApplyAdvice};
use signoff_wire::{
    AnswerBody, CancelBody, ConfirmBody, DecisionBody, DeliveryView, ErrorBody, ErrorCode, ErrorItem, Event, FlagBody,
    Grant, GrantList, Health, NewRequest, NotificationView, OnCallView, OutcomeBody, Page, PolicyVersionSummary,
    PolicyView, Request, RequestId, SignedCheckpoint, Verification,
    stats::{GroupBy, StatsReport},
};
use std::collections::VecDeque;
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

/// What [`Client::stats`] asks for; each absent field takes the server's default.
#[derive(Debug, Clone, Default)]
pub struct StatsQuery {
    /// A duration back from now (`30d`, `12h`) or an RFC 3339 time; default `30d`.
    pub since: Option<String>,
    pub by: Option<GroupBy>,
    /// A duration (`10s`): approvals faster than this count as very fast; default `10s`.
    pub fast_under: Option<String>,
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
        Err(Self::error(response).await)
    }

    /// The API error a failed response carries (or, from something that is not Signoff, its status and text).
    async fn error(response: reqwest::Response) -> ClientError {
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => return error.into(),
        };
        match serde_json::from_slice::<ErrorBody>(&bytes) {
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
        }
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
        for (name, value) in [
            ("status", &query.status),
            ("group", &query.group),
            ("action", &query.action),
            ("run_id", &query.run_id),
            ("cursor", &query.cursor),
        ] {
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

    /// Standing approvals live now; with `all`, expired and revoked ones too (`GET /v1/grants`).
    pub async fn grants(&self, all: bool) -> Result<Vec<Grant>, ClientError> {
        let path = if all { "/v1/grants?all=true" } else { "/v1/grants" };
        Ok(Self::send::<GrantList>(self.call(Method::GET, path)).await?.1.items)
    }

    /// Revokes a standing approval (`DELETE /v1/grants/{id}`); answers it as it now stands.
    pub async fn revoke_grant(&self, id: &str) -> Result<Grant, ClientError> {
        let path = format!("/v1/grants/{}", utf8_percent_encode_segment(id));
        Ok(Self::send(self.call(Method::DELETE, &path)).await?.1)
    }

    pub async fn cancel(&self, id: RequestId, reason: Option<String>) -> Result<Request, ClientError> {
        let body = CancelBody { reason };
        Ok(Self::send(self.call(Method::POST, &format!("/v1/requests/{id}/cancel")).json(&body)).await?.1)
    }

    pub async fn report_outcome(&self, id: RequestId, outcome: &OutcomeBody) -> Result<Request, ClientError> {
        Ok(Self::send(self.call(Method::POST, &format!("/v1/requests/{id}/outcome")).json(outcome)).await?.1)
    }

    /// Answers a question (`kind: question`) as the key's person; the first answer ends it.
    pub async fn answer(&self, id: RequestId, text: &str) -> Result<Request, ClientError> {
        let body = AnswerBody { text: text.to_string() };
        Ok(Self::send(self.call(Method::POST, &format!("/v1/requests/{id}/answer")).json(&body)).await?.1)
    }

    /// Confirms a pending sampled review as the key's person: it is approved, with `review.verdict: confirmed`.
    pub async fn confirm(&self, id: RequestId, comment: Option<String>) -> Result<Request, ClientError> {
        let body = ConfirmBody { comment };
        Ok(Self::send(self.call(Method::POST, &format!("/v1/requests/{id}/confirm")).json(&body)).await?.1)
    }

    /// Flags what the agent did as the key's person: a pending sampled review is rejected; a request policy let
    /// through keeps its decision and records a miss. The agent gets a `request.flagged` callback.
    pub async fn flag(&self, id: RequestId, flag: &FlagBody) -> Result<Request, ClientError> {
        Ok(Self::send(self.call(Method::POST, &format!("/v1/requests/{id}/flag")).json(flag)).await?.1)
    }

    /// The request's timeline: its audit events, oldest first.
    pub async fn events(&self, id: RequestId) -> Result<Vec<Event>, ClientError> {
        Ok(Self::send(self.call(Method::GET, &format!("/v1/requests/{id}/events"))).await?.1)
    }

    /// The request's callbacks, each with its attempts.
    pub async fn deliveries(&self, id: RequestId) -> Result<Vec<DeliveryView>, ClientError> {
        Ok(Self::send(self.call(Method::GET, &format!("/v1/requests/{id}/deliveries"))).await?.1)
    }

    /// The messages sent about the request (asks, updates, reminders), each with its attempts.
    pub async fn notifications(&self, id: RequestId) -> Result<Vec<NotificationView>, ClientError> {
        Ok(Self::send(self.call(Method::GET, &format!("/v1/requests/{id}/notifications"))).await?.1)
    }

    /// Every event the key may see, from after sequence number `after` (0: the start of the log), then live.
    pub fn event_stream(&self, after: i64) -> EventStream {
        EventStream { client: self.clone(), last_id: after, response: None, buffer: Vec::new(), ready: VecDeque::new() }
    }

    /// Recomputes the audit log's hash chain (admins).
    pub async fn verify_audit(&self) -> Result<Verification, ClientError> {
        Ok(Self::send(self.call(Method::GET, "/v1/audit/verify")).await?.1)
    }

    /// The signed checkpoints of the audit log, oldest first (admins).
    pub async fn audit_checkpoints(&self) -> Result<Vec<SignedCheckpoint>, ClientError> {
        Ok(Self::send(self.call(Method::GET, "/v1/audit/checkpoints")).await?.1)
    }

    /// The policy in force.
    pub async fn policy(&self) -> Result<PolicyView, ClientError> {
        Ok(Self::send(self.call(Method::GET, "/v1/policy")).await?.1)
    }

    /// Applies `source` (a YAML policy document) as a new version (admins); an identical document is not a new one.
    pub async fn apply_policy(&self, source: &str) -> Result<PolicyView, ClientError> {
        let builder =
            self.call(Method::PUT, "/v1/policy").header("content-type", "application/yaml").body(source.to_string());
        Ok(Self::send(builder).await?.1)
    }

    /// Every stored policy version, newest first.
    pub async fn policy_versions(&self) -> Result<Vec<PolicyVersionSummary>, ClientError> {
        Ok(Self::send(self.call(Method::GET, "/v1/policy/versions")).await?.1)
    }

    /// `GET /v1/advice`: which gates to relax or tighten over the requests created since `since` (a policy duration
    /// such as `30d`, or an RFC 3339 time; default 30 days), for rules with at least `min` human decisions (default 20).
    pub async fn advice(&self, since: Option<&str>, min: Option<u64>) -> Result<AdviceReport, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(since) = since {
            params.push(("since", since.to_string()));
        }
        if let Some(min) = min {
            params.push(("min", min.to_string()));
        }
        Ok(Self::send(self.call(Method::GET, "/v1/advice").query(&params)).await?.1)
    }

    /// `POST /v1/advice/apply`: applies a finding's draft as a new policy version (admin key).
    pub async fn apply_advice(&self, body: &ApplyAdvice) -> Result<AppliedAdvice, ClientError> {
        Ok(Self::send(self.call(Method::POST, "/v1/advice/apply").json(body)).await?.1)
    }

    /// Who is on call for `group` (a group with a rotation), until when, and who is next.
    pub async fn on_call(&self, group: &str) -> Result<OnCallView, ClientError> {
        let segment = utf8_percent_encode_segment(group);
        Ok(Self::send(self.call(Method::GET, &format!("/v1/groups/{segment}/oncall"))).await?.1)
    }

    /// Approval statistics (`GET /v1/stats`), for approver and admin keys.
    pub async fn stats(&self, query: &StatsQuery) -> Result<StatsReport, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(since) = &query.since {
            params.push(("since", since.clone()));
        }
        if let Some(by) = query.by {
            params.push(("by", by.to_string()));
        }
        if let Some(fast_under) = &query.fast_under {
            params.push(("fast_under", fast_under.clone()));
        }
        Ok(Self::send(self.call(Method::GET, "/v1/stats").query(&params)).await?.1)
    }

    /// `GET /healthz`: the process is up.
    pub async fn health(&self) -> Result<Health, ClientError> {
        Ok(Self::send(self.http.get(format!("{}/healthz", self.base))).await?.1)
    }

    /// `GET /readyz`: the database answers (else `unavailable`).
    pub async fn ready(&self) -> Result<Health, ClientError> {
        Ok(Self::send(self.http.get(format!("{}/readyz", self.base))).await?.1)
    }

    /// `GET /metrics`: the Prometheus text exposition, as the key (or the metrics token) may read it.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let response = self.call(Method::GET, "/metrics").send().await?;
        if response.status().is_success() {
            return Ok(response.text().await?);
        }
        Err(Self::error(response).await)
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
fn utf8_percent_encode_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The live event stream (`GET /v1/events`, server-sent events). [`EventStream::next`] reconnects after a dropped
/// connection with `Last-Event-ID`, so no event is lost or repeated; it returns `None` when the server ends the
/// stream (at shutdown).
pub struct EventStream {
    client: Client,
    last_id: i64,
    response: Option<reqwest::Response>,
    buffer: Vec<u8>,
    ready: VecDeque<Event>,
}

impl EventStream {
    /// The next event: `Ok(Some)`, `Ok(None)` once the server ended the stream, or the error that stopped it.
    pub async fn next(&mut self) -> Result<Option<Event>, ClientError> {
        let mut reconnects = 0;
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.last_id = event.seq;
                return Ok(Some(event));
            }
            let response = match &mut self.response {
                Some(response) => response,
                None => {
                    let builder = self
                        .client
                        .call(Method::GET, "/v1/events")
                        .header("accept", "text/event-stream")
                        .header("last-event-id", self.last_id.to_string());
                    let response = builder.send().await?;
                    if !response.status().is_success() {
                        return Err(Client::error(response).await);
                    }
                    self.response.insert(response)
                }
            };
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    reconnects = 0;
                    self.buffer.extend_from_slice(&chunk);
                    self.parse()?;
                }
                Ok(None) => return Ok(None),
                // A dropped connection: resume after the last event handed out.
                Err(_) if reconnects < 3 => {
                    reconnects += 1;
                    self.response = None;
                    self.buffer.clear();
                    tokio::time::sleep(Duration::from_millis(200 * reconnects)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Moves the complete messages in the buffer (each ends with a blank line) to `ready`; comments and heartbeats
    /// carry no data and are skipped.
    fn parse(&mut self) -> Result<(), ClientError> {
        while let Some(end) = find_blank_line(&self.buffer) {
            let message: Vec<u8> = self.buffer.drain(..end.1).collect();
            let text = String::from_utf8_lossy(&message[..end.0]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:").map(|d| d.strip_prefix(' ').unwrap_or(d)))
                .collect();
            if data.is_empty() {
                continue;
            }
            let event: Event = serde_json::from_str(&data.join("\n")).map_err(|e| ClientError::Api {
                status: 200,
                code: ErrorCode::Internal,
                message: format!("an event in the stream is not an event: {e}"),
                details: Vec::new(),
            })?;
            self.ready.push_back(event);
        }
        Ok(())
    }
}

/// Where the first message in `buffer` ends: (its length without the blank line, its length with it).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    for (i, window) in buffer.windows(2).enumerate() {
        if window == b"\n\n" {
            return Some((i, i + 2));
        }
    }
    buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4))
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
