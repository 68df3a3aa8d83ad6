//! Telegram updates: `POST /channels/telegram/webhook`, where Telegram posts button presses and messages sent to the
//! bot. Each update is checked against the webhook's secret token first, and acted on once (a repeated `update_id`
//! is acknowledged and ignored). The person is the approver whose `telegram` id pressed or wrote; every verdict goes
//! through [`service::decide`] or [`service::answer`]. Reject (and a question without options) asks for the text
//! with a forced reply, and the reply to that prompt decides. The outbox then edits every message about the request.

use crate::channels;
use crate::error::ApiError;
use crate::extract::ApiBytes;
use crate::service::{self, Decider, DecisionInput};
use crate::{ActivePolicy, AppState};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use signoff_domain::{ApproverId, Channel, Kind, Request, RequestId};
use signoff_notify::RequestView;
use signoff_notify::email::status_line;
use signoff_notify::telegram::{self, Callback, CallbackQuery, Message, Prompted, TelegramClient};
use signoff_policy::EVERYONE;
use signoff_wire::ErrorCode;

pub fn routes() -> Router<AppState> {
    Router::new().route(telegram::WEBHOOK_PATH, post(webhook))
}

async fn webhook(State(state): State<AppState>, headers: HeaderMap, ApiBytes(body): ApiBytes) -> Response {
    let Some(config) = state.telegram.clone() else {
        return ApiError::new(ErrorCode::NotFound, "Telegram is not configured on this server").into_response();
    };
    let secret = headers.get("x-telegram-bot-api-secret-token").and_then(|v| v.to_str().ok());
    if let Err(error) = telegram::verify_secret(&config.webhook_secret, secret) {
        tracing::warn!(code = error.code(), "a Telegram update was refused: {error}");
        return ApiError::new(ErrorCode::Unauthorized, error.to_string()).into_response();
    }
    let update = match telegram::parse_update(&body) {
        Ok(update) => update,
        Err(message) => return ApiError::invalid(message).into_response(),
    };
    let (client, bot_id) = match (TelegramClient::new(&config), config.bot_id()) {
        (Ok(client), Some(bot_id)) => (client, bot_id),
        (Err(error), _) => {
            tracing::error!(%error, "cannot answer a Telegram update");
            return StatusCode::OK.into_response();
        }
        (_, None) => return StatusCode::OK.into_response(),
    };
    // Telegram delivers again what it thinks went unanswered: each update acts once.
    let seen = format!("telegram-update:{bot_id}:{}", update.update_id);
    match state.store.use_link(&seen, "telegram-update").await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(update_id = update.update_id, "a repeated Telegram update was acknowledged and ignored");
            return StatusCode::OK.into_response();
        }
        Err(error) => return ApiError::from(error).into_response(),
    }
    if let Some(query) = update.callback_query {
        on_callback(&state, &client, query).await;
    } else if let Some(message) = update.message {
        on_message(&state, &client, bot_id, message).await;
    }
    StatusCode::OK.into_response()
}

/// The approver whose `telegram` id is `user_id` in the policy in force.
fn approver_of(policy: &ActivePolicy, user_id: i64) -> Result<ApproverId, String> {
    let id = user_id.to_string();
    policy
        .policy
        .approvers()
        .iter()
        .find(|approver| approver.telegram.as_deref().map(str::trim) == Some(id.as_str()))
        .and_then(|approver| ApproverId::parse(&approver.id).ok())
        .ok_or_else(|| {
            format!(
                "Your Telegram account ({id}) is not linked to any approver in Signoff's policy, so nothing was \
                 recorded. Ask a Signoff admin to add `telegram: \"{id}\"` to your approver entry."
            )
        })
}

/// The request, if it can still be acted on by `person`: pending, and `person` a member of its group.
async fn open_request(
    state: &AppState,
    policy: &ActivePolicy,
    person: &ApproverId,
    id: RequestId,
) -> Result<Request, String> {
    let request = super::load_by_id(state, id).await?;
    if request.status.is_final() {
        return Err(format!(
            "Already decided: {}. Nothing was recorded.",
            status_line(&request, &view(state, &request))
        ));
    }
    let group = request.group.as_deref().unwrap_or(EVERYONE);
    if !policy.policy.is_member(person.as_str(), group) {
        return Err(format!(
            "Only members of `{group}` may decide this request, and you are not one; nothing was recorded."
        ));
    }
    Ok(request)
}

fn decider(person: ApproverId) -> Decider {
    Decider { person, channel: Channel::Telegram, key_id: None }
}

/// A button press: acted on, then answered (a refusal in a dialog).
async fn on_callback(state: &AppState, client: &TelegramClient, query: CallbackQuery) {
    let answer = press(state, client, &query).await;
    let (text, alert) = match &answer {
        Ok(text) => (text.as_str(), false),
        Err(text) => (text.as_str(), true),
    };
    if let Err(error) = client.answer_callback(&query.id, text, alert).await {
        tracing::warn!(%error, "cannot answer a Telegram button press");
    }
}

async fn press(state: &AppState, client: &TelegramClient, query: &CallbackQuery) -> Result<String, String> {
    let policy = state.policy.current();
    let person = approver_of(&policy, query.from.id)?;
    let callback = query.data.as_deref().and_then(Callback::parse).ok_or("This button is not one of Signoff's.")?;
    let request = open_request(state, &policy, &person, callback.request_id()).await?;
    let prompt_in = || {
        query
            .message
            .as_ref()
            .map(|m| (m.chat.id, m.message_id))
            .ok_or("This message is too old to reply to; decide in the dashboard.".to_string())
    };
    match callback {
        Callback::Approve(id) => {
            let input = DecisionInput { approve: true, comment: None, reason: None, args: None };
            service::decide(state, id, decider(person), input)
                .await
                .map_err(|e| format!("Not recorded: {}", e.message))?;
            Ok("Approved".into())
        }
        Callback::Option(id, index) => {
            let option = request.options.get(index).ok_or("This option is not one of the question's.")?.clone();
            service::answer(state, id, decider(person), option)
                .await
                .map_err(|e| format!("Not recorded: {}", e.message))?;
            Ok("Answered".into())
        }
        Callback::Reject(_) if request.kind == Kind::Question => Err("A question is answered, not rejected.".into()),
        Callback::Reject(_) => {
            let (chat, message) = prompt_in()?;
            client
                .ask_reason(chat, message, &request)
                .await
                .map_err(|e| format!("Signoff could not ask for the reason: {e}"))?;
            Ok("Reply with the reason to reject".into())
        }
        Callback::Answer(_) => {
            let (chat, message) = prompt_in()?;
            client
                .ask_answer(chat, message, &request)
                .await
                .map_err(|e| format!("Signoff could not ask for the answer: {e}"))?;
            Ok("Reply with your answer".into())
        }
    }
}

/// A message to the bot: a reply to one of its prompts decides; anything else is told how Signoff works here.
async fn on_message(state: &AppState, client: &TelegramClient, bot_id: i64, message: Message) {
    // Only private chats with people: in a group the bot would answer everyone's every message.
    let Some(from) = message.from.as_ref().filter(|from| !from.is_bot && from.id == message.chat.id) else { return };
    let policy = state.policy.current();
    let said = match (telegram::prompted(&message, bot_id), approver_of(&policy, from.id)) {
        (_, Err(unlinked)) => unlinked,
        (None, Ok(_)) => "Signoff sends you requests here; use the buttons under them. To reject, press Reject and \
                          reply to the question that follows."
            .to_string(),
        (Some(prompted), Ok(person)) => {
            let text = message.text.as_deref().unwrap_or("").trim().to_string();
            reply(state, &policy, person, prompted, text).await.unwrap_or_else(|refused| refused)
        }
    };
    if let Err(error) = client.say(message.chat.id, &said).await {
        tracing::warn!(%error, "cannot answer a Telegram message");
    }
}

/// A reply to a prompt: the reason for a rejection, or a question's answer.
async fn reply(
    state: &AppState,
    policy: &ActivePolicy,
    person: ApproverId,
    prompted: Prompted,
    text: String,
) -> Result<String, String> {
    if text.is_empty() {
        return Err("Nothing was recorded: the reply has no text. Press the button again to try once more.".into());
    }
    match prompted {
        Prompted::Reason(id) => {
            let request = open_request(state, policy, &person, id).await?;
            let input = channels::rejection_from_text(&request.reject_reasons, &text).ok_or_else(|| {
                format!(
                    "Nothing was recorded: start with one of the reasons, by number or words ({}). Press Reject again to try once more.",
                    channels::numbered(&request.reject_reasons)
                )
            })?;
            let decided = service::decide(state, id, decider(person), input)
                .await
                .map_err(|e| format!("Not recorded: {}", e.message))?;
            Ok(format!("Recorded. {}", status_line(&decided, &view(state, &decided))))
        }
        Prompted::Answer(id) => {
            let request = open_request(state, policy, &person, id).await?;
            let answer = if request.options.is_empty() {
                text
            } else {
                channels::pick(&request.options, &text).ok_or_else(|| {
                    format!("Nothing was recorded: answer with one of {}.", channels::numbered(&request.options))
                })?
            };
            let answered = service::answer(state, id, decider(person), answer)
                .await
                .map_err(|e| format!("Not recorded: {}", e.message))?;
            Ok(format!("Recorded. {}", status_line(&answered, &view(state, &answered))))
        }
    }
}

/// The policy's names, for "Approved by Hana".
fn view(state: &AppState, request: &Request) -> RequestView {
    let policy = state.policy.current();
    let person_names = policy
        .policy
        .approvers()
        .iter()
        .filter_map(|a| Some((ApproverId::parse(&a.id).ok()?, a.name.clone())))
        .collect();
    RequestView {
        public_url: state.public_url.clone(),
        group: request.group.clone().unwrap_or_else(|| EVERYONE.to_string()),
        person_names,
        ..RequestView::default()
    }
}
