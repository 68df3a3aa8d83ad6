//! A local stand-in for Slack: a fake Web API (`chat.postMessage`, `chat.update`, `chat.postEphemeral`,
//! `views.open`, and interactions' `response_url`s) that records every call and answers like Slack, and the signed
//! interaction requests Slack sends to an app's request URL.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use signoff_notify::slack::SlackConfig;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// The bot token the fake accepts.
pub const FAKE_BOT_TOKEN: &str = "xoxb-fake-bot-token";
/// The signing secret interactions are signed with.
pub const FAKE_SIGNING_SECRET: &str = "fake-signing-secret";

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct SlackCall {
    /// The Web API method (`chat.postMessage`, …), or `response_url` for a call to an interaction's response URL.
    pub method: String,
    /// For `response_url` calls: the name the URL was made with ([`FakeSlack::response_url`]).
    pub response_url_name: Option<String>,
    /// Header names in lowercase.
    pub headers: HashMap<String, String>,
    /// The JSON body (`null` when it was not JSON).
    pub body: Value,
    /// The status the fake answered with (`0`: none, the connection was refused).
    pub answered: u16,
    /// Slack's `error`, when the fake answered `ok: false`.
    pub error: Option<String>,
}

/// A message as the fake holds it: the last blocks and text posted or updated.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeMessage {
    pub channel: String,
    pub ts: String,
    pub text: Value,
    pub blocks: Value,
    /// For a reply: the `ts` of the message whose thread it is in.
    pub thread_ts: Option<String>,
    /// How many times `chat.update` changed it.
    pub updates: u32,
}

#[derive(Default)]
struct Faults {
    /// Answer `429` with `Retry-After: .1` to the next `.0` calls.
    rate_limited: (usize, u64),
    /// Answer `500` to the next this many calls.
    failing: usize,
}

struct Inner {
    token: String,
    calls: Mutex<Vec<SlackCall>>,
    messages: Mutex<Vec<FakeMessage>>,
    unknown_channels: Mutex<HashSet<String>>,
    faults: Mutex<Faults>,
    next_ts: AtomicU64,
    next_view: AtomicU64,
    changed: Notify,
}

/// A fake Slack Web API on `127.0.0.1`. Point [`SlackConfig::api_url`] at [`FakeSlack::api_url`] (or use
/// [`FakeSlack::config`]).
pub struct FakeSlack {
    address: SocketAddr,
    inner: Arc<Inner>,
    server: Mutex<Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>>,
}

impl FakeSlack {
    /// Starts the fake on a free port.
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake slack");
        let address = listener.local_addr().expect("fake slack address");
        let inner = Arc::new(Inner {
            token: FAKE_BOT_TOKEN.to_string(),
            calls: Mutex::default(),
            messages: Mutex::default(),
            unknown_channels: Mutex::default(),
            faults: Mutex::default(),
            next_ts: AtomicU64::new(100),
            next_view: AtomicU64::new(1),
            changed: Notify::new(),
        });
        let fake = FakeSlack { address, inner, server: Mutex::new(None) };
        fake.serve(listener);
        fake
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new()
            .route("/api/{method}", axum::routing::post(api_call))
            .route("/response/{name}", axum::routing::post(response_url_call))
            .with_state(self.inner.clone());
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
        *self.server.lock().unwrap() = Some((stop, task));
    }

    /// The Web API base URL (`…/api`), for [`SlackConfig::api_url`].
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.address)
    }

    /// A Slack configuration pointing at this fake, with its token and signing secret.
    pub fn config(&self) -> SlackConfig {
        SlackConfig {
            bot_token: FAKE_BOT_TOKEN.to_string(),
            signing_secret: FAKE_SIGNING_SECRET.to_string(),
            api_url: self.api_url(),
        }
    }

    /// An interaction `response_url` served by this fake; calls to it are recorded as `response_url` with `name`.
    pub fn response_url(&self, name: &str) -> String {
        format!("http://{}/response/{name}", self.address)
    }

    /// From now on `channel` does not exist: calls naming it answer `channel_not_found`.
    pub fn forget_channel(&self, channel: &str) {
        self.inner.unknown_channels.lock().unwrap().insert(channel.to_string());
    }

    /// The next `calls` calls answer `429 Too Many Requests` with `Retry-After: retry_after_s`.
    pub fn rate_limit_next(&self, calls: usize, retry_after_s: u64) {
        self.inner.faults.lock().unwrap().rate_limited = (calls, retry_after_s);
    }

    /// The next `calls` calls answer `500`.
    pub fn fail_next(&self, calls: usize) {
        self.inner.faults.lock().unwrap().failing = calls;
    }

    /// Stops listening: connections are refused until [`FakeSlack::come_back`]. Waits until the port is closed.
    pub async fn go_down(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some((stop, task)) = server {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }

    /// Listens again on the same address after [`FakeSlack::go_down`].
    pub async fn come_back(&self) {
        if self.server.lock().unwrap().is_some() {
            return;
        }
        let listener = tokio::net::TcpListener::bind(self.address).await.expect("bind fake slack again");
        self.serve(listener);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<SlackCall> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// The calls so far to `method`.
    pub fn calls_to(&self, method: &str) -> Vec<SlackCall> {
        self.calls().into_iter().filter(|call| call.method == method).collect()
    }

    /// The messages posted so far, as last updated.
    pub fn messages(&self) -> Vec<FakeMessage> {
        self.inner.messages.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the calls received, or panics after `within`; returns the calls.
    pub async fn wait_until(&self, within: Duration, done: impl Fn(&[SlackCall]) -> bool) -> Vec<SlackCall> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a call recorded in between still wakes us.
            changed.as_mut().enable();
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("the fake Slack did not see the expected calls within {within:?}; it saw: {calls:#?}");
            }
        }
    }

    /// Waits until `method` was called (and answered `ok`) `count` times; returns those calls.
    pub async fn wait_for(&self, method: &str, count: usize, within: Duration) -> Vec<SlackCall> {
        let answered = |call: &SlackCall| call.method == method && call.answered == 200 && call.error.is_none();
        let calls = self.wait_until(within, |calls| calls.iter().filter(|c| answered(c)).count() >= count).await;
        calls.into_iter().filter(answered).collect()
    }
}

fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

/// The fault to answer with, if one is queued.
fn take_fault(inner: &Inner) -> Option<Response> {
    let mut faults = inner.faults.lock().unwrap();
    if faults.rate_limited.0 > 0 {
        faults.rate_limited.0 -= 1;
        let retry_after = faults.rate_limited.1.to_string();
        let body = json!({"ok": false, "error": "ratelimited"}).to_string();
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after)],
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
        );
    }
    if faults.failing > 0 {
        faults.failing -= 1;
        return Some((StatusCode::INTERNAL_SERVER_ERROR, "fake slack: internal error").into_response());
    }
    None
}

fn record(inner: &Inner, call: SlackCall) {
    inner.calls.lock().unwrap().push(call);
    inner.changed.notify_waiters();
}

async fn api_call(
    State(inner): State<Arc<Inner>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut call =
        SlackCall { method, response_url_name: None, headers: header_map(&headers), body, answered: 200, error: None };
    if let Some(fault) = take_fault(&inner) {
        call.answered = fault.status().as_u16();
        record(&inner, call);
        return fault;
    }
    let answer = answer(&inner, &call);
    call.error = answer.get("error").and_then(Value::as_str).map(str::to_string);
    record(&inner, call);
    axum::Json(answer).into_response()
}

async fn response_url_call(
    State(inner): State<Arc<Inner>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut call = SlackCall {
        method: "response_url".into(),
        response_url_name: Some(name),
        headers: header_map(&headers),
        body,
        answered: 200,
        error: None,
    };
    if let Some(fault) = take_fault(&inner) {
        call.answered = fault.status().as_u16();
        record(&inner, call);
        return fault;
    }
    record(&inner, call);
    axum::Json(json!({"ok": true})).into_response()
}

/// What Slack would answer `call`, as JSON (Slack answers errors with `200` and `ok: false`).
fn answer(inner: &Inner, call: &SlackCall) -> Value {
    let fail = |error: &str| json!({"ok": false, "error": error});
    match call.headers.get("authorization").map(String::as_str) {
        None => return fail("not_authed"),
        Some(auth) if auth != format!("Bearer {}", inner.token) => return fail("invalid_auth"),
        Some(_) => {}
    }
    let body = &call.body;
    if !body.is_object() {
        return fail("invalid_json");
    }
    let text = |name: &str| body[name].as_str().filter(|v| !v.is_empty());
    let known = |channel: &str| {
        channel.len() > 1
            && channel.starts_with(['C', 'D', 'G', 'U', 'W'])
            && !inner.unknown_channels.lock().unwrap().contains(channel)
    };
    match call.method.as_str() {
        "chat.postMessage" => {
            let Some(channel) = text("channel") else { return fail("channel_not_found") };
            if !known(channel) {
                return fail("channel_not_found");
            }
            if text("text").is_none() && !body["blocks"].is_array() {
                return fail("no_text");
            }
            // A message to a member id lands in the bot's DM with them.
            let channel =
                if channel.starts_with(['U', 'W']) { format!("D{}", &channel[1..]) } else { channel.to_string() };
            let mut messages = inner.messages.lock().unwrap();
            let thread_ts = text("thread_ts").map(str::to_string);
            if let Some(parent) = &thread_ts
                && !messages.iter().any(|m| m.channel == channel && m.ts == *parent)
            {
                return fail("thread_not_found");
            }
            let ts = format!("1700000000.{:06}", inner.next_ts.fetch_add(100, Ordering::SeqCst));
            messages.push(FakeMessage {
                channel: channel.clone(),
                ts: ts.clone(),
                text: body["text"].clone(),
                blocks: body["blocks"].clone(),
                thread_ts: thread_ts.clone(),
                updates: 0,
            });
            let message = json!({"type": "message", "text": body["text"], "ts": ts, "thread_ts": thread_ts});
            json!({"ok": true, "channel": channel, "ts": ts, "message": message})
        }
        "chat.update" => {
            let (Some(channel), Some(ts)) = (text("channel"), text("ts")) else { return fail("invalid_arguments") };
            if !known(channel) {
                return fail("channel_not_found");
            }
            let mut messages = inner.messages.lock().unwrap();
            let Some(message) = messages.iter_mut().find(|m| m.channel == channel && m.ts == ts) else {
                return fail("message_not_found");
            };
            message.text = body["text"].clone();
            message.blocks = body["blocks"].clone();
            message.updates += 1;
            json!({"ok": true, "channel": channel, "ts": ts, "text": body["text"]})
        }
        "chat.postEphemeral" => {
            let (Some(channel), Some(_user)) = (text("channel"), text("user")) else {
                return fail("invalid_arguments");
            };
            if !known(channel) {
                return fail("channel_not_found");
            }
            let ts = format!("1700000000.{:06}", inner.next_ts.fetch_add(100, Ordering::SeqCst));
            json!({"ok": true, "message_ts": ts})
        }
        "views.open" => {
            if text("trigger_id").is_none() {
                return fail("invalid_trigger_id");
            }
            if !body["view"].is_object() {
                return fail("invalid_arguments");
            }
            let id = format!("V{:08}", inner.next_view.fetch_add(1, Ordering::SeqCst));
            let mut view = body["view"].clone();
            view["id"] = json!(id);
            json!({"ok": true, "view": view})
        }
        _ => fail("unknown_method"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Interactions, signed the way Slack signs them

/// An interaction request as Slack sends it to an app's request URL.
#[derive(Debug, Clone)]
pub struct SignedInteraction {
    /// `payload=<the JSON, form-encoded>`.
    pub body: String,
    /// `X-Slack-Request-Timestamp`.
    pub timestamp: String,
    /// `X-Slack-Signature`.
    pub signature: String,
    /// `X-Slack-Retry-Num`, when Slack retries.
    pub retry_num: Option<u32>,
}

impl SignedInteraction {
    /// Signs `payload` with `signing_secret` at `timestamp` (Unix seconds).
    pub fn new(signing_secret: &str, payload: &Value, timestamp: i64) -> SignedInteraction {
        let body = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
        );
        let timestamp = timestamp.to_string();
        let signature = signoff_notify::slack::sign(signing_secret, &timestamp, body.as_bytes());
        SignedInteraction { body, timestamp, signature, retry_num: None }
    }

    /// Signed with [`FAKE_SIGNING_SECRET`], now.
    pub fn now(payload: &Value) -> SignedInteraction {
        SignedInteraction::new(FAKE_SIGNING_SECRET, payload, unix_now())
    }

    /// The same request, marked as Slack's `retry`th retry (`X-Slack-Retry-Num`, reason `http_timeout`).
    pub fn retried(mut self, retry: u32) -> SignedInteraction {
        self.retry_num = Some(retry);
        self
    }

    /// POSTs it to `url` (the app's `/channels/slack/interactions`).
    pub fn send(&self, http: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        let mut request = http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", &self.timestamp)
            .header("x-slack-signature", &self.signature)
            .body(self.body.clone());
        if let Some(retry) = self.retry_num {
            request =
                request.header("x-slack-retry-num", retry.to_string()).header("x-slack-retry-reason", "http_timeout");
        }
        request
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

/// A `block_actions` payload: `user_id` clicked the button `action_id` (value `value`) on a message in `channel`.
pub fn block_actions_payload(
    user_id: &str,
    action_id: &str,
    value: &str,
    trigger_id: &str,
    response_url: &str,
) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.to_lowercase(), "name": user_id.to_lowercase(), "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0FAKE", "is_ephemeral": false},
        "trigger_id": trigger_id,
        "team": {"id": "T0FAKE", "domain": "fake"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": "D0FAKE", "name": "directmessage"},
        "message": {"type": "message", "ts": "1700000000.000100", "text": "Approval needed", "bot_id": "B0FAKE"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [{
            "action_id": action_id,
            "block_id": "actions",
            "text": {"type": "plain_text", "text": action_id, "emoji": true},
            "value": value,
            "type": "button",
            "action_ts": "1700000001.000200",
        }],
    })
}

/// A `view_submission` payload: `user_id` submitted the modal `callback_id` with `values` (`view.state.values`:
/// block id → action id → `{type, value | selected_option}`).
pub fn view_submission_payload(user_id: &str, callback_id: &str, private_metadata: &str, values: Value) -> Value {
    json!({
        "type": "view_submission",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "user": {"id": user_id, "username": user_id.to_lowercase(), "name": user_id.to_lowercase(), "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token",
        "trigger_id": "trigger-submit",
        "view": {
            "id": "V00000001",
            "team_id": "T0FAKE",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": values},
            "hash": "1700000002.abcdef",
            "title": {"type": "plain_text", "text": "Signoff"},
            "blocks": [],
        },
        "response_urls": [],
        "is_enterprise_install": false,
        "enterprise": null,
    })
}
