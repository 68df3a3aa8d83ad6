//! A local stand-in for Discord: a fake REST API (`POST /users/@me/channels`, `POST /channels/{id}/messages`,
//! `PATCH /channels/{id}/messages/{id}`) that checks the bot token and Discord's message limits, records every call
//! and answers as Discord does (its error bodies, `429` with `retry_after` and the `X-RateLimit-*` headers); an
//! application key pair the test generates; and interactions signed with it the way Discord signs them.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use signoff_notify::discord::{DiscordConfig, PublicKey};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The bot token the fake accepts.
pub const FAKE_BOT_TOKEN: &str = "fake-discord-bot-token";
/// The application the fake's interactions come from.
pub const FAKE_APPLICATION_ID: &str = "1000000000000000001";
/// The guild shared channels are in.
pub const FAKE_GUILD_ID: &str = "1000000000000000002";

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct DiscordCall {
    /// `POST`, `PATCH`, …
    pub method: String,
    /// The route without ids: `/users/@me/channels`, `/channels/{id}/messages`, `/channels/{id}/messages/{id}`.
    pub route: String,
    /// The path as called, below the API's base URL.
    pub path: String,
    /// Header names in lowercase.
    pub headers: HashMap<String, String>,
    /// The JSON body (`null` when it was not JSON).
    pub body: Value,
    /// The status the fake answered with.
    pub answered: u16,
    /// Discord's error `code`, when the fake answered with an error body.
    pub code: Option<u64>,
}

impl DiscordCall {
    /// Answered with a success.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

/// A message as the fake holds it, as last posted or edited.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeMessage {
    pub id: String,
    pub channel_id: String,
    pub content: Value,
    pub embeds: Value,
    pub components: Value,
    /// For a reply: the id of the message it replies to (`message_reference`).
    pub reference: Option<String>,
    /// How many times `PATCH` changed it.
    pub edits: u32,
}

#[derive(Default)]
struct Faults {
    /// Answer `429` with `retry_after: .1` seconds to the next `.0` calls.
    rate_limited: (usize, f64),
    /// Answer `500` to the next this many calls.
    failing: usize,
}

struct Inner {
    calls: Mutex<Vec<DiscordCall>>,
    messages: Mutex<Vec<FakeMessage>>,
    /// User id → the id of the bot's DM channel with them.
    dms: Mutex<HashMap<String, String>>,
    refusing_dms: Mutex<HashSet<String>>,
    unknown_channels: Mutex<HashSet<String>>,
    faults: Mutex<Faults>,
    next_id: AtomicU64,
    changed: Notify,
}

/// A fake Discord REST API on `127.0.0.1`. Point [`DiscordConfig::api_url`] at [`FakeDiscord::api_url`] (or use
/// [`FakeDiscord::config`]).
pub struct FakeDiscord {
    address: SocketAddr,
    inner: Arc<Inner>,
}

impl FakeDiscord {
    /// Starts the fake on a free port.
    pub async fn start() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake discord");
        let address = listener.local_addr().expect("fake discord address");
        let inner = Arc::new(Inner {
            calls: Mutex::default(),
            messages: Mutex::default(),
            dms: Mutex::default(),
            refusing_dms: Mutex::default(),
            unknown_channels: Mutex::default(),
            faults: Mutex::default(),
            next_id: AtomicU64::new(1_200_000_000_000_000_000),
            changed: Notify::new(),
        });
        let app = axum::Router::new()
            .route("/api/v10/users/@me/channels", axum::routing::post(open_dm))
            .route("/api/v10/channels/{channel}/messages", axum::routing::post(create_message))
            .route("/api/v10/channels/{channel}/messages/{message}", axum::routing::patch(edit_message))
            .fallback(not_found)
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeDiscord { address, inner }
    }

    /// The REST API's base URL (`…/api/v10`), for [`DiscordConfig::api_url`].
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v10", self.address)
    }

    /// A Discord configuration pointing at this fake, with its bot token and `key`'s public half.
    pub fn config(&self, key: &ApplicationKey) -> DiscordConfig {
        DiscordConfig { bot_token: FAKE_BOT_TOKEN.into(), public_key: key.public_key(), api_url: self.api_url() }
    }

    /// From now on the bot may not DM `user_id` (they closed DMs from the server): `403`, code `50007`.
    pub fn refuse_dms_from(&self, user_id: &str) {
        self.inner.refusing_dms.lock().unwrap().insert(user_id.to_string());
    }

    /// From now on `channel_id` does not exist: `404`, code `10003`.
    pub fn forget_channel(&self, channel_id: &str) {
        self.inner.unknown_channels.lock().unwrap().insert(channel_id.to_string());
    }

    /// The next `calls` calls answer `429` with `retry_after` seconds (fractions too), as Discord does.
    pub fn rate_limit_next(&self, calls: usize, retry_after: f64) {
        self.inner.faults.lock().unwrap().rate_limited = (calls, retry_after);
    }

    /// The next `calls` calls answer `500`.
    pub fn fail_next(&self, calls: usize) {
        self.inner.faults.lock().unwrap().failing = calls;
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<DiscordCall> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// The calls so far to `method` `route` (e.g. `POST`, `/channels/{id}/messages`).
    pub fn calls_to(&self, method: &str, route: &str) -> Vec<DiscordCall> {
        self.calls().into_iter().filter(|c| c.method == method && c.route == route).collect()
    }

    /// The messages posted so far, as last edited.
    pub fn messages(&self) -> Vec<FakeMessage> {
        self.inner.messages.lock().unwrap().clone()
    }

    /// The bot's DM channel with `user_id`, once one was opened.
    pub fn dm_channel(&self, user_id: &str) -> Option<String> {
        self.inner.dms.lock().unwrap().get(user_id).cloned()
    }

    /// Waits until `done` holds for the calls received, or panics after `within`; returns the calls.
    pub async fn wait_until(&self, within: Duration, done: impl Fn(&[DiscordCall]) -> bool) -> Vec<DiscordCall> {
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
                panic!("the fake Discord did not see the expected calls within {within:?}; it saw: {calls:#?}");
            }
        }
    }

    /// Waits until `method` `route` succeeded `count` times; returns those calls.
    pub async fn wait_for(&self, method: &str, route: &str, count: usize, within: Duration) -> Vec<DiscordCall> {
        let wanted = |c: &DiscordCall| c.method == method && c.route == route && c.ok();
        let calls = self.wait_until(within, |calls| calls.iter().filter(|c| wanted(c)).count() >= count).await;
        calls.into_iter().filter(wanted).collect()
    }
}

/// An answer of the fake: a status, a JSON body and the headers beyond `Content-Type`.
struct Answer {
    status: StatusCode,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer { status: StatusCode::OK, body, headers: Vec::new() }
    }

    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, HeaderValue::from_str(&value).expect("a header value"));
        }
        response
    }
}

/// Discord's error body: `{"code": 50007, "message": "Cannot send messages to this user"}`.
fn error(status: StatusCode, code: u64, message: &str) -> Answer {
    Answer { status, body: json!({ "code": code, "message": message }), headers: Vec::new() }
}

/// One field's errors in an `Invalid Form Body` answer.
fn form_error(code: &str, message: &str) -> Value {
    json!({"_errors": [{"code": code, "message": message}]})
}

fn invalid_form(errors: Value) -> Answer {
    let body = json!({ "code": 50035, "message": "Invalid Form Body", "errors": errors });
    Answer { status: StatusCode::BAD_REQUEST, body, headers: Vec::new() }
}

/// The headers Discord puts on every answer of a rate-limited route.
fn rate_limit_headers(remaining: u32) -> Vec<(&'static str, String)> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    vec![
        ("x-ratelimit-limit", "5".to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", format!("{:.3}", now.as_secs_f64() + 1.0)),
        ("x-ratelimit-reset-after", "1.000".to_string()),
        ("x-ratelimit-bucket", "41f9cd5d28af77da04563bcb1d67fdfd".to_string()),
    ]
}

/// The fault to answer with, if one is queued.
fn take_fault(inner: &Inner) -> Option<Answer> {
    let mut faults = inner.faults.lock().unwrap();
    if faults.rate_limited.0 > 0 {
        faults.rate_limited.0 -= 1;
        let retry_after = faults.rate_limited.1;
        let body = json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": false });
        let mut headers = rate_limit_headers(0);
        headers.push(("retry-after", (retry_after.ceil() as u64).to_string()));
        headers.push(("x-ratelimit-scope", "user".to_string()));
        return Some(Answer { status: StatusCode::TOO_MANY_REQUESTS, body, headers });
    }
    if faults.failing > 0 {
        faults.failing -= 1;
        return Some(error(StatusCode::INTERNAL_SERVER_ERROR, 0, "500: Internal Server Error"));
    }
    None
}

fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

/// Records the call and answers it: a queued fault, `401` without the bot token, `400` for a body that is not a
/// JSON object, else what `answer` says.
fn handle(
    inner: &Inner,
    (method, route, path): (&str, &str, String),
    headers: &HeaderMap,
    body: &[u8],
    answer: impl FnOnce(&Value) -> Answer,
) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let authorized = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        == Some(format!("Bot {FAKE_BOT_TOKEN}").as_str());
    let answer = if let Some(fault) = take_fault(inner) {
        fault
    } else if !authorized {
        error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
    } else if !body.is_object() {
        error(StatusCode::BAD_REQUEST, 50109, "The request body contains invalid JSON.")
    } else {
        let mut answer = answer(&body);
        answer.headers.extend(rate_limit_headers(4));
        answer
    };
    let answered = answer.status.as_u16();
    let code = answer.body["code"].as_u64().filter(|_| !(200..300).contains(&answered));
    let (method, route, headers) = (method.to_string(), route.to_string(), header_map(headers));
    inner.calls.lock().unwrap().push(DiscordCall { method, route, path, headers, body, answered, code });
    inner.changed.notify_waiters();
    answer.into_response()
}

fn snowflake(text: &str) -> bool {
    (1..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

fn next_id(inner: &Inner) -> String {
    inner.next_id.fetch_add(1, Ordering::SeqCst).to_string()
}

async fn open_dm(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let path = "/users/@me/channels".to_string();
    handle(&inner, ("POST", "/users/@me/channels", path), &headers, &body, |body| {
        let Some(user) = body["recipient_id"].as_str().filter(|id| snowflake(id)) else {
            return invalid_form(json!({"recipient_id": form_error("NUMBER_TYPE_COERCE", "Value is not snowflake.")}));
        };
        let id = inner.dms.lock().unwrap().entry(user.to_string()).or_insert_with(|| next_id(&inner)).clone();
        let channel = json!({
            "id": id, "type": 1, "last_message_id": null, "flags": 0,
            "recipients": [{"id": user, "username": format!("user{user}"), "discriminator": "0", "global_name": null}],
        });
        Answer::ok(channel)
    })
}

async fn create_message(
    State(inner): State<Arc<Inner>>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/channels/{channel}/messages");
    handle(&inner, ("POST", "/channels/{id}/messages", path), &headers, &body, |body| {
        if let Some(refused) = unknown_or_refused(&inner, &channel) {
            return refused;
        }
        if let Err(errors) = check_message(body) {
            return errors;
        }
        let mut messages = inner.messages.lock().unwrap();
        let reference = match body["message_reference"]["message_id"].as_str() {
            Some(id) if messages.iter().any(|m| m.id == id && m.channel_id == channel) => Some(id.to_string()),
            Some(_) if body["message_reference"]["fail_if_not_exists"] == false => None,
            Some(_) => {
                return invalid_form(
                    json!({"message_reference": form_error("REPLIES_UNKNOWN_MESSAGE", "Unknown message")}),
                );
            }
            None => None,
        };
        let message = FakeMessage {
            id: next_id(&inner),
            channel_id: channel.clone(),
            content: body["content"].clone(),
            embeds: body.get("embeds").cloned().unwrap_or(json!([])),
            components: body.get("components").cloned().unwrap_or(json!([])),
            reference,
            edits: 0,
        };
        messages.push(message.clone());
        Answer::ok(message_object(&message))
    })
}

async fn edit_message(
    State(inner): State<Arc<Inner>>,
    Path((channel, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/channels/{channel}/messages/{id}");
    handle(&inner, ("PATCH", "/channels/{id}/messages/{id}", path), &headers, &body, |body| {
        if let Some(refused) = unknown_or_refused(&inner, &channel) {
            return refused;
        }
        if let Err(errors) = check_message(body) {
            return errors;
        }
        let mut messages = inner.messages.lock().unwrap();
        let Some(message) = messages.iter_mut().find(|m| m.id == id && m.channel_id == channel) else {
            return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
        };
        for (field, slot) in [
            ("content", &mut message.content),
            ("embeds", &mut message.embeds),
            ("components", &mut message.components),
        ] {
            if let Some(value) = body.get(field) {
                *slot = value.clone();
            }
        }
        message.edits += 1;
        Answer::ok(message_object(message))
    })
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, 0, "404: Not Found").into_response()
}

/// `404 Unknown Channel` for a channel that does not exist, `403` code `50007` for a DM the user refuses.
fn unknown_or_refused(inner: &Inner, channel: &str) -> Option<Answer> {
    if !snowflake(channel) || inner.unknown_channels.lock().unwrap().contains(channel) {
        return Some(error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"));
    }
    let dms = inner.dms.lock().unwrap();
    let refusing = inner.refusing_dms.lock().unwrap();
    let recipient = dms.iter().find(|(_, dm)| *dm == channel).map(|(user, _)| user);
    if recipient.is_some_and(|user| refusing.contains(user)) {
        return Some(error(StatusCode::FORBIDDEN, 50007, "Cannot send messages to this user"));
    }
    None
}

fn message_object(message: &FakeMessage) -> Value {
    json!({
        "id": message.id,
        "channel_id": message.channel_id,
        "type": if message.reference.is_some() { 19 } else { 0 },
        "content": message.content,
        "embeds": message.embeds,
        "components": message.components,
        "author": {"id": FAKE_APPLICATION_ID, "username": "Signoff", "discriminator": "0000", "bot": true},
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "edited_timestamp": if message.edits > 0 { json!(chrono::Utc::now().to_rfc3339()) } else { Value::Null },
        "message_reference": message.reference.as_ref()
            .map(|id| json!({"message_id": id, "channel_id": message.channel_id})),
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "pinned": false,
        "flags": 0,
    })
}

/// Checks a message body against Discord's limits, as the API does ([`message_problems`]). The error is Discord's
/// `400` `Invalid Form Body` (code 50035); an empty message is code 50006.
fn check_message(body: &Value) -> Result<(), Answer> {
    let problems = message_problems(body);
    if problems.is_empty() {
        let content = body["content"].as_str().unwrap_or("");
        let empty = |field: &str| body[field].as_array().is_none_or(Vec::is_empty);
        if content.is_empty() && empty("embeds") && empty("components") && body.get("message_reference").is_none() {
            return Err(error(StatusCode::BAD_REQUEST, 50006, "Cannot send an empty message"));
        }
        return Ok(());
    }
    let errors: serde_json::Map<String, Value> =
        problems.into_iter().map(|(path, message)| (path, form_error("BASE_TYPE_MAX_LENGTH", &message))).collect();
    Err(invalid_form(Value::Object(errors)))
}

/// Each field of a message body beyond Discord's limits: content, embeds and their fields, action rows and buttons
/// (`custom_id` ≤ 100 characters and unique; a link button has a URL and no `custom_id`). Its path
/// (`embeds.0.fields.2.value`) and why. Tests check interaction responses with it too.
pub fn message_problems(body: &Value) -> Vec<(String, String)> {
    fn chars(value: &Value) -> usize {
        value.as_str().map_or(0, |s| s.chars().count())
    }
    let mut problems: Vec<(String, String)> = Vec::new();
    let limit = |problems: &mut Vec<(String, String)>, path: String, value: &Value, max: usize| {
        if chars(value) > max {
            problems.push((path, format!("Must be {max} or fewer in length.")));
        }
    };
    limit(&mut problems, "content".into(), &body["content"], 2000);
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    if embeds.len() > 10 {
        problems.push(("embeds".into(), "Must be 10 or fewer in length.".into()));
    }
    for (i, embed) in embeds.iter().enumerate() {
        limit(&mut problems, format!("embeds.{i}.title"), &embed["title"], 256);
        limit(&mut problems, format!("embeds.{i}.description"), &embed["description"], 4096);
        limit(&mut problems, format!("embeds.{i}.footer.text"), &embed["footer"]["text"], 2048);
        let fields = embed["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > 25 {
            problems.push((format!("embeds.{i}.fields"), "Must be 25 or fewer in length.".into()));
        }
        for (j, field) in fields.iter().enumerate() {
            limit(&mut problems, format!("embeds.{i}.fields.{j}.name"), &field["name"], 256);
            limit(&mut problems, format!("embeds.{i}.fields.{j}.value"), &field["value"], 1024);
            if chars(&field["name"]) == 0 || chars(&field["value"]) == 0 {
                problems.push((format!("embeds.{i}.fields.{j}"), "This field is required".into()));
            }
        }
        let total: usize = chars(&embed["title"])
            + chars(&embed["description"])
            + chars(&embed["footer"]["text"])
            + fields.iter().map(|f| chars(&f["name"]) + chars(&f["value"])).sum::<usize>();
        if total > 6000 {
            problems.push((format!("embeds.{i}"), "Embed size exceeds maximum size of 6000".into()));
        }
    }
    let rows = body["components"].as_array().cloned().unwrap_or_default();
    if rows.len() > 5 {
        problems.push(("components".into(), "Must be 5 or fewer in length.".into()));
    }
    let mut custom_ids = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let buttons = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"] != 1 || buttons.is_empty() || buttons.len() > 5 {
            problems.push((format!("components.{i}"), "An action row holds 1 to 5 buttons".into()));
        }
        for (j, button) in buttons.iter().enumerate() {
            let path = format!("components.{i}.components.{j}");
            limit(&mut problems, format!("{path}.label"), &button["label"], 80);
            limit(&mut problems, format!("{path}.custom_id"), &button["custom_id"], 100);
            let link = button["style"] == 5;
            let well_formed = button["type"] == 2
                && (1..=5).contains(&button["style"].as_u64().unwrap_or(0))
                && link == button["url"].is_string()
                && link != button["custom_id"].is_string();
            if !well_formed {
                problems.push((path.clone(), "A button has a custom_id, or a link style and a url".into()));
            }
            if let Some(id) = button["custom_id"].as_str()
                && !custom_ids.insert(id.to_string())
            {
                problems.push((format!("{path}.custom_id"), "Component custom id cannot be duplicated".into()));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------------------------
// Interactions, signed the way Discord signs them

/// The application's Ed25519 key pair, generated by the test: its public half is what the Developer Portal shows
/// as the application's public key, and its private half signs interactions as Discord would.
pub struct ApplicationKey(SigningKey);

impl ApplicationKey {
    pub fn generate() -> ApplicationKey {
        ApplicationKey(SigningKey::generate(&mut rand_core::OsRng))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_key(self.0.verifying_key())
    }

    /// `X-Signature-Ed25519`: the hex signature of the timestamp followed by the body.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        hex::encode(self.0.sign(&message).to_bytes())
    }
}

/// An interaction as Discord posts it to the app's interactions endpoint.
#[derive(Debug, Clone)]
pub struct SignedInteraction {
    pub body: String,
    /// `X-Signature-Timestamp`.
    pub timestamp: String,
    /// `X-Signature-Ed25519`.
    pub signature: String,
}

impl SignedInteraction {
    /// Signs `payload` with `key` at `timestamp` (Unix seconds).
    pub fn new(key: &ApplicationKey, payload: &Value, timestamp: i64) -> SignedInteraction {
        let (body, timestamp) = (payload.to_string(), timestamp.to_string());
        let signature = key.sign(&timestamp, body.as_bytes());
        SignedInteraction { body, timestamp, signature }
    }

    /// Signed with `key`, now.
    pub fn now(key: &ApplicationKey, payload: &Value) -> SignedInteraction {
        SignedInteraction::new(key, payload, crate::fake_slack::unix_now())
    }

    /// POSTs it to `url` (the app's `/channels/discord/interactions`).
    pub fn send(&self, http: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        http.post(url)
            .header("content-type", "application/json")
            .header("user-agent", "Discord-Interactions/1.0 (+https://discord.com)")
            .header("x-signature-timestamp", &self.timestamp)
            .header("x-signature-ed25519", &self.signature)
            .body(self.body.clone())
    }
}

/// Who interacts, and where: in a DM with the bot (`user`), or in a guild channel (`member.user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clicker<'a> {
    InDm(&'a str),
    InGuild(&'a str),
}

fn user_object(id: &str) -> Value {
    json!({"id": id, "username": format!("user{id}"), "discriminator": "0", "global_name": null, "avatar": null})
}

/// The fields every interaction of `kind` by `who` has, on `message` when it is about one.
fn interaction(kind: u8, who: Clicker<'_>, message: Option<&FakeMessage>, data: Value) -> Value {
    static NEXT: AtomicU64 = AtomicU64::new(1_300_000_000_000_000_000);
    let id = NEXT.fetch_add(1, Ordering::SeqCst).to_string();
    let mut payload = json!({
        "type": kind,
        "id": id,
        "application_id": FAKE_APPLICATION_ID,
        "token": format!("aW50ZXJhY3Rpb246{id}"),
        "version": 1,
        "app_permissions": "562949953601536",
        "locale": "en-US",
        "entitlements": [],
        "data": data,
    });
    if let Some(message) = message {
        payload["channel_id"] = json!(message.channel_id);
        payload["message"] = message_object(message);
    }
    match who {
        Clicker::InDm(user) => {
            payload["user"] = user_object(user);
            payload["context"] = json!(1);
        }
        Clicker::InGuild(user) => {
            payload["guild_id"] = json!(FAKE_GUILD_ID);
            payload["guild_locale"] = json!("en-US");
            payload["context"] = json!(0);
            payload["member"] = json!({
                "user": user_object(user), "roles": [], "permissions": "1071698660929", "nick": null,
                "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "flags": 0,
            });
        }
    }
    payload
}

/// A PING, which Discord sends when the interactions endpoint URL is saved.
pub fn ping_payload() -> Value {
    json!({
        "type": 1, "id": "1300000000000000000", "application_id": FAKE_APPLICATION_ID, "token": "cGluZw", "version": 1,
    })
}

/// A button click (type 3, `MESSAGE_COMPONENT`): `who` clicked the button `custom_id` on `message`.
pub fn button_payload(who: Clicker<'_>, custom_id: &str, message: &FakeMessage) -> Value {
    interaction(3, who, Some(message), json!({ "custom_id": custom_id, "component_type": 2 }))
}

/// A modal submitted (type 5, `MODAL_SUBMIT`): `who` filled the text inputs `values` (custom id, value) of the
/// modal `custom_id`, opened from a button on `message`.
pub fn modal_submit_payload(
    who: Clicker<'_>,
    custom_id: &str,
    values: &[(&str, &str)],
    message: &FakeMessage,
) -> Value {
    let rows: Vec<Value> = values
        .iter()
        .map(|(id, value)| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "value": value}]}))
        .collect();
    interaction(5, who, Some(message), json!({ "custom_id": custom_id, "components": rows }))
}
