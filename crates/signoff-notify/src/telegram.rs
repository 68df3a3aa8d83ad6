//! Telegram through the Bot API: the ask as a `sendMessage` to the approver's chat (HTML parse mode, every value
//! escaped) with an inline keyboard (Approve / Reject / Open; a question's options, or Answer); the message edited
//! with the outcome once the request moves on; reminders as replies to the ask; the forced replies that ask for a
//! rejection's reason or a question's answer; `setWebhook`; and the updates Telegram posts back, checked against
//! `X-Telegram-Bot-Api-Secret-Token`.
//!
//! Every call is `POST {api_url}/bot{token}/{method}` with a JSON body; Telegram answers `{"ok": true, "result"}` or
//! `{"ok": false, "error_code", "description", "parameters": {"retry_after"}}`. A `429` waits out `retry_after`;
//! `5xx` is transient; other errors (a chat that does not exist, a bot the person blocked, a bad token) permanent.
//!
//! `callback_data` is at most 64 bytes: `a:{request id}` (approve), `r:{id}` (reject), `q:{id}` (answer in text),
//! `o:{id}:{option index}` (answer with an option) — the request id (36 characters), never the request.

use crate::email::{details, heading, status_line};
use crate::{ProviderError, ProviderRef, RequestView};
use serde::Deserialize;
use serde_json::{Value, json};
use signoff_domain::{Kind, Request, RequestId, Status};
use std::fmt;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// How long one Bot API call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest text of a message, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// The longest `callback_data`, in bytes.
pub const MAX_CALLBACK_DATA: usize = 64;
/// The route Telegram posts updates to, below `SIGNOFF_PUBLIC_URL`.
pub const WEBHOOK_PATH: &str = "/channels/telegram/webhook";
/// What a forced reply asking for a reason says before the request id; the reply is matched to it.
const REASON_PROMPT: &str = "reason to reject request";
/// What a forced reply asking for an answer says before the request id.
const ANSWER_PROMPT: &str = "answer to request";

/// The bot's token, the webhook's secret token and the API's address.
#[derive(Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    /// `123456:ABC-…` from BotFather (`SIGNOFF_TELEGRAM_BOT_TOKEN`).
    pub bot_token: String,
    /// Sent by Telegram in `X-Telegram-Bot-Api-Secret-Token` with every update (`SIGNOFF_TELEGRAM_WEBHOOK_SECRET`).
    pub webhook_secret: String,
    /// `https://api.telegram.org` (`SIGNOFF_TELEGRAM_API_URL`).
    pub api_url: String,
}

impl fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("bot_token", &"<redacted>")
            .field("webhook_secret", &"<redacted>")
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl TelegramConfig {
    /// The bot's own user id: the digits before the token's `:`.
    pub fn bot_id(&self) -> Option<i64> {
        self.bot_token.split_once(':').and_then(|(id, _)| id.parse().ok())
    }
}

/// Whether `secret` is a valid webhook secret token: 1 to 256 of `A-Z a-z 0-9 _ -` (Telegram's rule).
pub fn valid_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why an update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("telegram_secret_missing: the update has no X-Telegram-Bot-Api-Secret-Token header")]
    Missing,
    #[error("telegram_secret_invalid: X-Telegram-Bot-Api-Secret-Token is not this bot's webhook secret")]
    Invalid,
}

impl SecretError {
    pub fn code(self) -> &'static str {
        match self {
            SecretError::Missing => "telegram_secret_missing",
            SecretError::Invalid => "telegram_secret_invalid",
        }
    }
}

/// Checks the secret token header, in constant time.
pub fn verify_secret(expected: &str, header: Option<&str>) -> Result<(), SecretError> {
    let header = header.filter(|h| !h.is_empty()).ok_or(SecretError::Missing)?;
    if bool::from(expected.as_bytes().ct_eq(header.as_bytes())) { Ok(()) } else { Err(SecretError::Invalid) }
}

/// A Bot API client for one bot. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct TelegramClient {
    http: reqwest::Client,
    bot_token: String,
    api_url: String,
}

impl fmt::Debug for TelegramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramClient").field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

impl TelegramClient {
    /// A client for `config`; refuses a token that is not `{bot id}:{secret}`.
    pub fn new(config: &TelegramConfig) -> Result<TelegramClient, ProviderError> {
        if config.bot_id().is_none() {
            return Err(ProviderError::permanent("telegram_token_invalid: a bot token reads `123456:ABC…`"));
        }
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::permanent(format!("telegram: cannot build the HTTP client: {e}")))?;
        Ok(TelegramClient {
            http,
            bot_token: config.bot_token.clone(),
            api_url: config.api_url.trim_end_matches('/').to_string(),
        })
    }

    /// A new message asking `chat_id` to decide (or answer) `request`. Returns `{chat id}:{message id}`.
    pub async fn send_request(
        &self,
        chat_id: &str,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        let body = json!({
            "chat_id": chat_id,
            "text": request_html(request, view),
            "parse_mode": "HTML",
            "reply_markup": keyboard(request, view),
            "link_preview_options": { "is_disabled": true },
        });
        message_ref(&self.call("sendMessage", &body).await?)
    }

    /// Replaces the message at `message` with the request's current state; the buttons go once it cannot be acted on.
    pub async fn update_request(
        &self,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<(), ProviderError> {
        let (chat_id, message_id) = split_ref(message)?;
        let body = json!({
            "chat_id": chat_id,
            "message_id": message_id,
            "text": request_html(request, view),
            "parse_mode": "HTML",
            "reply_markup": keyboard(request, view),
            "link_preview_options": { "is_disabled": true },
        });
        match self.call("editMessageText", &body).await {
            Ok(_) => Ok(()),
            // An edit to what the message already says: nothing to do.
            Err(error) if error.message.contains("message is not modified") => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// A reminder as a reply to the ask at `message`, with the buttons again. Returns where it lives.
    pub async fn send_reminder(
        &self,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        let (chat_id, message_id) = split_ref(message)?;
        let text = format!("<b>Reminder:</b> this still waits for you.\n\n{}", request_html(request, view));
        let body = json!({
            "chat_id": chat_id,
            "text": cut(&text, MAX_TEXT_CHARS),
            "parse_mode": "HTML",
            "reply_markup": keyboard(request, view),
            "reply_parameters": { "message_id": message_id, "allow_sending_without_reply": true },
            "link_preview_options": { "is_disabled": true },
        });
        message_ref(&self.call("sendMessage", &body).await?)
    }

    /// Answers a button press (the spinner stops); with `alert`, `text` is shown in a dialog.
    pub async fn answer_callback(&self, callback_id: &str, text: &str, alert: bool) -> Result<(), ProviderError> {
        let text: String = text.chars().take(200).collect();
        let body = json!({ "callback_query_id": callback_id, "text": text, "show_alert": alert });
        self.call("answerCallbackQuery", &body).await.map(drop)
    }

    /// Asks in `chat_id`, as a forced reply to the ask `reply_to`, for the reason to reject `request`.
    pub async fn ask_reason(&self, chat_id: i64, reply_to: i64, request: &Request) -> Result<(), ProviderError> {
        let mut text = format!("Signoff needs a {REASON_PROMPT} {}: reply to this message.", request.id);
        if !request.reject_reasons.is_empty() {
            text.push_str(&format!(" Start with a reason's number: {}.", numbered(&request.reject_reasons)));
        }
        self.force_reply(chat_id, reply_to, &text, "Why reject?").await
    }

    /// Asks in `chat_id`, as a forced reply to the ask `reply_to`, for the answer to the question `request`.
    pub async fn ask_answer(&self, chat_id: i64, reply_to: i64, request: &Request) -> Result<(), ProviderError> {
        let text = format!("Signoff needs an {ANSWER_PROMPT} {}: reply to this message.", request.id);
        self.force_reply(chat_id, reply_to, &text, "Your answer").await
    }

    /// A plain message to `chat_id` (what a reply did, or why it did nothing).
    pub async fn say(&self, chat_id: i64, text: &str) -> Result<(), ProviderError> {
        let body = json!({ "chat_id": chat_id, "text": cut(text, MAX_TEXT_CHARS) });
        self.call("sendMessage", &body).await.map(drop)
    }

    /// Points the bot's webhook at `url`, with `secret` as its secret token, for messages and button presses.
    pub async fn set_webhook(&self, url: &str, secret: &str) -> Result<(), ProviderError> {
        let body = json!({
            "url": url,
            "secret_token": secret,
            "allowed_updates": ["message", "callback_query"],
        });
        self.call("setWebhook", &body).await.map(drop)
    }

    /// A message that checks the wiring (`signoff channels test telegram --to CHAT_ID`). Returns where it lives.
    pub async fn send_test(&self, chat_id: &str) -> Result<ProviderRef, ProviderError> {
        let body = json!({ "chat_id": chat_id, "text": "This is a test message from Signoff: Telegram notifications reach this chat." });
        message_ref(&self.call("sendMessage", &body).await?)
    }

    async fn force_reply(
        &self,
        chat_id: i64,
        reply_to: i64,
        text: &str,
        placeholder: &str,
    ) -> Result<(), ProviderError> {
        let body = json!({
            "chat_id": chat_id,
            "text": text,
            "reply_parameters": { "message_id": reply_to, "allow_sending_without_reply": true },
            "reply_markup": { "force_reply": true, "input_field_placeholder": placeholder },
        });
        self.call("sendMessage", &body).await.map(drop)
    }

    async fn call(&self, method: &str, body: &Value) -> Result<Value, ProviderError> {
        let response = self
            .http
            .post(format!("{}/bot{}/{method}", self.api_url, self.bot_token))
            .json(body)
            .send()
            .await
            // The URL holds the token: never in an error.
            .map_err(|e| ProviderError::transient(format!("telegram {method}: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| {
            ProviderError::transient(format!("telegram {method}: reading the answer: {}", e.without_url()))
        })?;
        classify(method, status, &bytes)
    }
}

/// Reads the Bot API's answer to `method` (see the module documentation); returns its `result`.
pub fn classify(method: &str, status: u16, body: &[u8]) -> Result<Value, ProviderError> {
    let answer: Option<Value> = serde_json::from_slice(body).ok();
    let ok = answer.as_ref().and_then(|a| a["ok"].as_bool());
    if (200..300).contains(&status) && ok == Some(true) {
        return Ok(answer.map(|mut a| a["result"].take()).unwrap_or(Value::Null));
    }
    let Some(answer) = answer.filter(|_| ok == Some(false)) else {
        let message = format!("telegram {method}: HTTP {status}, not a Bot API answer");
        return Err(if status >= 500 || status == 429 || (200..300).contains(&status) {
            ProviderError::transient(message)
        } else {
            ProviderError::permanent(message)
        });
    };
    let code = answer["error_code"].as_u64().unwrap_or(u64::from(status));
    let description: String = answer["description"].as_str().unwrap_or("").chars().take(200).collect();
    let message = format!("telegram {method}: {code} {description}");
    match code {
        429 => {
            let retry_after = answer["parameters"]["retry_after"].as_u64().map(Duration::from_secs);
            Err(ProviderError { message, retry_after, permanent: false })
        }
        500.. => Err(ProviderError::transient(message)),
        _ => Err(ProviderError::permanent(message)),
    }
}

fn message_ref(result: &Value) -> Result<ProviderRef, ProviderError> {
    match (result["chat"]["id"].as_i64(), result["message_id"].as_i64()) {
        (Some(chat), Some(message)) => Ok(format!("{chat}:{message}")),
        _ => Err(ProviderError::transient("telegram: the answer has no `chat.id` and `message_id`")),
    }
}

fn split_ref(message: &str) -> Result<(i64, i64), ProviderError> {
    let parsed = message.split_once(':').and_then(|(chat, id)| Some((chat.parse().ok()?, id.parse().ok()?)));
    parsed.ok_or_else(|| ProviderError::permanent(format!("telegram: `{message}` is not a `chat:message` reference")))
}

/// Escapes text for Telegram's HTML parse mode: `&`, `<`, `>` and `"`.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The message: the ask (or the question) in bold, the details, and the request's state once it moved on.
pub fn request_html(request: &Request, view: &RequestView) -> String {
    let mut text = format!("<b>{}</b>\n", escape(&cut(&heading(request), 300)));
    for detail in details(request, view) {
        let value = cut(&detail.value, 600);
        if value.contains('\n') {
            text.push_str(&format!("\n<b>{}</b>\n<pre>{}</pre>", detail.label, escape(&value)));
        } else {
            text.push_str(&format!("\n<b>{}:</b> {}", detail.label, escape(&value)));
        }
    }
    if !actionable(request, view) || !request.approvals.is_empty() {
        text.push_str(&format!("\n\n<b>{}</b>", escape(&status_line(request, view))));
    }
    // Cut on the text, not the markup, would break a tag: when too long, drop the details instead.
    if text.chars().count() > MAX_TEXT_CHARS {
        text = format!("<b>{}</b>\n\n{}", escape(&cut(&heading(request), 300)), escape(&status_line(request, view)));
    }
    text
}

/// Whether the message still offers its buttons: the request waits, on this message's group.
fn actionable(request: &Request, view: &RequestView) -> bool {
    request.status == Status::Pending && view.moved_to.is_none()
}

/// The inline keyboard: Approve and Reject (a question: its options, or Answer) while the request can be acted on,
/// and Open (the dashboard) always.
pub fn keyboard(request: &Request, view: &RequestView) -> Value {
    let open = json!({ "text": "Open", "url": format!("{}/requests/{}", view.public_url, request.id) });
    let mut rows: Vec<Value> = Vec::new();
    if actionable(request, view) {
        let id = request.id;
        match request.kind {
            Kind::Approval => rows.push(json!([
                { "text": "Approve", "callback_data": Callback::Approve(id).data() },
                { "text": "Reject", "callback_data": Callback::Reject(id).data() },
            ])),
            Kind::Question if request.options.is_empty() => {
                rows.push(json!([{ "text": "Answer", "callback_data": Callback::Answer(id).data() }]))
            }
            Kind::Question => {
                for (index, option) in request.options.iter().enumerate().take(20) {
                    let text = cut(option, 60);
                    rows.push(json!([{ "text": text, "callback_data": Callback::Option(id, index).data() }]));
                }
            }
        }
    }
    rows.push(json!([open]));
    json!({ "inline_keyboard": rows })
}

/// What a button press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    Approve(RequestId),
    Reject(RequestId),
    /// Answer a question in text (a forced reply).
    Answer(RequestId),
    /// Answer a question with its option at this index.
    Option(RequestId, usize),
}

impl Callback {
    /// Its `callback_data` (never over [`MAX_CALLBACK_DATA`] bytes).
    pub fn data(self) -> String {
        match self {
            Callback::Approve(id) => format!("a:{id}"),
            Callback::Reject(id) => format!("r:{id}"),
            Callback::Answer(id) => format!("q:{id}"),
            Callback::Option(id, index) => format!("o:{id}:{index}"),
        }
    }

    /// Reads `callback_data`; `None` when it is not one of ours.
    pub fn parse(data: &str) -> Option<Callback> {
        if data.len() > MAX_CALLBACK_DATA {
            return None;
        }
        let (verb, rest) = data.split_once(':')?;
        match verb {
            "a" => Some(Callback::Approve(rest.parse().ok()?)),
            "r" => Some(Callback::Reject(rest.parse().ok()?)),
            "q" => Some(Callback::Answer(rest.parse().ok()?)),
            "o" => {
                let (id, index) = rest.split_once(':')?;
                Some(Callback::Option(id.parse().ok()?, index.parse().ok()?))
            }
            _ => None,
        }
    }

    pub fn request_id(self) -> RequestId {
        match self {
            Callback::Approve(id) | Callback::Reject(id) | Callback::Answer(id) | Callback::Option(id, _) => id,
        }
    }
}

/// An update Telegram posts to the webhook (the parts Signoff reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Update {
    pub update_id: i64,
    pub message: Option<Message>,
    pub callback_query: Option<CallbackQuery>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    pub message_id: i64,
    pub chat: Chat,
    pub from: Option<User>,
    pub text: Option<String>,
    pub reply_to_message: Option<Box<Message>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Chat {
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallbackQuery {
    pub id: String,
    pub from: User,
    pub message: Option<Message>,
    pub data: Option<String>,
}

/// Reads an update's JSON.
pub fn parse_update(body: &[u8]) -> Result<Update, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a Telegram update: {e}"))
}

/// What a reply to one of the bot's forced replies is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompted {
    /// The reason to reject this request.
    Reason(RequestId),
    /// The answer to this question.
    Answer(RequestId),
}

/// When `message` replies to a prompt the bot `bot_id` sent ([`TelegramClient::ask_reason`],
/// [`TelegramClient::ask_answer`]), what the prompt asked for.
pub fn prompted(message: &Message, bot_id: i64) -> Option<Prompted> {
    let prompt = message.reply_to_message.as_deref()?;
    if prompt.from.as_ref().map(|from| from.id) != Some(bot_id) {
        return None;
    }
    let text = prompt.text.as_deref()?;
    let id_after = |marker: &str| -> Option<RequestId> {
        let rest = &text[text.find(marker)? + marker.len()..];
        rest.trim_start().split(|c: char| c == ':' || c.is_whitespace()).next()?.parse().ok()
    };
    id_after(REASON_PROMPT).map(Prompted::Reason).or_else(|| id_after(ANSWER_PROMPT).map(Prompted::Answer))
}

/// `1 Basic, 2 Pro`.
fn numbered(choices: &[String]) -> String {
    choices.iter().enumerate().map(|(i, c)| format!("{} {c}", i + 1)).collect::<Vec<_>>().join(", ")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_data_round_trips_and_fits_64_bytes() {
        let id = RequestId::new();
        for callback in [Callback::Approve(id), Callback::Reject(id), Callback::Answer(id), Callback::Option(id, 19)] {
            let data = callback.data();
            assert!(data.len() <= MAX_CALLBACK_DATA, "{data}");
            assert_eq!(Callback::parse(&data), Some(callback));
        }
        for garbage in ["", "a", "a:", "x:1", "a:not-a-uuid", "o:1:2", &format!("o:{id}:x"), &"a".repeat(65)] {
            assert_eq!(Callback::parse(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn the_secret_token_is_checked_and_validated() {
        assert_eq!(verify_secret("s3cret", Some("s3cret")), Ok(()));
        assert_eq!(verify_secret("s3cret", Some("s3cre")), Err(SecretError::Invalid));
        assert_eq!(verify_secret("s3cret", Some("")), Err(SecretError::Missing));
        assert_eq!(verify_secret("s3cret", None), Err(SecretError::Missing));
        assert!(valid_secret("abc_DEF-123"));
        assert!(!valid_secret("") && !valid_secret("has space") && !valid_secret(&"a".repeat(257)));
    }

    #[test]
    fn bot_api_errors_are_classified() {
        let limited = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        let error = classify("sendMessage", 429, limited).unwrap_err();
        assert!(!error.permanent && error.retry_after == Some(Duration::from_secs(7)), "{error:?}");
        let blocked = br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#;
        assert!(classify("sendMessage", 403, blocked).unwrap_err().permanent);
        assert!(!classify("sendMessage", 502, b"<html>").unwrap_err().permanent);
        let ok = br#"{"ok":true,"result":{"message_id":5,"chat":{"id":42}}}"#;
        assert_eq!(message_ref(&classify("sendMessage", 200, ok).unwrap()).unwrap(), "42:5");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape(r#"<b>"Tom & Jerry"</b>"#), "&lt;b&gt;&quot;Tom &amp; Jerry&quot;&lt;/b&gt;");
    }

    #[test]
    fn a_reply_is_matched_to_the_bots_own_prompt_only() {
        let id = RequestId::new();
        let prompt = |from: i64, text: String| Message {
            message_id: 2,
            chat: Chat { id: 7 },
            from: Some(User { id: 99, is_bot: false }),
            text: Some("too big".into()),
            reply_to_message: Some(Box::new(Message {
                message_id: 1,
                chat: Chat { id: 7 },
                from: Some(User { id: from, is_bot: true }),
                text: Some(text),
                reply_to_message: None,
            })),
        };
        let reason = format!("Signoff needs a {REASON_PROMPT} {id}: reply to this message.");
        assert_eq!(prompted(&prompt(1234, reason.clone()), 1234), Some(Prompted::Reason(id)));
        assert_eq!(prompted(&prompt(5678, reason), 1234), None, "another bot's message");
        let answer = format!("Signoff needs an {ANSWER_PROMPT} {id}: reply to this message.");
        assert_eq!(prompted(&prompt(1234, answer), 1234), Some(Prompted::Answer(id)));
        assert_eq!(prompted(&prompt(1234, "hello".into()), 1234), None);
    }
}
