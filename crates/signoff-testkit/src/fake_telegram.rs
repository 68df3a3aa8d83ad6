//! A local stand-in for Telegram: a fake Bot API (`sendMessage`, `editMessageText`, `answerCallbackQuery`,
//! `setWebhook`) that records every call, holds the messages it was sent, checks what Telegram checks (the token,
//! HTML entities, `callback_data` of at most 64 bytes, edits to messages that exist and change) and answers like
//! Telegram (`{"ok": false, "error_code", "description"}`, a `429` with `parameters.retry_after`); and the updates
//! Telegram posts to a bot's webhook, with its secret token header.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use signoff_notify::telegram::TelegramConfig;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The bot's id, the digits before its token's `:`.
pub const FAKE_BOT_ID: i64 = 7_000_000_001;
/// The bot token the fake accepts.
pub const FAKE_BOT_TOKEN: &str = "7000000001:AAFakeTelegramBotTokenForTests";
/// The webhook secret updates are sent with.
pub const FAKE_WEBHOOK_SECRET: &str = "fake_webhook-secret_123";

/// One Bot API call the fake received.
#[derive(Debug, Clone)]
pub struct TelegramCall {
    pub method: String,
    pub body: Value,
    /// The status answered.
    pub answered: u16,
    /// Telegram's `description` when the fake answered `ok: false`.
    pub error: Option<String>,
}

/// A message as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeTelegramMessage {
    pub chat_id: i64,
    pub message_id: i64,
    pub text: String,
    pub reply_markup: Value,
    /// The message it replies to.
    pub reply_to: Option<i64>,
    /// How many times `editMessageText` changed it.
    pub edits: u32,
}

impl FakeTelegramMessage {
    /// The `callback_data` of each inline button, row by row.
    pub fn callback_data(&self) -> Vec<String> {
        let rows = self.reply_markup["inline_keyboard"].as_array().cloned().unwrap_or_default();
        let buttons = rows.iter().flat_map(|row| row.as_array().cloned().unwrap_or_default());
        buttons.filter_map(|b| b["callback_data"].as_str().map(str::to_string)).collect()
    }
}

#[derive(Default)]
struct Faults {
    /// Answer `429` with `retry_after: .1` to the next `.0` calls.
    rate_limited: (usize, u64),
    /// Chats that do not exist.
    unknown_chats: HashSet<i64>,
}

struct Inner {
    calls: Mutex<Vec<TelegramCall>>,
    messages: Mutex<Vec<FakeTelegramMessage>>,
    faults: Mutex<Faults>,
}

/// A fake Bot API on `127.0.0.1`.
pub struct FakeTelegram {
    url: String,
    inner: Arc<Inner>,
}

impl FakeTelegram {
    pub async fn start() -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake telegram");
        let url = format!("http://{}", listener.local_addr().expect("fake telegram address"));
        let inner = Arc::new(Inner { calls: Mutex::default(), messages: Mutex::default(), faults: Mutex::default() });
        let app = axum::Router::new().route("/{bot}/{method}", axum::routing::post(call)).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeTelegram { url, inner }
    }

    /// A Telegram configuration pointing at this fake.
    pub fn config(&self) -> TelegramConfig {
        TelegramConfig {
            bot_token: FAKE_BOT_TOKEN.into(),
            webhook_secret: FAKE_WEBHOOK_SECRET.into(),
            api_url: self.url.clone(),
        }
    }

    /// The next `calls` calls answer `429` with `parameters.retry_after: retry_after_s`.
    pub fn rate_limit_next(&self, calls: usize, retry_after_s: u64) {
        self.inner.faults.lock().unwrap().rate_limited = (calls, retry_after_s);
    }

    /// From now on, `chat_id` does not exist (`400 Bad Request: chat not found`).
    pub fn forget_chat(&self, chat_id: i64) {
        self.inner.faults.lock().unwrap().unknown_chats.insert(chat_id);
    }

    pub fn calls(&self) -> Vec<TelegramCall> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// The calls to `method` that succeeded.
    pub fn calls_to(&self, method: &str) -> Vec<TelegramCall> {
        self.calls().into_iter().filter(|c| c.method == method && c.answered == 200).collect()
    }

    pub fn messages(&self) -> Vec<FakeTelegramMessage> {
        self.inner.messages.lock().unwrap().clone()
    }

    /// Waits until `count` calls to `method` succeeded, or panics after `within`.
    pub async fn wait_for(&self, method: &str, count: usize, within: Duration) -> Vec<TelegramCall> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let calls = self.calls_to(method);
            if calls.len() >= count {
                return calls;
            }
            assert!(tokio::time::Instant::now() < deadline, "only these calls arrived: {:#?}", self.calls());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a message in `chat_id` satisfies `test`, and returns it.
    pub async fn wait_for_message(
        &self,
        chat_id: i64,
        within: Duration,
        test: impl Fn(&FakeTelegramMessage) -> bool,
    ) -> FakeTelegramMessage {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(found) = self.messages().into_iter().find(|m| m.chat_id == chat_id && test(m)) {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "no such message: {:#?}", self.messages());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Telegram's error answer.
fn refuse(status: StatusCode, description: &str) -> Response {
    let body = json!({ "ok": false, "error_code": status.as_u16(), "description": description });
    (status, axum::Json(body)).into_response()
}

async fn call(State(inner): State<Arc<Inner>>, Path((bot, method)): Path<(String, String)>, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let response = answer(&inner, &bot, &method, &body);
    let (parts, bytes) = response.into_parts();
    let bytes = axum::body::to_bytes(bytes, 1 << 20).await.unwrap_or_default();
    let answered = parts.status.as_u16();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let error = answer["description"].as_str().filter(|_| answer["ok"] == false).map(str::to_string);
    inner.calls.lock().unwrap().push(TelegramCall { method, body, answered, error });
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

fn answer(inner: &Inner, bot: &str, method: &str, body: &Value) -> Response {
    if bot != format!("bot{FAKE_BOT_TOKEN}") {
        return refuse(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    {
        let mut faults = inner.faults.lock().unwrap();
        if faults.rate_limited.0 > 0 {
            faults.rate_limited.0 -= 1;
            let seconds = faults.rate_limited.1;
            let body = json!({
                "ok": false,
                "error_code": 429,
                "description": format!("Too Many Requests: retry after {seconds}"),
                "parameters": { "retry_after": seconds },
            });
            return (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        }
    }
    let ok = |result: Value| axum::Json(json!({ "ok": true, "result": result })).into_response();
    match method {
        "sendMessage" => match send_message(inner, body) {
            Ok(result) => ok(result),
            Err(description) => refuse(StatusCode::BAD_REQUEST, &description),
        },
        "editMessageText" => match edit_message(inner, body) {
            Ok(result) => ok(result),
            Err(description) => refuse(StatusCode::BAD_REQUEST, &description),
        },
        "answerCallbackQuery" if body["callback_query_id"].is_string() => ok(json!(true)),
        "answerCallbackQuery" => refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: query is too old and response timeout expired or query ID is invalid",
        ),
        "setWebhook" => {
            let secret = body["secret_token"].as_str().unwrap_or("");
            let url = body["url"].as_str().unwrap_or("");
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
                );
            }
            if !secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return refuse(StatusCode::BAD_REQUEST, "Bad Request: secret token contains unallowed characters");
            }
            ok(json!(true))
        }
        _ => refuse(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn chat_of(inner: &Inner, body: &Value) -> Result<i64, String> {
    let chat = match &body["chat_id"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let chat = chat.ok_or("Bad Request: chat not found")?;
    if inner.faults.lock().unwrap().unknown_chats.contains(&chat) {
        return Err("Bad Request: chat not found".into());
    }
    Ok(chat)
}

fn check_message(body: &Value) -> Result<String, String> {
    let text = body["text"].as_str().filter(|t| !t.trim().is_empty()).ok_or("Bad Request: message text is empty")?;
    if text.chars().count() > 4096 {
        return Err("Bad Request: message is too long".into());
    }
    if body["parse_mode"] == "HTML" {
        check_html(text)?;
    }
    let rows = body["reply_markup"]["inline_keyboard"].as_array().cloned().unwrap_or_default();
    for button in rows.iter().flat_map(|row| row.as_array().cloned().unwrap_or_default()) {
        if let Some(data) = button["callback_data"].as_str()
            && (data.is_empty() || data.len() > 64)
        {
            return Err("Bad Request: BUTTON_DATA_INVALID".into());
        }
    }
    Ok(text.to_string())
}

/// Telegram's HTML rule: `<`, `>` and `&` only in supported tags and entities.
fn check_html(text: &str) -> Result<(), String> {
    const TAGS: [&str; 14] =
        ["b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote", "tg-spoiler"];
    let mut rest = text;
    while let Some(at) = rest.find(['<', '>', '&']) {
        let tail = &rest[at..];
        if tail.starts_with('>') {
            return Err("Bad Request: can't parse entities: unexpected end tag".into());
        }
        if tail.starts_with('&') {
            let entity = ["&amp;", "&lt;", "&gt;", "&quot;"].into_iter().find(|e| tail.starts_with(e));
            let entity = entity.ok_or("Bad Request: can't parse entities: unsupported entity")?;
            rest = &tail[entity.len()..];
            continue;
        }
        let end = tail.find('>').ok_or("Bad Request: can't parse entities: unclosed start tag")?;
        let name = tail[1..end].trim_start_matches('/').split_whitespace().next().unwrap_or("");
        if !TAGS.contains(&name) {
            return Err(format!("Bad Request: can't parse entities: unsupported start tag \"{name}\""));
        }
        rest = &tail[end + 1..];
    }
    Ok(())
}

fn send_message(inner: &Inner, body: &Value) -> Result<Value, String> {
    let chat_id = chat_of(inner, body)?;
    let text = check_message(body)?;
    let mut messages = inner.messages.lock().unwrap();
    let message_id = messages.iter().filter(|m| m.chat_id == chat_id).count() as i64 + 1;
    let reply_to = body["reply_parameters"]["message_id"].as_i64();
    messages.push(FakeTelegramMessage {
        chat_id,
        message_id,
        text: text.clone(),
        reply_markup: body["reply_markup"].clone(),
        reply_to,
        edits: 0,
    });
    Ok(json!({
        "message_id": message_id,
        "from": { "id": FAKE_BOT_ID, "is_bot": true, "first_name": "Signoff" },
        "chat": { "id": chat_id, "type": "private" },
        "date": 1_767_225_600,
        "text": text,
    }))
}

fn edit_message(inner: &Inner, body: &Value) -> Result<Value, String> {
    let chat_id = chat_of(inner, body)?;
    let text = check_message(body)?;
    let message_id = body["message_id"].as_i64().ok_or("Bad Request: message identifier is not specified")?;
    let mut messages = inner.messages.lock().unwrap();
    let message = messages
        .iter_mut()
        .find(|m| m.chat_id == chat_id && m.message_id == message_id)
        .ok_or("Bad Request: message to edit not found")?;
    let markup = body["reply_markup"].clone();
    if message.text == text && message.reply_markup == markup {
        return Err("Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message".into());
    }
    message.text = text.clone();
    message.reply_markup = markup;
    message.edits += 1;
    Ok(json!({ "message_id": message_id, "chat": { "id": chat_id, "type": "private" }, "text": text }))
}

/// The update Telegram sends when `from` presses the button with `data` under `message`.
pub fn callback_update(update_id: i64, from: i64, message: &FakeTelegramMessage, data: &str) -> Value {
    json!({
        "update_id": update_id,
        "callback_query": {
            "id": format!("{update_id}{from}"),
            "from": { "id": from, "is_bot": false, "first_name": "Someone" },
            "message": {
                "message_id": message.message_id,
                "from": { "id": FAKE_BOT_ID, "is_bot": true, "first_name": "Signoff" },
                "chat": { "id": message.chat_id, "type": "private" },
                "date": 1_767_225_600,
                "text": message.text,
            },
            "chat_instance": "-1",
            "data": data,
        }
    })
}

/// The update Telegram sends when `from` replies `text` to the bot's message `prompt`.
pub fn reply_update(update_id: i64, from: i64, prompt: &FakeTelegramMessage, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": 1000 + update_id,
            "from": { "id": from, "is_bot": false, "first_name": "Someone" },
            "chat": { "id": prompt.chat_id, "type": "private" },
            "date": 1_767_225_601,
            "text": text,
            "reply_to_message": {
                "message_id": prompt.message_id,
                "from": { "id": FAKE_BOT_ID, "is_bot": true, "first_name": "Signoff" },
                "chat": { "id": prompt.chat_id, "type": "private" },
                "date": 1_767_225_600,
                "text": prompt.text,
            },
        }
    })
}

/// Posts `update` to a webhook as Telegram does: JSON, with the secret token header when `secret` is given.
pub fn deliver(
    http: &reqwest::Client,
    endpoint: &str,
    secret: Option<&str>,
    update: &Value,
) -> reqwest::RequestBuilder {
    let request = http.post(endpoint).header("content-type", "application/json").body(update.to_string());
    match secret {
        Some(secret) => request.header("x-telegram-bot-api-secret-token", secret),
        None => request,
    }
}
