//! Discord interactions: `POST /channels/discord/interactions`, the endpoint Discord posts PINGs, button clicks and
//! modal submissions to. Each request's Ed25519 signature is checked with the application's public key first (a
//! bad signature or a stale timestamp is `401`); the person is the approver whose `discord` id clicked
//! (`member.user.id` in a guild, `user.id` in a DM), and every verdict goes through [`service::decide`] or
//! [`service::answer`]. The answer replaces the clicked message with the outcome (`UPDATE_MESSAGE`), opens a modal,
//! or tells the person alone why nothing was recorded (an ephemeral message).

use super::{load, may_decide};
use crate::error::ApiError;
use crate::extract::ApiBytes;
use crate::service::{self, Decider, DecisionInput};
use crate::{ActivePolicy, AppState};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use signoff_domain::{ApproverId, Channel, Request, RequestId};
use signoff_notify::RequestView;
use signoff_notify::discord::{
    self, Button, INPUT_ANSWER, INPUT_COMMENT, INPUT_REASON, Interaction, InteractionType, Modal,
};
use signoff_wire::ErrorCode;
use std::time::Duration;

/// How long a decision may take before Discord is answered anyway (Discord waits 3 s for the first answer); the
/// message is then edited by the outbox once the decision lands.
const ANSWER_BUDGET: Duration = Duration::from_millis(2500);

pub fn routes() -> Router<AppState> {
    Router::new().route("/channels/discord/interactions", post(interactions))
}

async fn interactions(State(state): State<AppState>, headers: HeaderMap, ApiBytes(body): ApiBytes) -> Response {
    let Some(config) = state.discord.clone() else {
        return ApiError::new(ErrorCode::NotFound, "Discord is not configured on this server").into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let now = chrono::Utc::now().timestamp();
    let (timestamp, signature) = (header("x-signature-timestamp"), header("x-signature-ed25519"));
    if let Err(error) = discord::verify_signature(&config.public_key, timestamp, &body, signature, now) {
        tracing::warn!(code = error.code(), "a Discord interaction was refused: {error}");
        return ApiError::new(ErrorCode::Unauthorized, format!("{}: {error}", error.code())).into_response();
    }
    let interaction = match discord::parse_interaction(&body) {
        Ok(interaction) => interaction,
        Err(error) => return ApiError::invalid(error).into_response(),
    };
    let answer = match interaction.kind() {
        InteractionType::Ping => discord::pong(),
        InteractionType::MessageComponent => {
            on_click(&state, &interaction).await.unwrap_or_else(|e| discord::ephemeral(&e))
        }
        InteractionType::ModalSubmit => {
            on_submit(&state, &interaction).await.unwrap_or_else(|e| discord::ephemeral(&e))
        }
        _ => discord::ephemeral("Signoff has no commands; use the buttons on its messages."),
    };
    axum::Json(answer).into_response()
}

/// The approver whose Discord id is `user_id` in the policy in force.
fn approver_of(policy: &ActivePolicy, user_id: Option<&str>) -> Result<ApproverId, String> {
    let user_id = user_id.ok_or("This interaction names no Discord user, so nothing was recorded.")?;
    policy
        .policy
        .approvers()
        .iter()
        .find(|approver| approver.discord.as_deref() == Some(user_id))
        .and_then(|approver| ApproverId::parse(&approver.id).ok())
        .ok_or_else(|| {
            format!(
                "Your Discord account ({user_id}) is not linked to any approver in Signoff's policy, so nothing was \
                 recorded. Ask a Signoff admin to add `discord: \"{user_id}\"` to your approver entry."
            )
        })
}

/// Who acted and on what: the approver behind the interaction, and the request, which they may decide now.
async fn checked(state: &AppState, interaction: &Interaction, id: RequestId) -> Result<(ApproverId, Request), String> {
    let policy = state.policy.current();
    let person = approver_of(&policy, interaction.user_id())?;
    let request = load(state, &id.to_string()).await?;
    may_decide(&policy, &person, &request)?;
    Ok((person, request))
}

fn decider(person: ApproverId) -> Decider {
    Decider { person, channel: Channel::Discord, key_id: None }
}

/// A button clicked: Approve decides, Reject and Answer open their modal, an option answers the question.
async fn on_click(state: &AppState, interaction: &Interaction) -> Result<Value, String> {
    let custom_id = interaction.custom_id().unwrap_or("");
    let button = Button::parse(custom_id).ok_or("This button is not one of Signoff's, so nothing was recorded.")?;
    let (person, request) = checked(state, interaction, button.request_id()).await?;
    let id = request.id;
    match button {
        Button::Approve(_) => {
            let input = DecisionInput { approve: true, comment: None, reason: None, args: None };
            settle(state, interaction, person, id, Act::Decide(input)).await
        }
        Button::Reject(_) => Ok(discord::modal(discord::reject_modal(&request))),
        Button::Answer(_) => Ok(discord::modal(discord::answer_modal(&request))),
        Button::AnswerOption(_, index) => {
            let text = request.options.get(index).ok_or("This option is not one of the question's.")?.clone();
            settle(state, interaction, person, id, Act::Answer(text)).await
        }
    }
}

/// A modal submitted: the reject modal rejects with its reason and comment, the answer modal answers.
async fn on_submit(state: &AppState, interaction: &Interaction) -> Result<Value, String> {
    let custom_id = interaction.custom_id().unwrap_or("");
    let modal = Modal::parse(custom_id).ok_or("This form is not one of Signoff's, so nothing was recorded.")?;
    let (person, request) = checked(state, interaction, modal.request_id()).await?;
    let values = interaction.modal_values();
    let value = |name: &str| values.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let id = request.id;
    match modal {
        Modal::Reject(_) => {
            let comment = value(INPUT_COMMENT).ok_or("Not recorded: a rejection needs a comment saying why.")?;
            let reason = match value(INPUT_REASON) {
                _ if request.reject_reasons.is_empty() => None,
                Some(given) => Some(discord::match_reason(&request.reject_reasons, given).ok_or_else(|| {
                    format!("Not recorded: `{given}` is not one of the reasons: {}.", numbered(&request.reject_reasons))
                })?),
                None => {
                    return Err(format!(
                        "Not recorded: give one of the reasons: {}.",
                        numbered(&request.reject_reasons)
                    ));
                }
            };
            let input = DecisionInput { approve: false, comment: Some(comment.to_string()), reason, args: None };
            settle(state, interaction, person, id, Act::Decide(input)).await
        }
        Modal::Answer(_) => {
            let text = value(INPUT_ANSWER).ok_or("Not recorded: the answer is empty.")?.to_string();
            settle(state, interaction, person, id, Act::Answer(text)).await
        }
    }
}

fn numbered(reasons: &[String]) -> String {
    reasons.iter().enumerate().map(|(i, r)| format!("{} {r}", i + 1)).collect::<Vec<_>>().join(", ")
}

/// What a person does to a request from Discord.
enum Act {
    Decide(DecisionInput),
    Answer(String),
}

/// Does `act` on its own task and answers with the clicked message showing the outcome; a refusal is told to the
/// person alone. One that takes longer than Discord waits is acknowledged (`DEFERRED_UPDATE_MESSAGE`) and goes on:
/// the outbox edits the message once it lands.
async fn settle(
    state: &AppState,
    interaction: &Interaction,
    person: ApproverId,
    id: RequestId,
    act: Act,
) -> Result<Value, String> {
    let addressee = (!interaction.in_guild()).then(|| person.clone());
    let owned = state.clone();
    let task = tokio::spawn(async move {
        match act {
            Act::Decide(input) => service::decide(&owned, id, decider(person), input).await,
            Act::Answer(text) => service::answer(&owned, id, decider(person), text).await,
        }
    });
    match tokio::time::timeout(ANSWER_BUDGET, task).await {
        Ok(Ok(Ok(request))) => Ok(discord::update_message(&request, &view_of(state, &request, addressee))),
        Ok(Ok(Err(error))) => Err(format!("Not recorded: {}", error.message)),
        Ok(Err(error)) => {
            tracing::error!(%error, "a Discord decision task failed");
            Err("Signoff failed to record this; the cause is in the server log.".into())
        }
        Err(_) => {
            tracing::warn!(%id, "a Discord decision took longer than Discord waits; answered before it finished");
            Ok(discord::deferred_update())
        }
    }
}

/// What the clicked message shows beyond the request: the policy's names; its group is where the request is now.
fn view_of(state: &AppState, request: &Request, person: Option<ApproverId>) -> RequestView {
    let policy = state.policy.current();
    let person_names = policy
        .policy
        .approvers()
        .iter()
        .filter_map(|a| ApproverId::parse(&a.id).ok().map(|id| (id, a.name.clone())))
        .collect();
    RequestView {
        public_url: state.public_url.clone(),
        group: request.group.clone().unwrap_or_else(|| signoff_policy::EVERYONE.to_string()),
        person,
        person_names,
        moved_to: None,
    }
}
