//! Discord: the REST calls that ask people to decide (a DM opened with `POST /users/@me/channels`, or a post in a
//! guild channel, with `POST /channels/{id}/messages`; edits with `PATCH`; reminders as replies), the embed and
//! button rendering of a request, the Ed25519 check of the interactions Discord posts to the app's endpoint, and the
//! interaction payloads and responses (PONG, `UPDATE_MESSAGE`, `MODAL`, ephemeral messages).

use crate::{ProviderError, ProviderRef, RequestView};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::{Value, json};
use signoff_domain::{DecidedBy, DecisionOutcome, Kind, Request, RequestId, Status};
use std::collections::HashMap;
use std::time::Duration;

/// Discord's REST API, where `api_url` points unless configured otherwise.
pub const DEFAULT_API_URL: &str = "https://discord.com/api/v10";
/// How far an interaction's `X-Signature-Timestamp` may be from now, in seconds, before it is refused as a replay.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 5 * 60;
/// The input `custom_id`s of the modals.
pub const INPUT_REASON: &str = "reason";
pub const INPUT_COMMENT: &str = "comment";
pub const INPUT_ANSWER: &str = "answer";
/// `flags` of a message only the person who clicked sees.
pub const EPHEMERAL: u64 = 1 << 6;

/// Time allowed for one call to Discord.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Discord's limits: a message's content, an embed's title and field value, a button's label, a `custom_id`, a
/// modal's title and a text input's placeholder and value. An embed's description and footer are kept shorter than
/// Discord allows (4096, 2048) so that a whole embed stays within its 6000 characters.
const CONTENT_MAX: usize = 2000;
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 1500;
const FIELD_MAX: usize = 1024;
const FOOTER_MAX: usize = 1000;
const LABEL_MAX: usize = 80;
pub const CUSTOM_ID_MAX: usize = 100;
const MODAL_TITLE_MAX: usize = 45;
const PLACEHOLDER_MAX: usize = 100;
const INPUT_MAX: usize = 4000;
/// Buttons in one action row, and action rows in one message.
const ROW_MAX: usize = 5;
/// Message components: an action row, a button, a text input. Button styles: primary, secondary, success, danger,
/// link. Text input styles: one line, a paragraph.
const ACTION_ROW: u8 = 1;
const BUTTON: u8 = 2;
const TEXT_INPUT: u8 = 4;
const PRIMARY: u8 = 1;
const SECONDARY: u8 = 2;
const SUCCESS: u8 = 3;
const DANGER: u8 = 4;
const LINK: u8 = 5;
const SHORT: u8 = 1;
const PARAGRAPH: u8 = 2;
/// Embed colours: waiting (blurple), approved or answered (green), rejected (red), anything else (grey).
const WAITING: u32 = 0x5865F2;
const GREEN: u32 = 0x57F287;
const RED: u32 = 0xED4245;
const GREY: u32 = 0x99AAB5;
/// Discord asks bots to say who they are: `DiscordBot ($url, $version)`.
const USER_AGENT: &str = concat!("DiscordBot (signoff, ", env!("CARGO_PKG_VERSION"), ")");

/// The application's public key (`SIGNOFF_DISCORD_APPLICATION_PUBLIC_KEY`, 64 hex digits): it checks the signature
/// of every interaction Discord sends.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads the key as the Developer Portal shows it (**General Information → Public Key**).
    pub fn from_hex(text: &str) -> Result<PublicKey, String> {
        let bytes = hex::decode(text.trim()).map_err(|_| "the Discord public key is not hexadecimal".to_string())?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| "the Discord public key is not 32 bytes (64 hex digits)".to_string())?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| "the Discord public key is not a valid Ed25519 key".to_string())
    }

    pub fn from_key(key: VerifyingKey) -> PublicKey {
        PublicKey(key)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// How Signoff reaches Discord: the bot token it calls the REST API with, the application's public key that signs
/// interactions, and the API's base URL (no trailing slash).
#[derive(Clone, PartialEq, Eq)]
pub struct DiscordConfig {
    pub bot_token: String,
    pub public_key: PublicKey,
    /// [`DEFAULT_API_URL`] unless pointed elsewhere (a test double).
    pub api_url: String,
}

impl std::fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("bot_token", &"<redacted>")
            .field("public_key", &self.public_key)
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// Where a message goes: a person's DM (by their user id), or a guild channel (by its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient<'a> {
    User(&'a str),
    Channel(&'a str),
}

/// A Discord REST client for one bot token.
#[derive(Clone)]
pub struct DiscordClient {
    http: reqwest::Client,
    bot_token: String,
    api_url: String,
}

impl std::fmt::Debug for DiscordClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordClient").field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

impl DiscordClient {
    pub fn new(config: &DiscordConfig) -> Result<DiscordClient, ProviderError> {
        if config.bot_token.trim().is_empty() {
            return Err(ProviderError::permanent("discord: no bot token is configured"));
        }
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| ProviderError::permanent(format!("discord: cannot build the HTTP client: {e}")))?;
        Ok(DiscordClient {
            http,
            bot_token: config.bot_token.clone(),
            api_url: config.api_url.trim_end_matches('/').to_string(),
        })
    }

    /// A new message asking `to` to decide `request`. Returns `{channel id}:{message id}`.
    pub async fn post_request(
        &self,
        to: Recipient<'_>,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        let channel = self.channel_of(to).await?;
        self.post(&channel, &message(request, view)).await
    }

    /// Edits an earlier message to show the request's current state (outcome, quorum progress, moved); the buttons
    /// go once it no longer waits on this message's group.
    pub async fn update_request(
        &self,
        message_ref: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<(), ProviderError> {
        let (channel, id) = split_ref(message_ref)?;
        let path = format!("/channels/{channel}/messages/{id}");
        let body = message(request, view);
        self.call(reqwest::Method::PATCH, &path, "PATCH /channels/{id}/messages/{id}", Some(&body)).await.map(drop)
    }

    /// A reminder replying to the ask at `message_ref`: the request still waits, with its deadline; the buttons
    /// stay on the ask. Returns where the reminder lives.
    pub async fn post_reminder(
        &self,
        message_ref: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        let (channel, id) = split_ref(message_ref)?;
        let body = json!({
            "content": reminder_text(request, view),
            "message_reference": { "message_id": id, "channel_id": channel, "fail_if_not_exists": false },
            "allowed_mentions": { "parse": [] },
        });
        self.post(channel, &body).await
    }

    /// A plain message that checks the wiring (`signoff channels test discord --to USER_ID`), sent as a DM.
    pub async fn post_test(&self, user_id: &str) -> Result<ProviderRef, ProviderError> {
        let channel = self.channel_of(Recipient::User(user_id)).await?;
        let content = "This is a test message from Signoff: Discord notifications reach you here.";
        self.post(&channel, &json!({ "content": content, "allowed_mentions": { "parse": [] } })).await
    }

    /// The channel a message to `to` goes in: a guild channel as it is, a person's DM opened (or found) first.
    async fn channel_of(&self, to: Recipient<'_>) -> Result<String, ProviderError> {
        match to {
            Recipient::Channel(channel) => Ok(snowflake(channel, "channel")?.to_string()),
            Recipient::User(user) => {
                let body = json!({ "recipient_id": snowflake(user, "user")? });
                let answer =
                    self.call(reqwest::Method::POST, "/users/@me/channels", "POST /users/@me/channels", Some(&body));
                match answer.await?["id"].as_str() {
                    Some(id) => Ok(id.to_string()),
                    None => Err(ProviderError::transient("discord POST /users/@me/channels: the answer has no `id`")),
                }
            }
        }
    }

    async fn post(&self, channel: &str, body: &Value) -> Result<ProviderRef, ProviderError> {
        let channel = snowflake(channel, "channel")?;
        let path = format!("/channels/{channel}/messages");
        let answer = self.call(reqwest::Method::POST, &path, "POST /channels/{id}/messages", Some(body)).await?;
        match answer["id"].as_str() {
            Some(id) => Ok(format!("{channel}:{id}")),
            None => Err(ProviderError::transient("discord POST /channels/{id}/messages: the answer has no `id`")),
        }
    }

    /// One REST call: `{method} {api_url}{path}` with the bot token and a JSON body; Discord's answer, or why it
    /// failed. `label` names the call in errors without ids.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        label: &str,
        body: Option<&Value>,
    ) -> Result<Value, ProviderError> {
        let mut call = self
            .http
            .request(method, format!("{}{path}", self.api_url))
            .header(reqwest::header::AUTHORIZATION, format!("Bot {}", self.bot_token));
        if let Some(body) = body {
            call = call.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let response =
            call.send().await.map_err(|e| ProviderError::transient(format!("discord {label}: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = response.bytes().await.map_err(|e| {
            ProviderError::transient(format!("discord {label}: reading the answer: {}", e.without_url()))
        })?;
        classify(label, status, retry_after.as_deref(), &bytes)
    }
}

/// `id` if it is a Discord snowflake (digits only), so it can go in a path.
fn snowflake<'a>(id: &'a str, what: &str) -> Result<&'a str, ProviderError> {
    if (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(ProviderError::permanent(format!("discord: `{id}` is not a {what} id (a Discord id is digits only)")))
    }
}

fn split_ref(message_ref: &str) -> Result<(&str, &str), ProviderError> {
    let not_a_ref =
        || ProviderError::permanent(format!("discord: `{message_ref}` is not a `channel:message` reference"));
    let (channel, id) = message_ref.split_once(':').ok_or_else(not_a_ref)?;
    Ok((snowflake(channel, "channel").map_err(|_| not_a_ref())?, snowflake(id, "message").map_err(|_| not_a_ref())?))
}

/// Discord's `429` body.
#[derive(Deserialize)]
struct RateLimited {
    retry_after: f64,
    #[serde(default)]
    global: bool,
}

/// Discord's error body: `{"code": 50007, "message": "Cannot send messages to this user"}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: u64,
    #[serde(default)]
    message: String,
}

/// Reads Discord's answer to `label`: a `2xx` is the answer (`null` when empty); `429` waits as its body's
/// `retry_after` says (seconds, fractions too), else the `Retry-After` header; `5xx`, `408` and unreadable answers
/// are transient; any other status is permanent, with Discord's error code and message.
pub fn classify(label: &str, status: u16, retry_after: Option<&str>, body: &[u8]) -> Result<Value, ProviderError> {
    if status == 429 {
        let limited = serde_json::from_slice::<RateLimited>(body).ok();
        let seconds = limited.as_ref().map(|l| l.retry_after).or_else(|| retry_after?.trim().parse::<f64>().ok());
        let scope = if limited.as_ref().is_some_and(|l| l.global) { ", global" } else { "" };
        return Err(ProviderError {
            message: format!("discord {label}: rate limited (429{scope})"),
            retry_after: seconds.and_then(|s| Duration::try_from_secs_f64(s).ok()),
            permanent: false,
        });
    }
    if status >= 500 || status == 408 {
        return Err(ProviderError::transient(format!("discord {label}: HTTP {status}")));
    }
    if (200..300).contains(&status) {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(body)
            .map_err(|_| ProviderError::transient(format!("discord {label}: the answer is not JSON")));
    }
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => {
            let text: String = error.message.chars().filter(|c| !c.is_control()).take(200).collect();
            format!("discord {label}: HTTP {status}, error {}: {text}", error.code)
        }
        Err(_) => format!("discord {label}: HTTP {status}"),
    };
    Err(ProviderError::permanent(message))
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

/// Escapes the characters Discord's markdown reads as markup, so an agent's text shows as written.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '<' | '@') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Escaped, then cut to `max` characters (an ellipsis included) without splitting an escape.
fn escape_within(text: &str, max: usize) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let (mut cut, mut length) = (String::new(), 0);
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut [0; 4]));
        length += piece.chars().count();
        if length > max.saturating_sub(1) {
            break;
        }
        cut.push_str(&piece);
    }
    cut.push('…');
    cut
}

fn time(at: &DateTime<Utc>) -> String {
    at.format("%H:%M UTC").to_string()
}

fn title(request: &Request) -> &str {
    let question = request.question.as_deref().filter(|_| request.kind == Kind::Question);
    question.or(request.summary.as_deref().filter(|s| !s.trim().is_empty())).unwrap_or(&request.action)
}

fn rule(request: &Request) -> &str {
    request.policy.as_ref().and_then(|p| p.rule.as_deref()).unwrap_or("defaults")
}

/// Whether the message still offers its buttons: the request waits, and still on this message's group.
fn actionable(request: &Request, view: &RequestView) -> bool {
    request.status == Status::Pending && view.moved_to.is_none()
}

/// What the message says about the request's state: the outcome once decided, where it went once moved, quorum
/// progress while it waits with approvals. `None`: pending, nothing to add. Plain text (a footer shows no markdown).
pub fn status_line(request: &Request, view: &RequestView) -> Option<String> {
    if let Some(decision) = &request.decision {
        let outcome = match decision.outcome {
            DecisionOutcome::Approved => "Approved",
            DecisionOutcome::Rejected => "Rejected",
            DecisionOutcome::Expired => "Expired",
            DecisionOutcome::Cancelled => "Cancelled",
            DecisionOutcome::Answered => "Answered",
        };
        let mut line = match (&decision.by, decision.outcome) {
            (DecidedBy::Timeout, DecisionOutcome::Expired) => "Expired: no decision before the deadline".to_string(),
            (DecidedBy::Timeout, _) => {
                format!("{outcome} at the deadline ({}), as the policy says", time(&decision.at))
            }
            (DecidedBy::Agent { .. }, DecisionOutcome::Cancelled) => "Cancelled by the agent".to_string(),
            (DecidedBy::Agent { .. }, _) => format!("{outcome} by the agent at {}", time(&decision.at)),
            (DecidedBy::Policy { rule }, _) => format!("{outcome} by policy rule {rule} at {}", time(&decision.at)),
            (DecidedBy::Grant { grant_id, approver_id }, _) => format!(
                "{outcome} by standing grant {grant_id} of {} at {}",
                view.name_of(approver_id),
                time(&decision.at)
            ),
            (DecidedBy::Human { approver_id, .. }, _) => {
                format!("{outcome} by {} at {}", view.name_of(approver_id), time(&decision.at))
            }
        };
        if decision.edited {
            line.push_str(" (arguments edited)");
        }
        if let Some(answer) = &decision.answer {
            line.push_str(&format!(": “{}”", truncate(answer, 500)));
        }
        if let Some(reason) = &decision.reason {
            line.push_str(&format!(" (reason: {})", truncate(reason, 200)));
        }
        if decision.outcome == DecisionOutcome::Rejected
            && let Some(comment) = &decision.comment
        {
            line.push_str(&format!(": {}", truncate(comment, 1000)));
        }
        return Some(line);
    }
    if request.status.is_final() {
        return Some(format!("This request is {}", request.status.as_str()));
    }
    if let Some(group) = &view.moved_to {
        return Some(format!("Moved to {group} (escalated)"));
    }
    if request.approvals.is_empty() {
        return None;
    }
    let names: Vec<&str> = request.approvals.iter().map(|a| view.name_of(&a.approver_id)).collect();
    Some(format!("{} of {} approvals: {}", request.approvals.len(), request.approvals_required, names.join(", ")))
}

/// The message's content line (what notifications and previews show): what is asked, and how it ended.
pub fn message_text(request: &Request, view: &RequestView) -> String {
    let ask = match request.kind {
        Kind::Question => "Question",
        Kind::Approval => "Approval needed",
    };
    let title = escape_within(title(request), 300);
    let text = match status_line(request, view) {
        Some(status) if !actionable(request, view) => format!("{title}: {}", escape_within(&status, 1500)),
        Some(status) => format!("{ask}: {title}. {}", escape_within(&status, 1500)),
        None => format!("{ask}: {title}"),
    };
    truncate(&text, CONTENT_MAX)
}

/// A reminder's text: what still waits, the quorum so far, and when the deadline falls.
pub fn reminder_text(request: &Request, view: &RequestView) -> String {
    let mut text = format!("Reminder: **{}** still waits for your decision", escape_within(title(request), 300));
    if let Some(status) = status_line(request, view) {
        text.push_str(&format!(" ({})", escape_within(&status, 1000)));
    }
    if let Some(deadline) = request.deadline_at {
        text.push_str(&format!(". Deadline: <t:{}:f>", deadline.timestamp()));
    }
    text.push_str(&format!(". Open in the dashboard: <{}/requests/{}>", view.public_url, request.id));
    truncate(&text, CONTENT_MAX)
}

/// The arguments in a code block, one line per top-level field, cut to fit an embed field.
fn args_block(args: &Value) -> String {
    // Inside a code block only a closing fence is markup: break any in the text.
    let text = crate::slack::format_args(args).replace("```", "`\u{200b}``");
    format!("```\n{}\n```", truncate(&text, FIELD_MAX - 10))
}

fn field(name: &str, value: String, inline: bool) -> Value {
    json!({ "name": name, "value": value, "inline": inline })
}

/// The embed of a message about `request`: what it asks (linking to the dashboard), the reasoning, the action,
/// rule, deadline, quorum, confidence, tags and arguments, and a footer saying how it stands.
pub fn embed(request: &Request, view: &RequestView) -> Value {
    let deadline = request.deadline_at.map_or("none".to_string(), |at| format!("<t:{}:f>", at.timestamp()));
    let mut fields = vec![
        field("Action", format!("`{}`", truncate(&request.action, 200).replace('`', "'")), true),
        field("Rule", escape_within(rule(request), 100), true),
        field("Deadline", deadline, true),
        field("Approvals", format!("{} of {}", request.approvals.len(), request.approvals_required), true),
    ];
    if let Some(confidence) = request.confidence {
        fields.push(field("Confidence", format!("{confidence:.2}"), true));
    }
    if !request.tags.is_empty() {
        fields.push(field("Tags", escape_within(&request.tags.join(", "), 200), true));
    }
    if request.kind == Kind::Question && !request.options.is_empty() {
        let options: Vec<String> = request.options.iter().enumerate().map(|(i, o)| format!("{}. {o}", i + 1)).collect();
        fields.push(field("Options", escape_within(&options.join("\n"), FIELD_MAX), false));
    }
    fields.push(field("Arguments", args_block(&request.args), false));
    let color = match request.status {
        Status::Pending if view.moved_to.is_none() => WAITING,
        Status::Approved | Status::Answered => GREEN,
        Status::Rejected => RED,
        _ => GREY,
    };
    let mut embed = json!({
        "title": escape_within(title(request), TITLE_MAX),
        "url": format!("{}/requests/{}", view.public_url, request.id),
        "color": color,
        "fields": fields,
    });
    // A question longer than a title is shown whole (as far as it fits) above the reasoning.
    let mut description = Vec::new();
    if request.kind == Kind::Question && title(request).chars().count() > TITLE_MAX {
        description.push(escape_within(title(request), DESCRIPTION_MAX / 2));
    }
    if let Some(reasoning) = request.reasoning.as_deref().filter(|r| !r.trim().is_empty()) {
        let room = DESCRIPTION_MAX - description.first().map_or(0, |question| question.chars().count() + 2);
        description.push(escape_within(reasoning, room));
    }
    if !description.is_empty() {
        embed["description"] = json!(description.join("\n\n"));
    }
    if let Some(status) = status_line(request, view) {
        embed["footer"] = json!({ "text": truncate(&status, FOOTER_MAX) });
    }
    embed
}

fn button(label: &str, style: u8, custom_id: String) -> Value {
    json!({ "type": BUTTON, "style": style, "label": truncate(label, LABEL_MAX), "custom_id": custom_id })
}

/// The buttons of a message about `request`, in action rows: Approve and Reject (an approval), one per option or
/// Answer (a question), and a link to the dashboard; none once it no longer waits on this message's group.
pub fn components(request: &Request, view: &RequestView) -> Value {
    if !actionable(request, view) {
        return json!([]);
    }
    let id = request.id;
    let mut buttons = match request.kind {
        Kind::Approval => vec![
            button("Approve", SUCCESS, Button::Approve(id).custom_id()),
            button("Reject", DANGER, Button::Reject(id).custom_id()),
        ],
        Kind::Question if request.options.is_empty() => vec![button("Answer", PRIMARY, Button::Answer(id).custom_id())],
        // Five rows of five buttons, the dashboard link taking one.
        Kind::Question => (request.options.iter().enumerate().take(ROW_MAX * ROW_MAX - 1))
            .map(|(i, option)| button(option, SECONDARY, Button::AnswerOption(id, i).custom_id()))
            .collect(),
    };
    let dashboard = format!("{}/requests/{id}", view.public_url);
    buttons.push(json!({ "type": BUTTON, "style": LINK, "label": "Open", "url": dashboard }));
    let rows: Vec<Value> =
        buttons.chunks(ROW_MAX).map(|row| json!({ "type": ACTION_ROW, "components": row })).collect();
    Value::Array(rows)
}

/// A whole message about `request`: its content line, embed and buttons, mentioning nobody.
pub fn message(request: &Request, view: &RequestView) -> Value {
    json!({
        "content": message_text(request, view),
        "embeds": [embed(request, view)],
        "components": components(request, view),
        "allowed_mentions": { "parse": [] },
    })
}

/// A required text input in its own action row.
fn text_input(custom_id: &str, label: &str, style: u8, placeholder: &str) -> Value {
    let input = json!({
        "type": TEXT_INPUT, "custom_id": custom_id, "label": label, "style": style, "required": true,
        "min_length": 1, "max_length": INPUT_MAX, "placeholder": truncate(placeholder, PLACEHOLDER_MAX),
    });
    json!({ "type": ACTION_ROW, "components": [input] })
}

/// The modal **Reject** opens: a reason (one of the request's reject reasons, by name or number, when it has any)
/// and a required comment.
pub fn reject_modal(request: &Request) -> Value {
    let mut inputs = Vec::new();
    if !request.reject_reasons.is_empty() {
        let listed: Vec<String> =
            request.reject_reasons.iter().enumerate().map(|(i, r)| format!("{} {r}", i + 1)).collect();
        let placeholder = format!("One of: {}", listed.join(", "));
        inputs.push(text_input(INPUT_REASON, "Reason (its name or number)", SHORT, &placeholder));
    }
    let hint = "Say why; the agent and the audit log get it.";
    inputs.push(text_input(INPUT_COMMENT, "Comment", PARAGRAPH, hint));
    json!({
        "custom_id": Modal::Reject(request.id).custom_id(),
        "title": truncate(&format!("Reject: {}", title(request)), MODAL_TITLE_MAX),
        "components": inputs,
    })
}

/// The modal a question's **Answer** button opens: a required answer.
pub fn answer_modal(request: &Request) -> Value {
    json!({
        "custom_id": Modal::Answer(request.id).custom_id(),
        "title": truncate(&format!("Answer: {}", title(request)), MODAL_TITLE_MAX),
        "components": [text_input(INPUT_ANSWER, "Your answer", PARAGRAPH, title(request))],
    })
}

/// The request's reject reason `given` names: its text (case aside) or its number in the list, from 1.
pub fn match_reason(reasons: &[String], given: &str) -> Option<String> {
    let given = given.trim();
    if let Ok(number) = given.parse::<usize>() {
        return number.checked_sub(1).and_then(|i| reasons.get(i)).cloned();
    }
    reasons.iter().find(|reason| reason.trim().eq_ignore_ascii_case(given)).cloned()
}

// ---------------------------------------------------------------------------------------------------------------
// Custom ids: what a button or modal is about

/// A button of a request message, as its `custom_id` says: `approve:{id}`, `reject:{id}`, `answer:{id}` or
/// `option:{id}:{index}` (at most 51 characters; Discord allows 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Approve(RequestId),
    Reject(RequestId),
    Answer(RequestId),
    AnswerOption(RequestId, usize),
}

impl Button {
    pub fn custom_id(&self) -> String {
        match self {
            Button::Approve(id) => format!("approve:{id}"),
            Button::Reject(id) => format!("reject:{id}"),
            Button::Answer(id) => format!("answer:{id}"),
            Button::AnswerOption(id, index) => format!("option:{id}:{index}"),
        }
    }

    pub fn parse(custom_id: &str) -> Option<Button> {
        let (kind, rest) = custom_id.split_once(':')?;
        match kind {
            "approve" => Some(Button::Approve(rest.parse().ok()?)),
            "reject" => Some(Button::Reject(rest.parse().ok()?)),
            "answer" => Some(Button::Answer(rest.parse().ok()?)),
            "option" => {
                let (id, index) = rest.split_once(':')?;
                Some(Button::AnswerOption(id.parse().ok()?, index.parse().ok()?))
            }
            _ => None,
        }
    }

    pub fn request_id(&self) -> RequestId {
        match *self {
            Button::Approve(id) | Button::Reject(id) | Button::Answer(id) | Button::AnswerOption(id, _) => id,
        }
    }
}

/// A modal of Signoff's, as its `custom_id` says: `reject_modal:{id}` or `answer_modal:{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modal {
    Reject(RequestId),
    Answer(RequestId),
}

impl Modal {
    pub fn custom_id(&self) -> String {
        match self {
            Modal::Reject(id) => format!("reject_modal:{id}"),
            Modal::Answer(id) => format!("answer_modal:{id}"),
        }
    }

    pub fn parse(custom_id: &str) -> Option<Modal> {
        match custom_id.split_once(':')? {
            ("reject_modal", id) => Some(Modal::Reject(id.parse().ok()?)),
            ("answer_modal", id) => Some(Modal::Answer(id.parse().ok()?)),
            _ => None,
        }
    }

    pub fn request_id(&self) -> RequestId {
        match *self {
            Modal::Reject(id) | Modal::Answer(id) => id,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Inbound: signatures, interactions and the responses to them

/// Why an inbound request is not accepted as Discord's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscordAuthError {
    #[error("X-Signature-Timestamp is missing or not a number of seconds")]
    BadTimestamp,
    #[error("X-Signature-Timestamp is more than 5 minutes from now; a replay is refused")]
    StaleTimestamp,
    #[error("X-Signature-Ed25519 is not the application's signature of the timestamp and body")]
    BadSignature,
}

impl DiscordAuthError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            DiscordAuthError::BadTimestamp => "bad_timestamp",
            DiscordAuthError::StaleTimestamp => "stale_timestamp",
            DiscordAuthError::BadSignature => "bad_signature",
        }
    }
}

/// Checks that Discord sent `body`: `timestamp` (`X-Signature-Timestamp`, Unix seconds) within 5 minutes of `now`
/// either way, and `signature` (`X-Signature-Ed25519`, hex) the application key's Ed25519 signature of the
/// timestamp followed by the raw body.
pub fn verify_signature(
    key: &PublicKey,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> Result<(), DiscordAuthError> {
    let sent: i64 = timestamp.parse().map_err(|_| DiscordAuthError::BadTimestamp)?;
    if now.abs_diff(sent) > MAX_CLOCK_SKEW_SECONDS as u64 {
        return Err(DiscordAuthError::StaleTimestamp);
    }
    let signature: [u8; 64] =
        hex::decode(signature).ok().and_then(|bytes| bytes.try_into().ok()).ok_or(DiscordAuthError::BadSignature)?;
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    key.0.verify_strict(&message, &Signature::from_bytes(&signature)).map_err(|_| DiscordAuthError::BadSignature)
}

/// An interaction's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InteractionType {
    Ping,
    ApplicationCommand,
    MessageComponent,
    Autocomplete,
    ModalSubmit,
    Other(u8),
}

/// The Discord user who interacted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
}

/// The guild member who interacted (in a guild channel).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    pub user: User,
}

/// An interaction's `data`: a component's `custom_id`, or a modal's with its inputs.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct InteractionData {
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub component_type: Option<u8>,
    #[serde(default)]
    pub components: Vec<Value>,
}

/// The message a component was on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InteractionMessage {
    pub id: String,
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// An interaction Discord posts to the app's interactions endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Interaction {
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub application_id: String,
    #[serde(default)]
    pub guild_id: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
    /// Set in a guild; `user` is set in a DM.
    #[serde(default)]
    pub member: Option<Member>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub data: Option<InteractionData>,
    #[serde(default)]
    pub message: Option<InteractionMessage>,
}

impl Interaction {
    pub fn kind(&self) -> InteractionType {
        match self.kind {
            1 => InteractionType::Ping,
            2 => InteractionType::ApplicationCommand,
            3 => InteractionType::MessageComponent,
            4 => InteractionType::Autocomplete,
            5 => InteractionType::ModalSubmit,
            other => InteractionType::Other(other),
        }
    }

    /// Who interacted: `member.user.id` in a guild, `user.id` in a DM.
    pub fn user_id(&self) -> Option<&str> {
        self.member.as_ref().map(|m| &m.user).or(self.user.as_ref()).map(|u| u.id.as_str())
    }

    /// Whether it happened in a guild channel (not a DM).
    pub fn in_guild(&self) -> bool {
        self.member.is_some() || self.guild_id.is_some()
    }

    pub fn custom_id(&self) -> Option<&str> {
        self.data.as_ref()?.custom_id.as_deref()
    }

    /// A modal submission's text inputs, `custom_id` → value (inputs in action rows, or in labels).
    pub fn modal_values(&self) -> HashMap<String, String> {
        fn walk(component: &Value, values: &mut HashMap<String, String>) {
            if component["type"] == TEXT_INPUT
                && let (Some(id), Some(value)) = (component["custom_id"].as_str(), component["value"].as_str())
            {
                values.insert(id.to_string(), value.to_string());
            }
            for child in component["components"].as_array().into_iter().flatten() {
                walk(child, values);
            }
            if component["component"].is_object() {
                walk(&component["component"], values);
            }
        }
        let mut values = HashMap::new();
        for component in self.data.iter().flat_map(|data| &data.components) {
            walk(component, &mut values);
        }
        values
    }
}

/// Reads an interaction's JSON body.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, String> {
    serde_json::from_slice(body).map_err(|e| format!("the interaction is not what Discord sends: {e}"))
}

/// The answer to a PING.
pub fn pong() -> Value {
    json!({ "type": 1 })
}

/// The answer that replaces the clicked message with `request` as it now stands (type 7, `UPDATE_MESSAGE`).
pub fn update_message(request: &Request, view: &RequestView) -> Value {
    json!({ "type": 7, "data": message(request, view) })
}

/// The answer that acknowledges a click and edits the message later (type 6, `DEFERRED_UPDATE_MESSAGE`).
pub fn deferred_update() -> Value {
    json!({ "type": 6 })
}

/// The answer that opens `modal` (type 9, `MODAL`).
pub fn modal(modal: Value) -> Value {
    json!({ "type": 9, "data": modal })
}

/// A message only the person who interacted sees (type 4 with flags 64), leaving the clicked message as it is.
pub fn ephemeral(text: &str) -> Value {
    json!({
        "type": 4,
        "data": { "content": truncate(text, CONTENT_MAX), "flags": EPHEMERAL, "allowed_mentions": { "parse": [] } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use signoff_domain::{ApproverId, Channel, Decision, NewRequest, PolicyMatch, Requester, Verdict};

    fn person(id: &str) -> ApproverId {
        ApproverId::parse(id).unwrap()
    }

    fn request() -> Request {
        let mut new = NewRequest::action("refund");
        new.summary = Some("Refund $50 to c_42".into());
        new.args = json!({"amount": 50, "note": "x".repeat(2000), "fence": "```"});
        new.reasoning = Some("Duplicate charge **confirmed** @everyone".into());
        new.confidence = Some(0.82);
        new.tags = vec!["billing".into()];
        let requester = Requester { key_id: "k1".into(), key_name: "bot".into(), responsible: None };
        let mut request = Request::new(RequestId::new(), new, requester, "2024-05-01T15:00:00Z".parse().unwrap());
        request.policy = Some(PolicyMatch {
            version: 1,
            content_hash: "h".into(),
            rule: Some("small-refund".into()),
            error: None,
            verdict: Verdict::Approve { rule: "small-refund".into() },
        });
        request.group = Some("finance".into());
        request.deadline_at = Some("2024-05-01T17:00:00Z".parse().unwrap());
        request
    }

    fn view() -> RequestView {
        RequestView {
            public_url: "https://signoff.example.com".into(),
            group: "finance".into(),
            person: Some(person("dana")),
            person_names: [(person("dana"), "Dana".to_string())].into(),
            moved_to: None,
        }
    }

    fn custom_ids(components: &Value) -> Vec<String> {
        let rows = components.as_array().unwrap();
        rows.iter()
            .flat_map(|row| row["components"].as_array().unwrap())
            .map(|b| b["custom_id"].as_str().or(b["url"].as_str()).unwrap().to_string())
            .collect()
    }

    #[test]
    fn signatures_are_checked_over_the_timestamp_and_the_raw_body() {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let key = PublicKey::from_hex(&hex::encode(signing.verifying_key().as_bytes())).unwrap();
        let (timestamp, body) = ("1700000000", br#"{"type":1}"#.as_slice());
        let sign = |message: &[u8]| hex::encode(signing.sign(message).to_bytes());
        let signature = sign(&[timestamp.as_bytes(), body].concat());
        let check = |body: &[u8], signature: &str, now: i64| verify_signature(&key, timestamp, body, signature, now);
        assert_eq!(check(body, &signature, 1700000000 + 300), Ok(()));
        assert_eq!(check(body, &signature, 1700000000 - 300), Ok(()));
        assert_eq!(check(body, &signature, 1700000000 + 301), Err(DiscordAuthError::StaleTimestamp));
        assert_eq!(check(body, &signature, 1700000000 - 301), Err(DiscordAuthError::StaleTimestamp));
        assert_eq!(check(br#"{"type":2}"#, &signature, 1700000000), Err(DiscordAuthError::BadSignature));
        let body_only = sign(body);
        assert_eq!(check(body, &body_only, 1700000000), Err(DiscordAuthError::BadSignature), "the timestamp counts");
        for bad in ["", "zz", &signature[2..], &format!("{signature}00")] {
            assert_eq!(check(body, bad, 1700000000), Err(DiscordAuthError::BadSignature), "{bad}");
        }
        let other = PublicKey::from_key(SigningKey::from_bytes(&[8; 32]).verifying_key());
        assert_eq!(
            verify_signature(&other, timestamp, body, &signature, 1700000000),
            Err(DiscordAuthError::BadSignature)
        );
        assert_eq!(verify_signature(&key, "soon", body, &signature, 0), Err(DiscordAuthError::BadTimestamp));
        assert_eq!(verify_signature(&key, "", body, &signature, 0), Err(DiscordAuthError::BadTimestamp));
    }

    #[test]
    fn public_keys_are_read_from_hex() {
        let hex_key = hex::encode(SigningKey::from_bytes(&[7; 32]).verifying_key().as_bytes());
        assert_eq!(PublicKey::from_hex(&format!(" {hex_key}\n")).unwrap().to_hex(), hex_key);
        for bad in ["", "abc", "zz", &hex_key[2..], &format!("{hex_key}00")] {
            assert!(PublicKey::from_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_are_classified() {
        let ok = classify("POST /channels/{id}/messages", 200, None, br#"{"id":"11","channel_id":"22"}"#);
        assert_eq!(ok.unwrap()["id"], "11");
        assert_eq!(classify("PATCH", 204, None, b""), Ok(Value::Null));

        let body = br#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#;
        let limited = classify("POST", 429, Some("2"), body).unwrap_err();
        assert_eq!((limited.retry_after, limited.permanent), (Some(Duration::from_millis(1500)), false));
        assert_eq!(limited.message, "discord POST: rate limited (429)");
        let global = br#"{"message": "You are being rate limited.", "retry_after": 0.25, "global": true}"#;
        assert!(classify("POST", 429, None, global).unwrap_err().message.ends_with("(429, global)"));
        let header_only = classify("POST", 429, Some("3"), b"").unwrap_err();
        assert_eq!(header_only.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(classify("POST", 429, Some("-1"), b"").unwrap_err().retry_after, None);

        let refused = br#"{"code": 50007, "message": "Cannot send messages to this user"}"#;
        let refused = classify("POST", 403, None, refused).unwrap_err();
        assert!(refused.permanent);
        assert_eq!(refused.message, "discord POST: HTTP 403, error 50007: Cannot send messages to this user");
        assert!(
            classify("PATCH", 404, None, br#"{"code": 10008, "message": "Unknown Message"}"#).unwrap_err().permanent
        );
        assert!(classify("POST", 401, None, b"").unwrap_err().permanent);
        for status in [500, 502, 503, 408] {
            assert!(!classify("POST", status, None, b"").unwrap_err().permanent, "{status}");
        }
        assert!(!classify("POST", 200, None, b"<html>").unwrap_err().permanent);
    }

    #[test]
    fn a_pending_request_shows_its_details_and_buttons() {
        let request = request();
        let message = message(&request, &view());
        let embed = &message["embeds"][0];
        assert_eq!(embed["title"], "Refund $50 to c\\_42");
        assert_eq!(embed["url"], format!("https://signoff.example.com/requests/{}", request.id));
        assert_eq!(embed["description"], "Duplicate charge \\*\\*confirmed\\*\\* \\@everyone", "markdown escaped");
        assert_eq!(message["allowed_mentions"], json!({"parse": []}), "nobody is pinged");
        let fields = embed["fields"].as_array().unwrap();
        let value = |name: &str| fields.iter().find(|f| f["name"] == name).unwrap()["value"].as_str().unwrap();
        assert_eq!(value("Action"), "`refund`");
        assert_eq!(value("Deadline"), format!("<t:{}:f>", request.deadline_at.unwrap().timestamp()));
        assert!(value("Arguments").starts_with("```\n") && value("Arguments").ends_with("\n```"));
        assert!(value("Arguments").chars().count() <= FIELD_MAX, "cut to fit a field");
        assert_eq!(value("Arguments").matches("```").count(), 2, "no fence inside the block");
        assert!(embed.get("footer").is_none(), "nothing to add while it waits");
        assert_eq!(message["content"], "Approval needed: Refund $50 to c\\_42");
        let ids = custom_ids(&message["components"]);
        let dashboard = format!("https://signoff.example.com/requests/{}", request.id);
        assert_eq!(ids, [format!("approve:{}", request.id), format!("reject:{}", request.id), dashboard]);
        assert!(ids.iter().all(|id| id.len() <= CUSTOM_ID_MAX));
    }

    #[test]
    fn a_question_offers_its_options_in_rows_of_five() {
        let mut request = request();
        request.kind = Kind::Question;
        request.question = Some("Which region?".into());
        request.options = (0..7).map(|i| format!("region {i}")).collect();
        let components = components(&request, &view());
        let rows = components.as_array().unwrap();
        assert_eq!(rows.iter().map(|r| r["components"].as_array().unwrap().len()).collect::<Vec<_>>(), [5, 3]);
        assert_eq!(rows[0]["components"][1]["label"], "region 1");
        assert_eq!(rows[0]["components"][1]["custom_id"], format!("option:{}:1", request.id));
        request.options.clear();
        assert_eq!(custom_ids(&super::components(&request, &view()))[0], format!("answer:{}", request.id));
    }

    #[test]
    fn a_decided_or_moved_request_shows_how_it_stands_without_buttons() {
        let mut request = request();
        request.status = Status::Rejected;
        request.decision = Some(Decision {
            outcome: DecisionOutcome::Rejected,
            args: request.args.clone(),
            edited: false,
            comment: Some("paid already".into()),
            reason: Some("duplicate".into()),
            by: DecidedBy::Human { approver_id: person("dana"), channel: Channel::Discord },
            at: "2024-05-01T16:02:00Z".parse().unwrap(),
            answer: None,
        });
        let message = message(&request, &view());
        assert_eq!(message["components"], json!([]));
        let footer = message["embeds"][0]["footer"]["text"].as_str().unwrap();
        assert_eq!(footer, "Rejected by Dana at 16:02 UTC (reason: duplicate): paid already");
        assert_eq!(message["embeds"][0]["color"], RED);
        assert!(
            message["content"]
                .as_str()
                .unwrap()
                .ends_with("Rejected by Dana at 16:02 UTC (reason: duplicate): paid already")
        );

        let moved = RequestView { moved_to: Some("cfo".into()), ..view() };
        let waiting = self::request();
        assert_eq!(components(&waiting, &moved), json!([]));
        assert_eq!(embed(&waiting, &moved)["footer"]["text"], "Moved to cfo (escalated)");
    }

    #[test]
    fn custom_ids_round_trip_and_strangers_are_refused() {
        let id = RequestId::new();
        for button in [Button::Approve(id), Button::Reject(id), Button::Answer(id), Button::AnswerOption(id, 19)] {
            assert!(button.custom_id().len() <= CUSTOM_ID_MAX);
            assert_eq!(Button::parse(&button.custom_id()), Some(button));
        }
        for modal in [Modal::Reject(id), Modal::Answer(id)] {
            assert_eq!(Modal::parse(&modal.custom_id()), Some(modal));
        }
        for bad in ["", "approve", "approve:", "approve:nope", "edit:0190", "option:{id}", &format!("option:{id}:x")] {
            assert_eq!(Button::parse(bad), None, "{bad}");
        }
        assert_eq!(Modal::parse(&format!("reject:{id}")), None);
    }

    #[test]
    fn modals_ask_for_the_reason_and_comment_and_their_values_are_read() {
        let mut request = request();
        request.reject_reasons = vec!["fraud".into(), "duplicate".into()];
        let modal = reject_modal(&request);
        assert_eq!(modal["custom_id"], format!("reject_modal:{}", request.id));
        assert!(modal["title"].as_str().unwrap().chars().count() <= MODAL_TITLE_MAX);
        let input = |row: usize| &modal["components"][row]["components"][0];
        assert_eq!(
            (input(0)["custom_id"].as_str(), input(0)["placeholder"].as_str()),
            (Some("reason"), Some("One of: 1 fraud, 2 duplicate"))
        );
        assert_eq!((input(1)["custom_id"].as_str(), input(1)["required"].as_bool()), (Some("comment"), Some(true)));
        request.reject_reasons.clear();
        assert_eq!(reject_modal(&request)["components"].as_array().unwrap().len(), 1, "no reason without reasons");

        let reasons = ["fraud".to_string(), "duplicate".to_string()];
        assert_eq!(match_reason(&reasons, " Duplicate "), Some("duplicate".into()));
        assert_eq!(match_reason(&reasons, "1"), Some("fraud".into()));
        for bad in ["0", "3", "dup", ""] {
            assert_eq!(match_reason(&reasons, bad), None, "{bad}");
        }

        let submit = json!({
            "type": 5, "id": "1", "application_id": "2", "token": "t",
            "user": {"id": "80351110224678912", "username": "dana"},
            "data": {"custom_id": "reject_modal:x", "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": "reason", "value": "2"}]},
                {"type": 18, "component": {"type": 4, "custom_id": "comment", "value": "seen before"}},
            ]},
        });
        let interaction = parse_interaction(submit.to_string().as_bytes()).unwrap();
        assert_eq!(interaction.kind(), InteractionType::ModalSubmit);
        assert_eq!((interaction.user_id(), interaction.in_guild()), (Some("80351110224678912"), false));
        let values = interaction.modal_values();
        assert_eq!((values["reason"].as_str(), values["comment"].as_str()), ("2", "seen before"));

        let click = json!({
            "type": 3, "member": {"user": {"id": "42"}}, "guild_id": "9",
            "data": {"custom_id": "a", "component_type": 2},
        });
        let click = parse_interaction(click.to_string().as_bytes()).unwrap();
        assert_eq!(
            (click.kind(), click.user_id(), click.in_guild()),
            (InteractionType::MessageComponent, Some("42"), true)
        );
        assert!(parse_interaction(b"{").is_err());
        assert!(parse_interaction(br#"{"type": "one"}"#).is_err());
    }

    #[test]
    fn debug_never_prints_the_token() {
        let key = PublicKey::from_key(SigningKey::from_bytes(&[7; 32]).verifying_key());
        let config =
            DiscordConfig { bot_token: "MTk4.secret".into(), public_key: key, api_url: DEFAULT_API_URL.into() };
        let client = DiscordClient::new(&config).unwrap();
        for text in [format!("{config:?}"), format!("{client:?}")] {
            assert!(!text.contains("MTk4"), "{text}");
        }
        assert!(DiscordClient::new(&DiscordConfig { bot_token: " ".into(), ..config }).is_err());
    }

    #[test]
    fn addresses_that_are_not_ids_never_reach_a_path() {
        assert!(snowflake("80351110224678912", "user").is_ok());
        for bad in ["", "../users", "12a", "1/2", &"9".repeat(21)] {
            assert!(snowflake(bad, "user").unwrap_err().permanent, "{bad}");
        }
        assert_eq!(split_ref("1:2").unwrap(), ("1", "2"));
        assert!(split_ref("1").is_err() && split_ref("a:2").is_err() && split_ref("1:2:3").is_err());
    }
}
