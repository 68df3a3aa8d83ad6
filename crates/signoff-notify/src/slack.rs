//! Slack: the Web API calls that ask people to decide (`chat.postMessage`, `chat.update`, `views.open`, replies
//! through an interaction's `response_url`), the Block Kit rendering of a request, the signature check of Slack's
//! inbound requests, and the interaction payloads they carry.

use crate::digest::DigestView;
use crate::{ProviderError, ProviderRef, RequestView};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use signoff_domain::{DecidedBy, DecisionOutcome, Kind, Request, Status};
use std::collections::HashMap;
use std::time::Duration;

/// Slack's Web API, where `api_url` points unless configured otherwise.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";
/// How far a request's `X-Slack-Request-Timestamp` may be from now, in seconds, before it is refused as a replay.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 5 * 60;
/// Values in the arguments longer than this many characters are folded in messages.
pub const FOLD_AFTER_CHARS: usize = 300;
/// The `callback_id` of the reject modal.
pub const REJECT_CALLBACK_ID: &str = "signoff_reject";
/// The `callback_id` of the edit modal.
pub const EDIT_CALLBACK_ID: &str = "signoff_edit";
/// The `callback_id` of the answer modal (a question without options).
pub const ANSWER_CALLBACK_ID: &str = "signoff_answer";
/// Button `action_id`s of a request message.
pub const ACTION_APPROVE: &str = "approve";
/// A question's **Answer** button (opens the answer modal), and its option buttons (value `{request id}:{index}`).
pub const ACTION_ANSWER: &str = "answer";
pub const ACTION_ANSWER_OPTION: &str = "answer_option";
pub const ACTION_REJECT: &str = "reject";
pub const ACTION_EDIT: &str = "edit";
pub const ACTION_OPEN_DASHBOARD: &str = "open_dashboard";
/// A digest's **Review all** link button (Slack reports its clicks too; they change nothing).
pub const ACTION_REVIEW_ALL: &str = "review_all";
/// Input `block_id`s (each holds one element whose `action_id` is the same) of the modals.
pub const INPUT_REASON: &str = "reason";
pub const INPUT_COMMENT: &str = "comment";
pub const INPUT_ARGS: &str = "args";
pub const INPUT_ANSWER: &str = "answer";

/// Time allowed for one call to Slack.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack's limits: a section's text, a plain-text input's value, a header's text.
const SECTION_MAX: usize = 3000;
const INPUT_MAX: usize = 3000;
const HEADER_MAX: usize = 150;

/// Slack errors that retrying cannot fix: the configuration, the address or the message must change first.
const PERMANENT_ERRORS: &[&str] = &[
    "thread_not_found",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "channel_is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "not_allowed_token_type",
    "user_not_found",
    "user_disabled",
    "restricted_action",
    "team_access_not_granted",
    "invalid_arguments",
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_too_long",
    "no_text",
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
    "invalid_trigger_id",
    "expired_trigger_id",
    "exchanged_trigger_id",
];

/// How Signoff reaches Slack: the bot token it calls the Web API with, the signing secret Slack signs its requests
/// with, and the API's base URL (no trailing slash).
#[derive(Clone, PartialEq, Eq)]
pub struct SlackConfig {
    pub bot_token: String,
    pub signing_secret: String,
    /// [`DEFAULT_API_URL`] unless pointed elsewhere (a test double).
    pub api_url: String,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("bot_token", &"<redacted>")
            .field("signing_secret", &"<redacted>")
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// A Slack Web API client for one bot token.
#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    bot_token: String,
    api_url: String,
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient").field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

impl SlackClient {
    pub fn new(config: &SlackConfig) -> Result<SlackClient, ProviderError> {
        if config.bot_token.is_empty() {
            return Err(ProviderError::permanent("slack: no bot token is configured"));
        }
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::permanent(format!("slack: cannot build the HTTP client: {e}")))?;
        Ok(SlackClient {
            http,
            bot_token: config.bot_token.clone(),
            api_url: config.api_url.trim_end_matches('/').to_string(),
        })
    }

    /// A new message asking `channel` (a member id for a DM, or a group's shared channel id) to decide `request`.
    /// Returns `{channel}:{ts}` of the message, with the channel id Slack answered (a DM's `D…` id).
    pub async fn post_request(
        &self,
        channel: &str,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        let body = json!({
            "channel": channel,
            "text": request_text(request, view),
            "blocks": request_blocks(request, view),
            "unfurl_links": false,
            "unfurl_media": false,
        });
        let answer = self.call("chat.postMessage", &body).await?;
        match (answer["channel"].as_str(), answer["ts"].as_str()) {
            (Some(channel), Some(ts)) => Ok(format!("{channel}:{ts}")),
            _ => Err(ProviderError::transient("slack chat.postMessage: the answer has no `channel` and `ts`")),
        }
    }

    /// Replaces an earlier message with the request's current state (outcome, quorum progress, moved).
    pub async fn update_request(
        &self,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<(), ProviderError> {
        let (channel, ts) = split_ref(message)?;
        let body = json!({
            "channel": channel,
            "ts": ts,
            "text": request_text(request, view),
            "blocks": request_blocks(request, view),
        });
        self.call("chat.update", &body).await.map(drop)
    }

    /// A reminder in the thread of the ask at `message`: the request still waits, with its deadline; the buttons stay
    /// on the ask itself. Returns where the reminder lives.
    pub async fn post_reminder(
        &self,
        message: &ProviderRef,
        request: &Request,
        view: &RequestView,
    ) -> Result<ProviderRef, ProviderError> {
        let (channel, ts) = split_ref(message)?;
        let body = json!({
            "channel": channel,
            "thread_ts": ts,
            "text": reminder_text(request, view),
            "unfurl_links": false,
            "unfurl_media": false,
        });
        let answer = self.call("chat.postMessage", &body).await?;
        match (answer["channel"].as_str(), answer["ts"].as_str()) {
            (Some(channel), Some(ts)) => Ok(format!("{channel}:{ts}")),
            _ => Err(ProviderError::transient("slack chat.postMessage: the answer has no `channel` and `ts`")),
        }
    }

    /// A digest ([`digest_blocks`]) to `channel` (a member id, for a DM). Returns `{channel}:{ts}`.
    pub async fn post_digest(&self, channel: &str, digest: &DigestView) -> Result<ProviderRef, ProviderError> {
        let body = json!({
            "channel": channel,
            "text": digest.headline(),
            "blocks": digest_blocks(digest),
            "unfurl_links": false,
            "unfurl_media": false,
        });
        let answer = self.call("chat.postMessage", &body).await?;
        match (answer["channel"].as_str(), answer["ts"].as_str()) {
            (Some(channel), Some(ts)) => Ok(format!("{channel}:{ts}")),
            _ => Err(ProviderError::transient("slack chat.postMessage: the answer has no `channel` and `ts`")),
        }
    }

    /// Opens a modal for the person who clicked (`trigger_id` from their interaction, valid for 3 seconds).
    pub async fn views_open(&self, trigger_id: &str, view: Value) -> Result<(), ProviderError> {
        self.call("views.open", &json!({ "trigger_id": trigger_id, "view": view })).await.map(drop)
    }

    /// The reject modal for `request` ([`reject_modal`]).
    pub async fn open_reject_modal(&self, trigger_id: &str, request: &Request) -> Result<(), ProviderError> {
        self.views_open(trigger_id, reject_modal(request)).await
    }

    /// The answer modal for the question `request` ([`answer_modal`]).
    pub async fn open_answer_modal(&self, trigger_id: &str, request: &Request) -> Result<(), ProviderError> {
        self.views_open(trigger_id, answer_modal(request)).await
    }

    /// The edit modal for `request` ([`edit_modal`]); a permanent error when its arguments are too long to edit in
    /// Slack.
    pub async fn open_edit_modal(&self, trigger_id: &str, request: &Request) -> Result<(), ProviderError> {
        let view = edit_modal(request).ok_or_else(|| {
            ProviderError::permanent("the arguments are too long to edit in Slack; edit them in the dashboard")
        })?;
        self.views_open(trigger_id, view).await
    }

    /// Tells the person who clicked something only they see (an ephemeral message through the interaction's
    /// `response_url`, leaving the original message as it is).
    pub async fn respond(&self, response_url: &str, text: &str) -> Result<(), ProviderError> {
        let body = json!({ "response_type": "ephemeral", "replace_original": false, "text": text });
        let response = self
            .http
            .post(response_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| ProviderError::transient(format!("slack response_url: {}", without_url(&e))))?;
        let (status, retry_after) = (response.status().as_u16(), retry_after_of(&response));
        let bytes = response.bytes().await.unwrap_or_default();
        // A response_url answers `ok` as text or as `{"ok": true}`; only its status and an explicit refusal count.
        classify("response_url", status, retry_after.as_deref(), &bytes, true).map(drop)
    }

    /// One Web API call: `POST {api_url}/{method}` with a JSON body; Slack's answer, or why it failed.
    /// A plain message that checks the wiring (`signoff channels test slack --to ID`). Returns `{channel}:{ts}`.
    pub async fn post_test(&self, channel: &str) -> Result<ProviderRef, ProviderError> {
        let text = "This is a test message from Signoff: Slack notifications reach this conversation.";
        let answer = self.call("chat.postMessage", &json!({ "channel": channel, "text": text })).await?;
        match (answer["channel"].as_str(), answer["ts"].as_str()) {
            (Some(channel), Some(ts)) => Ok(format!("{channel}:{ts}")),
            _ => Err(ProviderError::transient("slack chat.postMessage: the answer has no `channel` and `ts`")),
        }
    }

    async fn call(&self, method: &str, body: &Value) -> Result<Value, ProviderError> {
        let response = self
            .http
            .post(format!("{}/{method}", self.api_url))
            .bearer_auth(&self.bot_token)
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| ProviderError::transient(format!("slack {method}: {}", without_url(&e))))?;
        let (status, retry_after) = (response.status().as_u16(), retry_after_of(&response));
        let bytes = response.bytes().await.map_err(|e| {
            ProviderError::transient(format!("slack {method}: reading the answer: {}", without_url(&e)))
        })?;
        classify(method, status, retry_after.as_deref(), &bytes, false)
    }
}

fn retry_after_of(response: &reqwest::Response) -> Option<String> {
    response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// A transport error's text without its URL (a `response_url` carries a token of sorts).
fn without_url(error: &reqwest::Error) -> String {
    let mut error = error.to_string();
    if let Some(at) = error.find(" for url (") {
        error.truncate(at);
    }
    error
}

fn split_ref(message: &str) -> Result<(&str, &str), ProviderError> {
    message
        .split_once(':')
        .filter(|(channel, ts)| !channel.is_empty() && !ts.is_empty())
        .ok_or_else(|| ProviderError::permanent(format!("slack: `{message}` is not a `channel:ts` message reference")))
}

/// Reads Slack's answer to `method`: `{"ok": true, …}` is the answer; `{"ok": false, "error"}` is permanent for
/// errors retrying cannot fix ([`PERMANENT_ERRORS`]) and transient otherwise; `429` carries `Retry-After`
/// (seconds); `5xx`, `408` and unreadable answers are transient, other statuses permanent. With `lenient`, a
/// success status with a body that is not JSON is accepted (a `response_url` answers plain `ok`).
pub fn classify(
    method: &str,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    lenient: bool,
) -> Result<Value, ProviderError> {
    if status == 429 {
        let retry_after = retry_after.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        return Err(ProviderError {
            message: format!("slack {method}: rate limited (429)"),
            retry_after,
            permanent: false,
        });
    }
    if status >= 500 || status == 408 {
        return Err(ProviderError::transient(format!("slack {method}: HTTP {status}")));
    }
    if !(200..300).contains(&status) {
        return Err(ProviderError::permanent(format!("slack {method}: HTTP {status}")));
    }
    let answer: Value = match serde_json::from_slice(body) {
        Ok(answer) => answer,
        Err(_) if lenient => return Ok(Value::Null),
        Err(_) => return Err(ProviderError::transient(format!("slack {method}: the answer is not JSON"))),
    };
    match answer.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(answer),
        None if lenient => Ok(answer),
        _ => {
            let error = answer.get("error").and_then(Value::as_str).unwrap_or("unknown_error");
            // Slack's error codes are short snake_case words; anything else is not echoed into logs.
            let error = if error.len() <= 64 && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                error
            } else {
                "unknown_error"
            };
            let message = format!("slack {method}: {error}");
            if PERMANENT_ERRORS.contains(&error) {
                Err(ProviderError::permanent(message))
            } else {
                Err(ProviderError::transient(message))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

/// Escapes the three characters Slack's `mrkdwn` reads as markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
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

/// The arguments, one line per top-level field, each value as JSON; values over [`FOLD_AFTER_CHARS`] characters are
/// folded (cut, with how much was left out).
pub fn format_args(args: &Value) -> String {
    let fold = |value: &Value| {
        let text = value.to_string();
        let chars = text.chars().count();
        if chars <= FOLD_AFTER_CHARS {
            text
        } else {
            let head: String = text.chars().take(FOLD_AFTER_CHARS).collect();
            format!("{head}… ({} more characters folded)", chars - FOLD_AFTER_CHARS)
        }
    };
    match args.as_object() {
        Some(fields) if fields.is_empty() => "(none)".to_string(),
        Some(fields) => {
            fields.iter().map(|(key, value)| format!("{key}: {}", fold(value))).collect::<Vec<_>>().join("\n")
        }
        None => fold(args),
    }
}

/// What the message says about the request's state instead of (or beside) the buttons: the outcome once decided,
/// where it went once moved, quorum progress while it waits with approvals. `None`: pending, nothing to add.
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
            line.push_str(&format!(": “{}”", escape(&truncate(answer, 500))));
        }
        if let Some(reason) = &decision.reason {
            line.push_str(&format!(" (reason: {reason})"));
        }
        if decision.outcome == DecisionOutcome::Rejected
            && let Some(comment) = &decision.comment
        {
            line.push_str(&format!(": {comment}"));
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

/// Whether the message still offers the buttons: the request waits, and still on this message's group.
fn actionable(request: &Request, view: &RequestView) -> bool {
    request.status == Status::Pending && view.moved_to.is_none()
}

/// The message's fallback text (notifications, screen readers, clients without blocks).
pub fn request_text(request: &Request, view: &RequestView) -> String {
    let ask = format!("{} ({}, rule {})", title(request), request.action, rule(request));
    match status_line(request, view) {
        Some(status) if !actionable(request, view) => format!("{ask}: {status}"),
        Some(status) => format!("Approval needed: {ask}. {status}"),
        None => format!("Approval needed: {ask}"),
    }
}

/// A reminder's text: what still waits, the quorum so far, and when the deadline falls.
pub fn reminder_text(request: &Request, view: &RequestView) -> String {
    let mut text = format!("Reminder: *{}* still waits for your decision", escape(&truncate(title(request), 300)));
    if let Some(status) = status_line(request, view) {
        text.push_str(&format!(" ({status})"));
    }
    if let Some(deadline) = request.deadline_at {
        text.push_str(&format!(". Deadline: {}", deadline.format("%Y-%m-%d %H:%M UTC")));
    }
    text.push_str(&format!(". <{}/requests/{}|Open in dashboard>", view.public_url, request.id));
    text
}

fn mrkdwn(text: impl Into<String>) -> Value {
    json!({ "type": "mrkdwn", "text": text.into() })
}

fn plain(text: impl Into<String>) -> Value {
    json!({ "type": "plain_text", "text": text.into(), "emoji": true })
}

fn button(text: &str, action_id: &str, value: &str, style: Option<&str>) -> Value {
    let mut button = json!({ "type": "button", "text": plain(text), "action_id": action_id, "value": value });
    if let Some(style) = style {
        button["style"] = json!(style);
    }
    button
}

/// The Block Kit blocks of a message about `request`: what it asks, the arguments, the reasoning, the rule, the
/// deadline and quorum; then the buttons while it waits for this group, or a line saying how it ended or where it
/// went.
pub fn request_blocks(request: &Request, view: &RequestView) -> Value {
    let mut blocks = vec![json!({ "type": "header", "text": plain(truncate(title(request), HEADER_MAX)) })];

    let mut fields = vec![
        mrkdwn(format!("*Action*\n`{}`", escape(&truncate(&request.action, 200)))),
        mrkdwn(format!("*Rule*\n{}", escape(rule(request)))),
        mrkdwn(format!(
            "*Deadline*\n{}",
            request.deadline_at.map_or("none".to_string(), |at| at.format("%Y-%m-%d %H:%M UTC").to_string())
        )),
        mrkdwn(format!("*Approvals*\n{} of {}", request.approvals.len(), request.approvals_required)),
    ];
    if let Some(confidence) = request.confidence {
        fields.push(mrkdwn(format!("*Confidence*\n{confidence:.2}")));
    }
    if !request.tags.is_empty() {
        fields.push(mrkdwn(format!("*Tags*\n{}", escape(&truncate(&request.tags.join(", "), 1000)))));
    }
    blocks.push(json!({ "type": "section", "fields": fields }));

    // A code block's text is escaped too, and the fences take 8 characters of the section's 3000.
    let args = truncate(&escape(&format_args(&request.args)), SECTION_MAX - 40);
    blocks.push(json!({ "type": "section", "text": mrkdwn(format!("*Arguments*\n```{args}```")) }));

    if let Some(reasoning) = request.reasoning.as_deref().filter(|r| !r.trim().is_empty()) {
        let reasoning = truncate(&escape(reasoning), SECTION_MAX - 20);
        blocks.push(json!({ "type": "section", "text": mrkdwn(format!("*Reasoning*\n{reasoning}")) }));
    }

    let status = status_line(request, view);
    let dashboard = format!("{}/requests/{}", view.public_url, request.id);
    if actionable(request, view) {
        if let Some(status) = &status {
            blocks.push(json!({ "type": "context", "elements": [mrkdwn(escape(status))] }));
        }
        let id = request.id.to_string();
        let mut buttons = match request.kind {
            Kind::Question if request.options.is_empty() => vec![button("Answer", ACTION_ANSWER, &id, Some("primary"))],
            // Slack allows 25 elements in an actions block; the dashboard link takes one.
            Kind::Question => (request.options.iter().enumerate().take(24))
                .map(|(i, option)| button(&truncate(option, 75), ACTION_ANSWER_OPTION, &format!("{id}:{i}"), None))
                .collect(),
            Kind::Approval => vec![
                button("Approve", ACTION_APPROVE, &id, Some("primary")),
                button("Reject", ACTION_REJECT, &id, Some("danger")),
            ],
        };
        if request.kind == Kind::Approval && request.allow_edit {
            buttons.push(button("Edit", ACTION_EDIT, &id, None));
        }
        buttons.push(json!({
            "type": "button", "text": plain("Open in dashboard"), "action_id": ACTION_OPEN_DASHBOARD, "url": dashboard,
        }));
        blocks.push(json!({ "type": "actions", "elements": buttons }));
    } else {
        let status = status.unwrap_or_else(|| format!("This request is {}", request.status.as_str()));
        let line = format!("{} · <{dashboard}|Open in dashboard>", escape(&truncate(&status, 2500)));
        blocks.push(json!({ "type": "context", "elements": [mrkdwn(line)] }));
    }
    Value::Array(blocks)
}

/// The modal **Reject** opens: the request's reject reasons as a required select (when it has any) and a required
/// comment. `private_metadata` is the request id.
/// The most requests a digest lists one by one in Slack (a message holds at most 50 blocks); the rest are counted.
pub const DIGEST_MAX_LINES: usize = 40;

/// A digest's Block Kit: the headline, a line per request linking to its dashboard page (at most
/// [`DIGEST_MAX_LINES`], then how many more), and a **Review all** link button to the dashboard's batch page.
pub fn digest_blocks(digest: &DigestView) -> Value {
    let mut blocks = vec![json!({ "type": "section", "text": mrkdwn(format!("*{}*", escape(&digest.headline()))) })];
    for item in digest.items.iter().take(DIGEST_MAX_LINES) {
        let line = escape(&digest.item_line(item));
        let text = format!("<{}|{line}>", digest.request_url(item.id));
        blocks.push(json!({ "type": "section", "text": mrkdwn(&text) }));
    }
    if digest.items.len() > DIGEST_MAX_LINES {
        let more = digest.items.len() - DIGEST_MAX_LINES;
        blocks.push(json!({ "type": "context", "elements": [mrkdwn(format!("…and {more} more"))] }));
    }
    blocks.push(json!({
        "type": "actions",
        "elements": [{
            "type": "button", "text": plain("Review all"), "action_id": ACTION_REVIEW_ALL, "style": "primary",
            "url": digest.review_all_url(),
        }],
    }));
    Value::Array(blocks)
}

pub fn reject_modal(request: &Request) -> Value {
    let mut blocks = vec![json!({
        "type": "section",
        "text": mrkdwn(format!("*{}*\n`{}`", escape(&truncate(title(request), 500)), escape(&truncate(&request.action, 200)))),
    })];
    if !request.reject_reasons.is_empty() {
        // Option values are indexes into the request's reasons, so reasons of any length fit Slack's 150 characters.
        let options: Vec<Value> = request
            .reject_reasons
            .iter()
            .take(100)
            .enumerate()
            .map(|(i, reason)| json!({ "text": plain(truncate(reason, 75)), "value": i.to_string() }))
            .collect();
        blocks.push(json!({
            "type": "input",
            "block_id": INPUT_REASON,
            "label": plain("Reason"),
            "element": {
                "type": "static_select", "action_id": INPUT_REASON,
                "placeholder": plain("Choose a reason"), "options": options,
            },
        }));
    }
    blocks.push(json!({
        "type": "input",
        "block_id": INPUT_COMMENT,
        "label": plain("Comment"),
        "hint": plain("Say why; the agent and the audit log get it."),
        "element": {
            "type": "plain_text_input", "action_id": INPUT_COMMENT, "multiline": true,
            "min_length": 1, "max_length": INPUT_MAX,
        },
    }));
    json!({
        "type": "modal",
        "callback_id": REJECT_CALLBACK_ID,
        "private_metadata": request.id.to_string(),
        "title": plain("Reject request"),
        "submit": plain("Reject"),
        "close": plain("Cancel"),
        "blocks": blocks,
    })
}

/// The modal a question's **Answer** button opens: the question and a required answer. `private_metadata` is the
/// request id.
pub fn answer_modal(request: &Request) -> Value {
    json!({
        "type": "modal",
        "callback_id": ANSWER_CALLBACK_ID,
        "private_metadata": request.id.to_string(),
        "title": plain("Answer"),
        "submit": plain("Answer"),
        "close": plain("Cancel"),
        "blocks": [
            { "type": "section", "text": mrkdwn(format!("*{}*", escape(&truncate(title(request), SECTION_MAX - 10)))) },
            {
                "type": "input",
                "block_id": INPUT_ANSWER,
                "label": plain("Your answer"),
                "element": { "type": "plain_text_input", "action_id": INPUT_ANSWER, "multiline": true, "max_length": INPUT_MAX },
            },
        ],
    })
}

/// The modal **Edit** opens: the arguments as JSON to change, and an optional comment; submitting approves with the
/// edited arguments. `None` when the arguments are too long for a Slack text input.
pub fn edit_modal(request: &Request) -> Option<Value> {
    let args = serde_json::to_string_pretty(&request.args).ok()?;
    if args.chars().count() > INPUT_MAX {
        return None;
    }
    Some(json!({
        "type": "modal",
        "callback_id": EDIT_CALLBACK_ID,
        "private_metadata": request.id.to_string(),
        "title": plain("Edit and approve"),
        "submit": plain("Approve"),
        "close": plain("Cancel"),
        "blocks": [
            {
                "type": "section",
                "text": mrkdwn(format!("*{}*\n`{}`", escape(&truncate(title(request), 500)), escape(&truncate(&request.action, 200)))),
            },
            {
                "type": "input",
                "block_id": INPUT_ARGS,
                "label": plain("Arguments (a JSON object)"),
                "element": {
                    "type": "plain_text_input", "action_id": INPUT_ARGS, "multiline": true,
                    "initial_value": args, "max_length": INPUT_MAX,
                },
            },
            {
                "type": "input",
                "block_id": INPUT_COMMENT,
                "optional": true,
                "label": plain("Comment"),
                "element": { "type": "plain_text_input", "action_id": INPUT_COMMENT, "multiline": true, "max_length": INPUT_MAX },
            },
        ],
    }))
}

// ---------------------------------------------------------------------------------------------------------------
// Inbound: signatures and interaction payloads

/// Why an inbound request is not accepted as Slack's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackAuthError {
    #[error("X-Slack-Request-Timestamp is missing or not a number of seconds")]
    BadTimestamp,
    #[error("X-Slack-Request-Timestamp is more than 5 minutes from now; a replay is refused")]
    StaleTimestamp,
    #[error("X-Slack-Signature does not match the body signed with the signing secret")]
    BadSignature,
}

impl SlackAuthError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SlackAuthError::BadTimestamp => "bad_timestamp",
            SlackAuthError::StaleTimestamp => "stale_timestamp",
            SlackAuthError::BadSignature => "bad_signature",
        }
    }
}

/// `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}` keyed with the signing secret: what Slack sends as
/// `X-Slack-Signature`.
pub fn sign(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(signing_secret, timestamp, body).finalize().into_bytes()))
}

fn mac(signing_secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// Checks that Slack sent `body`: `timestamp` (`X-Slack-Request-Timestamp`, Unix seconds) within 5 minutes of
/// `now` either way, and `signature` (`X-Slack-Signature`) the HMAC of it, compared in constant time.
pub fn verify_signature(
    signing_secret: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> Result<(), SlackAuthError> {
    let sent: i64 = timestamp.trim().parse().map_err(|_| SlackAuthError::BadTimestamp)?;
    if now.abs_diff(sent) > MAX_CLOCK_SKEW_SECONDS as u64 {
        return Err(SlackAuthError::StaleTimestamp);
    }
    let digest = signature
        .strip_prefix("v0=")
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .ok_or(SlackAuthError::BadSignature)?;
    mac(signing_secret, timestamp, body).verify_slice(&digest).map_err(|_| SlackAuthError::BadSignature)
}

/// Why an interaction body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body has no `payload` form field")]
    MissingPayload,
    #[error("the interaction payload is not what Slack sends: {0}")]
    Malformed(String),
}

impl PayloadError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            PayloadError::MissingPayload => "missing_payload",
            PayloadError::Malformed(_) => "malformed_payload",
        }
    }
}

/// An interaction Slack posts to the request URL, by its `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Interaction {
    /// A click on a button of a message.
    BlockActions(BlockActions),
    /// A modal submitted.
    ViewSubmission(ViewSubmission),
    /// Anything else (`view_closed`, shortcuts, …): acknowledged, ignored.
    #[serde(other)]
    Other,
}

/// The Slack user who interacted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlackUser {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
}

/// A `block_actions` payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BlockActions {
    pub user: SlackUser,
    pub actions: Vec<BlockAction>,
    pub trigger_id: String,
    #[serde(default)]
    pub response_url: Option<String>,
    #[serde(default)]
    pub container: Option<Container>,
    /// The message the buttons are on (absent for actions in modals).
    #[serde(default)]
    pub message: Option<Value>,
}

/// One action of a `block_actions` payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlockAction {
    pub action_id: String,
    #[serde(default)]
    pub block_id: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// Where the interaction happened.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Container {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message_ts: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// A `view_submission` payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ViewSubmission {
    pub user: SlackUser,
    pub view: SubmittedView,
    #[serde(default)]
    pub trigger_id: Option<String>,
}

/// The submitted modal.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SubmittedView {
    #[serde(default)]
    pub id: Option<String>,
    pub callback_id: String,
    #[serde(default)]
    pub private_metadata: String,
    pub state: ViewState,
}

/// The modal's input values: block id → action id → value.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ViewState {
    #[serde(default)]
    pub values: HashMap<String, HashMap<String, InputValue>>,
}

/// One input's value: `value` for text inputs, `selected_option` for selects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InputValue {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub selected_option: Option<SelectedOption>,
}

/// The option chosen in a select.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SelectedOption {
    pub value: String,
}

impl ViewState {
    /// The value of the input in block `block` whose action id is the same (how Signoff's modals are built): a
    /// text input's text or a select's option value; `None` when empty.
    pub fn value(&self, block: &str) -> Option<&str> {
        let input = self.values.get(block)?.get(block)?;
        input.value.as_deref().or(input.selected_option.as_ref().map(|o| o.value.as_str())).filter(|v| !v.is_empty())
    }
}

/// Reads an interaction request's body: the form field `payload`, holding the JSON.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, PayloadError> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value)
        .ok_or(PayloadError::MissingPayload)?;
    serde_json::from_str(&payload).map_err(|e| PayloadError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use signoff_domain::{
        Approval, ApproverId, Channel, Decision, NewRequest, PolicyMatch, RequestId, Requester, Verdict,
    };

    fn person(id: &str) -> ApproverId {
        ApproverId::parse(id).unwrap()
    }

    fn request() -> Request {
        let mut new = NewRequest::action("refund");
        new.summary = Some("Refund $50 to c_42".into());
        new.args = json!({"amount": 50, "customer": "c_42", "note": "x".repeat(400)});
        new.reasoning = Some("Duplicate charge <confirmed> & refunded".into());
        new.confidence = Some(0.82);
        new.tags = vec!["billing".into()];
        let requester = Requester { key_id: "k1".into(), key_name: "bot".into(), responsible: None };
        let at = "2024-05-01T15:00:00Z".parse().unwrap();
        let mut request = Request::new(RequestId::new(), new, requester, at);
        request.policy = Some(PolicyMatch {
            version: 1,
            content_hash: "h".into(),
            rule: Some("small-refund".into()),
            error: None,
            verdict: Verdict::Approve { rule: "small-refund".into() },
        });
        request.group = Some("finance".into());
        request.approvals_required = 2;
        request.deadline_at = Some("2024-05-01T17:00:00Z".parse().unwrap());
        request
    }

    fn view() -> RequestView {
        RequestView {
            public_url: "https://signoff.example.com".into(),
            group: "finance".into(),
            person: Some(person("dana")),
            person_names: [(person("dana"), "Dana".to_string()), (person("carl"), "Carl".to_string())].into(),
            moved_to: None,
        }
    }

    fn approval(who: &str, edited: bool) -> Approval {
        Approval {
            approver_id: person(who),
            channel: Channel::Slack,
            comment: None,
            args: json!({}),
            edited,
            at: "2024-05-01T16:02:00Z".parse().unwrap(),
        }
    }

    fn decide(request: &mut Request, outcome: DecisionOutcome, by: DecidedBy, edited: bool) {
        request.status = outcome.status();
        request.decision = Some(Decision {
            outcome,
            args: request.args.clone(),
            edited,
            comment: Some("not ours".into()),
            reason: None,
            by,
            at: "2024-05-01T16:02:00Z".parse().unwrap(),
            answer: None,
        });
    }

    fn actions_of(blocks: &Value) -> Vec<&Value> {
        blocks.as_array().unwrap().iter().filter(|b| b["type"] == "actions").collect()
    }

    fn context_text(blocks: &Value) -> String {
        let contexts: Vec<&Value> = blocks.as_array().unwrap().iter().filter(|b| b["type"] == "context").collect();
        assert_eq!(contexts.len(), 1, "one context line: {blocks:#}");
        contexts[0]["elements"][0]["text"].as_str().unwrap().to_string()
    }

    /// The example in Slack's "Verifying requests from Slack".
    #[test]
    fn slacks_documented_signature_verifies() {
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let timestamp = "1531420618";
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&\
                    channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&\
                    response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGl\
                    gcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(sign(secret, timestamp, body.as_bytes()), signature);
        assert_eq!(verify_signature(secret, timestamp, body.as_bytes(), signature, 1531420618 + 10), Ok(()));
        let tampered = body.replace("roadrunner", "coyote");
        assert_eq!(
            verify_signature(secret, timestamp, tampered.as_bytes(), signature, 1531420618),
            Err(SlackAuthError::BadSignature)
        );
        assert_eq!(
            verify_signature("another secret", timestamp, body.as_bytes(), signature, 1531420618),
            Err(SlackAuthError::BadSignature)
        );
    }

    #[test]
    fn timestamps_outside_five_minutes_and_malformed_signatures_are_refused() {
        let (secret, body) = ("s3cret", b"payload=%7B%7D".as_slice());
        let signature = sign(secret, "1700000000", body);
        let check = |now: i64| verify_signature(secret, "1700000000", body, &signature, now);
        assert_eq!(check(1700000000 + 300), Ok(()));
        assert_eq!(check(1700000000 - 300), Ok(()));
        assert_eq!(check(1700000000 + 301), Err(SlackAuthError::StaleTimestamp));
        assert_eq!(check(1700000000 - 301), Err(SlackAuthError::StaleTimestamp), "from the future too");
        assert_eq!(verify_signature(secret, "soon", body, &signature, 0), Err(SlackAuthError::BadTimestamp));
        for bad in ["", "v0=", "v1=00", "v0=zz", &signature[3..], &signature.to_uppercase()[..]] {
            assert_eq!(
                verify_signature(secret, "1700000000", body, bad, 1700000000),
                Err(SlackAuthError::BadSignature),
                "{bad}"
            );
        }
    }

    #[test]
    fn answers_are_classified() {
        let ok = classify("chat.postMessage", 200, None, br#"{"ok":true,"channel":"D1","ts":"1.2"}"#, false);
        assert_eq!(ok.unwrap()["ts"], "1.2");

        let limited = classify("chat.postMessage", 429, Some("30"), b"", false).unwrap_err();
        assert_eq!((limited.retry_after, limited.permanent), (Some(Duration::from_secs(30)), false));
        let limited = classify("chat.postMessage", 429, None, b"", false).unwrap_err();
        assert_eq!((limited.retry_after, limited.permanent), (None, false));

        for error in ["channel_not_found", "not_in_channel", "invalid_auth", "account_inactive", "no_permission"] {
            let body = json!({"ok": false, "error": error}).to_string();
            let failed = classify("chat.postMessage", 200, None, body.as_bytes(), false).unwrap_err();
            assert!(failed.permanent, "{error}");
            assert_eq!(failed.message, format!("slack chat.postMessage: {error}"));
        }
        for error in ["ratelimited", "internal_error", "fatal_error", "service_unavailable"] {
            let body = json!({"ok": false, "error": error}).to_string();
            assert!(!classify("chat.update", 200, None, body.as_bytes(), false).unwrap_err().permanent, "{error}");
        }
        assert!(!classify("chat.update", 500, None, b"oops", false).unwrap_err().permanent);
        assert!(!classify("chat.update", 503, None, b"", false).unwrap_err().permanent);
        assert!(!classify("chat.update", 200, None, b"<html>", false).unwrap_err().permanent);
        assert!(classify("chat.update", 404, None, b"", false).unwrap_err().permanent);
        assert!(classify("response_url", 200, None, b"ok", true).is_ok(), "a response_url answers plain `ok`");
        let odd = json!({"ok": false, "error": "Bearer xoxb-secret"}).to_string();
        let failed = classify("chat.update", 200, None, odd.as_bytes(), false).unwrap_err();
        assert!(!failed.message.contains("xoxb"), "odd errors are not echoed: {}", failed.message);
    }

    #[test]
    fn a_pending_request_shows_its_details_and_buttons() {
        let request = request();
        let blocks = request_blocks(&request, &view());
        let text = blocks.to_string();
        for wants in ["Refund $50 to c_42", "`refund`", "small-refund", "2024-05-01 17:00 UTC", "0.82", "billing"] {
            assert!(text.contains(wants), "{wants} in {blocks:#}");
        }
        assert!(text.contains("Duplicate charge &lt;confirmed&gt; &amp; refunded"), "mrkdwn escaped");
        assert!(text.contains("(102 more characters folded)"), "the 402-character note is folded: {text}");
        assert!(!text.contains(&"x".repeat(301)));
        let actions = actions_of(&blocks);
        assert_eq!(actions.len(), 1);
        let ids: Vec<&str> =
            actions[0]["elements"].as_array().unwrap().iter().map(|b| b["action_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["approve", "reject", "edit", "open_dashboard"]);
        assert_eq!(actions[0]["elements"][0]["value"], request.id.to_string());
        assert_eq!(actions[0]["elements"][3]["url"], format!("https://signoff.example.com/requests/{}", request.id));
        assert_eq!(request_text(&request, &view()), "Approval needed: Refund $50 to c_42 (refund, rule small-refund)");

        let mut no_edit = request.clone();
        no_edit.allow_edit = false;
        let blocks = request_blocks(&no_edit, &view());
        let ids: Vec<&str> = actions_of(&blocks)[0]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["approve", "reject", "open_dashboard"]);
    }

    #[test]
    fn quorum_progress_is_shown_beside_the_buttons() {
        let mut request = request();
        request.approvals.push(approval("carl", false));
        let blocks = request_blocks(&request, &view());
        assert_eq!(context_text(&blocks), "1 of 2 approvals: Carl");
        assert_eq!(actions_of(&blocks).len(), 1, "still waiting for one more");
        assert!(request_text(&request, &view()).ends_with("1 of 2 approvals: Carl"));
    }

    #[test]
    fn a_decided_request_replaces_the_buttons_with_the_outcome() {
        let dana = || DecidedBy::Human { approver_id: person("dana"), channel: Channel::Slack };
        let cases = [
            (DecisionOutcome::Approved, dana(), true, "Approved by Dana at 16:02 UTC (arguments edited)"),
            (DecisionOutcome::Rejected, dana(), false, "Rejected by Dana at 16:02 UTC: not ours"),
            (DecisionOutcome::Expired, DecidedBy::Timeout, false, "Expired: no decision before the deadline"),
            (DecisionOutcome::Cancelled, DecidedBy::Agent { key_id: "k1".into() }, false, "Cancelled by the agent"),
        ];
        for (outcome, by, edited, wants) in cases {
            let mut request = request();
            decide(&mut request, outcome, by, edited);
            let blocks = request_blocks(&request, &view());
            assert!(actions_of(&blocks).is_empty(), "no buttons once {outcome:?}");
            let line = context_text(&blocks);
            assert!(line.starts_with(wants), "{line}");
            assert!(line.contains(&format!("/requests/{}|Open in dashboard>", request.id)));
            assert!(request_text(&request, &view()).ends_with(wants));
        }
        let mut request = request();
        decide(&mut request, DecisionOutcome::Rejected, dana(), false);
        request.decision.as_mut().unwrap().reason = Some("fraud".into());
        assert!(
            context_text(&request_blocks(&request, &view()))
                .starts_with("Rejected by Dana at 16:02 UTC (reason: fraud): not ours")
        );
    }

    #[test]
    fn a_moved_request_says_where_it_went_without_buttons() {
        let request = request();
        let moved = RequestView { moved_to: Some("cfo".into()), ..view() };
        let blocks = request_blocks(&request, &moved);
        assert!(actions_of(&blocks).is_empty());
        assert!(context_text(&blocks).starts_with("Moved to cfo (escalated)"));
    }

    #[test]
    fn modals_carry_the_request_and_its_reasons() {
        let mut request = request();
        request.reject_reasons = vec!["fraud".into(), "duplicate".into()];
        let modal = reject_modal(&request);
        assert_eq!(
            (modal["callback_id"].as_str(), modal["private_metadata"].as_str()),
            (Some(REJECT_CALLBACK_ID), Some(&*request.id.to_string()))
        );
        let reason = &modal["blocks"][1];
        assert_eq!(
            (reason["block_id"].as_str(), reason["element"]["type"].as_str()),
            (Some("reason"), Some("static_select"))
        );
        assert_eq!(reason["element"]["options"][1]["text"]["text"], "duplicate");
        assert_eq!(reason["element"]["options"][1]["value"], "1");
        assert_eq!(modal["blocks"][2]["block_id"], "comment");
        assert!(modal["blocks"][2].get("optional").is_none(), "the comment is required");

        request.reject_reasons.clear();
        let blocks = reject_modal(&request)["blocks"].as_array().unwrap().clone();
        assert!(blocks.iter().all(|b| b["block_id"] != "reason"), "no select without reasons");

        let edit = edit_modal(&request).unwrap();
        let initial: Value =
            serde_json::from_str(edit["blocks"][1]["element"]["initial_value"].as_str().unwrap()).unwrap();
        assert_eq!(initial, request.args);
        request.args = json!({"blob": "y".repeat(4000)});
        assert_eq!(edit_modal(&request), None, "too long to edit in Slack");
    }

    #[test]
    fn interaction_payloads_are_read() {
        let click = json!({
            "type": "block_actions",
            "user": {"id": "U024BE7LH", "username": "dana", "team_id": "T1"},
            "api_app_id": "A1", "token": "legacy",
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D1", "is_ephemeral": false},
            "trigger_id": "123.456.abc",
            "team": {"id": "T1", "domain": "acme"},
            "channel": {"id": "D1", "name": "directmessage"},
            "message": {"type": "message", "ts": "1700000000.000100", "text": "hi"},
            "response_url": "https://hooks.slack.com/actions/T1/1/abc",
            "actions": [{"action_id": "approve", "block_id": "b1", "text": {"type": "plain_text", "text": "Approve"},
                         "value": "0190", "type": "button", "action_ts": "1700000001.1"}],
        });
        let body = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(click.to_string().as_bytes()).collect::<String>()
        );
        let Interaction::BlockActions(click) = parse_interaction(body.as_bytes()).unwrap() else { panic!("a click") };
        assert_eq!((click.user.id.as_str(), click.trigger_id.as_str()), ("U024BE7LH", "123.456.abc"));
        assert_eq!((click.actions[0].action_id.as_str(), click.actions[0].value.as_deref()), ("approve", Some("0190")));
        assert_eq!(click.container.unwrap().channel_id.as_deref(), Some("D1"));

        let submit = json!({
            "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1"},
            "view": {"id": "V1", "type": "modal", "callback_id": "signoff_reject", "private_metadata": "0190",
                     "state": {"values": {
                        "reason": {"reason": {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "fraud"}, "value": "0"}}},
                        "comment": {"comment": {"type": "plain_text_input", "value": "seen before"}}}},
                     "hash": "h"},
            "response_urls": [],
        });
        let body = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(submit.to_string().as_bytes()).collect::<String>()
        );
        let Interaction::ViewSubmission(submit) = parse_interaction(body.as_bytes()).unwrap() else {
            panic!("a submission")
        };
        assert_eq!(
            (submit.view.callback_id.as_str(), submit.view.private_metadata.as_str()),
            ("signoff_reject", "0190")
        );
        assert_eq!(
            (submit.view.state.value("reason"), submit.view.state.value("comment")),
            (Some("0"), Some("seen before"))
        );

        let closed = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(br#"{"type":"view_closed"}"#).collect::<String>()
        );
        assert_eq!(parse_interaction(closed.as_bytes()), Ok(Interaction::Other));
        assert_eq!(parse_interaction(b"other=1"), Err(PayloadError::MissingPayload));
        assert_eq!(parse_interaction(b"payload=%7B").unwrap_err().code(), "malformed_payload");
    }

    #[test]
    fn debug_never_prints_secrets() {
        let config =
            SlackConfig { bot_token: "xoxb-1".into(), signing_secret: "shh".into(), api_url: DEFAULT_API_URL.into() };
        let client = SlackClient::new(&config).unwrap();
        for text in [format!("{config:?}"), format!("{client:?}")] {
            assert!(!text.contains("xoxb-1") && !text.contains("shh"), "{text}");
        }
    }
}
