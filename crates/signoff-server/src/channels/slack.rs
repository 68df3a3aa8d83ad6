//! Slack interactivity: `POST /channels/slack/interactions`, where Slack sends button clicks and modal submissions.
//! Each request is checked against the signing secret first; a click is acknowledged at once and acted on after
//! (Slack waits 3 seconds at most); the person is the approver whose `slack` id clicked, and every verdict goes
//! through [`service::decide`]. People who may not decide are told why, privately, through the `response_url`.

use super::{load, may_decide};
use crate::error::ApiError;
use crate::extract::ApiBytes;
use crate::service::{self, Decider, DecisionInput};
use crate::{ActivePolicy, AppState};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use signoff_domain::{ApproverId, Channel};
use signoff_notify::slack::{
    self, ACTION_ANSWER, ACTION_ANSWER_OPTION, ACTION_APPROVE, ACTION_EDIT, ACTION_REJECT, ANSWER_CALLBACK_ID,
    BlockActions, EDIT_CALLBACK_ID, INPUT_ANSWER, INPUT_ARGS, INPUT_COMMENT, INPUT_REASON, Interaction,
    REJECT_CALLBACK_ID, SlackClient, SlackConfig, ViewSubmission,
};
use signoff_wire::ErrorCode;
use std::time::Duration;

/// How long a modal submission waits for its decision before answering Slack anyway (Slack gives up at 3 s).
const SUBMISSION_BUDGET: Duration = Duration::from_millis(2500);

pub fn routes() -> Router<AppState> {
    Router::new().route("/channels/slack/interactions", post(interactions))
}

async fn interactions(State(state): State<AppState>, headers: HeaderMap, ApiBytes(body): ApiBytes) -> Response {
    let Some(config) = state.slack.clone() else {
        return ApiError::new(ErrorCode::NotFound, "Slack is not configured on this server").into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let now = chrono::Utc::now().timestamp();
    let (timestamp, signature) = (header("x-slack-request-timestamp"), header("x-slack-signature"));
    if let Err(error) = slack::verify_signature(&config.signing_secret, timestamp, &body, signature, now) {
        tracing::warn!(code = error.code(), "a Slack interaction was refused: {error}");
        return ApiError::new(ErrorCode::Unauthorized, format!("{}: {error}", error.code())).into_response();
    }
    // Slack retries what it thinks went unanswered; the first delivery was (or is being) handled.
    if headers.contains_key("x-slack-retry-num") {
        tracing::info!(retry = header("x-slack-retry-num"), "a Slack retry was acknowledged and ignored");
        return StatusCode::OK.into_response();
    }
    let interaction = match slack::parse_interaction(&body) {
        Ok(interaction) => interaction,
        Err(error) => return ApiError::invalid(format!("{}: {error}", error.code())).into_response(),
    };
    match interaction {
        Interaction::BlockActions(click) => {
            tokio::spawn(async move { on_click(&state, &config, click).await });
            StatusCode::OK.into_response()
        }
        Interaction::ViewSubmission(submission) => on_submission(state, submission).await,
        Interaction::Other => StatusCode::OK.into_response(),
    }
}

/// The approver whose Slack id is `slack_id` in the policy in force.
fn approver_of(policy: &ActivePolicy, slack_id: &str) -> Result<ApproverId, String> {
    policy
        .policy
        .approvers()
        .iter()
        .find(|approver| approver.slack.as_deref() == Some(slack_id))
        .and_then(|approver| ApproverId::parse(&approver.id).ok())
        .ok_or_else(|| {
            format!(
                "Your Slack account ({slack_id}) is not linked to any approver in Signoff's policy, so nothing was \
                 recorded. Ask a Signoff admin to add `slack: {slack_id}` to your approver entry."
            )
        })
}

fn decider(person: ApproverId) -> Decider {
    Decider { person, channel: Channel::Slack, key_id: None }
}

/// A button click, after Slack was answered. Anything that stops it is told to the person who clicked.
async fn on_click(state: &AppState, config: &SlackConfig, click: BlockActions) {
    let Some(action) = click.actions.first() else { return };
    let acts = [ACTION_APPROVE, ACTION_REJECT, ACTION_EDIT, ACTION_ANSWER, ACTION_ANSWER_OPTION];
    if !acts.contains(&action.action_id.as_str()) {
        return; // "Open in dashboard" is a link; Slack reports its clicks too.
    }
    let client = match SlackClient::new(config) {
        Ok(client) => client,
        Err(error) => return tracing::warn!(%error, "cannot answer a Slack click"),
    };
    let outcome = click_action(state, &client, &click, &action.action_id, action.value.as_deref().unwrap_or("")).await;
    if let Err(text) = outcome {
        let Some(response_url) = &click.response_url else { return };
        if let Err(error) = client.respond(response_url, &text).await {
            tracing::warn!(%error, "cannot tell a Slack user why their click was refused");
        }
    }
}

async fn click_action(
    state: &AppState,
    client: &SlackClient,
    click: &BlockActions,
    action_id: &str,
    value: &str,
) -> Result<(), String> {
    let policy = state.policy.current();
    let person = approver_of(&policy, &click.user.id)?;
    // An option button's value is `{request id}:{option index}`.
    let (id, option) = value.split_once(':').map_or((value, None), |(id, index)| (id, Some(index)));
    let request = load(state, id).await?;
    may_decide(&policy, &person, &request)?;
    match action_id {
        ACTION_ANSWER_OPTION => {
            let text = option.and_then(|i| i.parse::<usize>().ok()).and_then(|i| request.options.get(i));
            let text = text.ok_or("This option is not one of the question's.")?.clone();
            match service::answer(state, request.id, decider(person), text).await {
                Ok(_) => Ok(()),
                Err(error) => Err(format!("Not recorded: {}", error.message)),
            }
        }
        ACTION_ANSWER => client
            .open_answer_modal(&click.trigger_id, &request)
            .await
            .map_err(|error| format!("Signoff could not open the answer form: {error}")),
        ACTION_APPROVE => {
            let input = DecisionInput { approve: true, comment: None, reason: None, args: None };
            match service::decide(state, request.id, decider(person), input).await {
                Ok(_) => Ok(()),
                Err(error) => Err(format!("Not recorded: {}", error.message)),
            }
        }
        ACTION_REJECT => client
            .open_reject_modal(&click.trigger_id, &request)
            .await
            .map_err(|error| format!("Signoff could not open the reject form: {error}")),
        _ if !request.allow_edit => Err("The policy rule for this request does not allow edited arguments.".into()),
        _ => client
            .open_edit_modal(&click.trigger_id, &request)
            .await
            .map_err(|error| format!("Signoff could not open the edit form: {error}")),
    }
}

/// Slack's answer that keeps the modal open and shows `message` under the input `block`.
fn input_error(block: &str, message: &str) -> Response {
    let message: String = message.chars().take(300).collect();
    let mut errors = serde_json::Map::new();
    errors.insert(block.to_string(), Value::String(message));
    axum::Json(json!({ "response_action": "errors", "errors": errors })).into_response()
}

/// The answer modal submitted: answers the question, or says what to fix.
async fn on_answer(state: AppState, submission: ViewSubmission) -> Response {
    let policy = state.policy.current();
    let checked = async {
        let person = approver_of(&policy, &submission.user.id)?;
        let request = load(&state, &submission.view.private_metadata).await?;
        may_decide(&policy, &person, &request)?;
        Ok::<_, String>((person, request.id))
    };
    let (person, id) = match checked.await {
        Ok(checked) => checked,
        Err(message) => return input_error(INPUT_ANSWER, &message),
    };
    let text = submission.view.state.value(INPUT_ANSWER).unwrap_or("").to_string();
    let answered = tokio::spawn(async move { service::answer(&state, id, decider(person), text).await });
    match tokio::time::timeout(SUBMISSION_BUDGET, answered).await {
        Ok(Ok(Ok(_))) => StatusCode::OK.into_response(),
        Ok(Ok(Err(error))) => input_error(INPUT_ANSWER, &format!("Not recorded: {}", error.message)),
        Ok(Err(error)) => {
            tracing::error!(%error, "a Slack answer task failed");
            input_error(INPUT_ANSWER, "Signoff failed to record this; the cause is in the server log.")
        }
        Err(_) => {
            tracing::warn!(%id, "a Slack answer took longer than Slack waits; answered before it finished");
            StatusCode::OK.into_response()
        }
    }
}

/// A modal submitted: decides, or says what to fix. An empty `200` closes the modal.
async fn on_submission(state: AppState, submission: ViewSubmission) -> Response {
    let view = &submission.view;
    let reject = match view.callback_id.as_str() {
        REJECT_CALLBACK_ID => true,
        EDIT_CALLBACK_ID => false,
        ANSWER_CALLBACK_ID => return on_answer(state, submission).await,
        _ => return StatusCode::OK.into_response(),
    };
    let main_block = if reject { INPUT_COMMENT } else { INPUT_ARGS };
    let policy = state.policy.current();
    let person = match approver_of(&policy, &submission.user.id) {
        Ok(person) => person,
        Err(message) => return input_error(main_block, &message),
    };
    let request = match load(&state, &view.private_metadata).await {
        Ok(request) => request,
        Err(message) => return input_error(main_block, &message),
    };
    if let Err(message) = may_decide(&policy, &person, &request) {
        return input_error(main_block, &message);
    }
    let comment = view.state.value(INPUT_COMMENT).map(str::trim).filter(|c| !c.is_empty()).map(str::to_string);
    let input = if reject {
        if comment.is_none() {
            return input_error(INPUT_COMMENT, "A rejection needs a comment saying why.");
        }
        let reason = match view.state.value(INPUT_REASON) {
            _ if request.reject_reasons.is_empty() => None,
            Some(index) => index.parse::<usize>().ok().and_then(|i| request.reject_reasons.get(i)).cloned(),
            None => None,
        };
        if !request.reject_reasons.is_empty() && reason.is_none() {
            return input_error(INPUT_REASON, "Choose one of the reasons.");
        }
        DecisionInput { approve: false, comment, reason, args: None }
    } else {
        let args = match serde_json::from_str::<Value>(view.state.value(INPUT_ARGS).unwrap_or("")) {
            Ok(args) if args.is_object() => args,
            Ok(_) => return input_error(INPUT_ARGS, "The arguments must be a JSON object ({ … })."),
            Err(error) => return input_error(INPUT_ARGS, &format!("This is not valid JSON: {error}")),
        };
        DecisionInput { approve: true, comment, reason: None, args: Some(args) }
    };
    let id = request.id;
    let decision = tokio::spawn(async move { service::decide(&state, id, decider(person), input).await });
    match tokio::time::timeout(SUBMISSION_BUDGET, decision).await {
        Ok(Ok(Ok(_))) => StatusCode::OK.into_response(),
        Ok(Ok(Err(error))) => {
            let block = match error.code {
                ErrorCode::InvalidReason if !request.reject_reasons.is_empty() => INPUT_REASON,
                ErrorCode::CommentRequired => INPUT_COMMENT,
                _ => main_block,
            };
            input_error(block, &format!("Not recorded: {}", error.message))
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "a Slack decision task failed");
            input_error(main_block, "Signoff failed to record this; the cause is in the server log.")
        }
        Err(_) => {
            // The decision goes on; the message is updated once it lands.
            tracing::warn!(%id, "a Slack modal decision took longer than Slack waits; answered before it finished");
            StatusCode::OK.into_response()
        }
    }
}
