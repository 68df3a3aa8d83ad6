//! Inbound routes of the notification channels: where approvers' answers on Slack, Discord, Telegram, SMS and email
//! come back; what they share (loading the request a message names, and who may still decide it); and how the text
//! channels (SMS, Telegram) read a rejection's reason or a question's answer from free text.

pub mod discord;
pub mod email;
pub mod slack;
pub mod sms;
pub mod telegram;

use crate::error::ApiError;
use crate::service::DecisionInput;
use crate::{ActivePolicy, AppState};
use signoff_domain::{ApproverId, DecidedBy, Request, RequestId};
use signoff_policy::EVERYONE;
use signoff_wire::ErrorCode;

/// Refuses people who may not decide `request` now: it is decided, or they are not in its group.
pub(crate) fn may_decide(policy: &ActivePolicy, person: &ApproverId, request: &Request) -> Result<(), String> {
    if let Some(decision) = &request.decision {
        let by = match &decision.by {
            DecidedBy::Human { approver_id, .. } => {
                let name =
                    policy.policy.approver(approver_id.as_str()).map_or(approver_id.as_str(), |a| a.name.as_str());
                format!(" by {name}")
            }
            DecidedBy::Policy { rule } => format!(" by policy rule {rule}"),
            DecidedBy::Timeout => " at its deadline".to_string(),
            DecidedBy::Agent { .. } => " by the agent".to_string(),
            DecidedBy::Grant { grant_id, .. } => format!(" by standing grant {grant_id}"),
        };
        return Err(format!("This request is already {}{by}; nothing was recorded.", request.status.as_str()));
    }
    if request.status.is_final() {
        return Err(format!("This request is already {}; nothing was recorded.", request.status.as_str()));
    }
    let group = request.group.as_deref().unwrap_or(EVERYONE);
    if !policy.policy.is_member(person.as_str(), group) {
        return Err(format!(
            "Only members of the group `{group}` may decide this request, and you are not one, so nothing was \
             recorded."
        ));
    }
    Ok(())
}

/// The request a channel's message names (its id as text), or what to tell the person.
pub(crate) async fn load(state: &AppState, id: &str) -> Result<Request, String> {
    let id: RequestId = id.parse().map_err(|_| "This does not name a Signoff request.".to_string())?;
    load_by_id(state, id).await
}

/// The request `id`, or what to tell the person: that it no longer exists, or that it could not be loaded.
pub(crate) async fn load_by_id(state: &AppState, id: RequestId) -> Result<Request, String> {
    state.store.request(id).await.map_err(|error| match ApiError::from(error) {
        error if error.code == ErrorCode::NotFound => "This request no longer exists in Signoff.".to_string(),
        error => format!("Signoff could not load the request: {}", error.message),
    })
}

/// A rejection from free text: the text is the comment. When the request has `reasons`, the text starts with one of
/// them, by its 1-based number or its words (any case), and the comment is the rest (the reason itself when nothing
/// follows); `None` when it names none of them.
pub(crate) fn rejection_from_text(reasons: &[String], text: &str) -> Option<DecisionInput> {
    let text = text.trim();
    if reasons.is_empty() {
        return Some(DecisionInput { approve: false, comment: Some(text.to_string()), reason: None, args: None });
    }
    let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let by_number = first.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| reasons.get(i));
    let (reason, comment) = match by_number {
        Some(reason) => (reason.clone(), rest.trim()),
        None => {
            let reason =
                reasons.iter().find(|r| text.get(..r.len()).is_some_and(|start| start.eq_ignore_ascii_case(r)))?;
            (reason.clone(), text[reason.len()..].trim())
        }
    };
    let comment = if comment.is_empty() { reason.clone() } else { comment.to_string() };
    Some(DecisionInput { approve: false, comment: Some(comment), reason: Some(reason), args: None })
}

/// The entry of `choices` that `text` names: by its 1-based number, or by its text in any case.
pub(crate) fn pick(choices: &[String], text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(i) = text.parse::<usize>().ok().and_then(|n| n.checked_sub(1)) {
        return choices.get(i).cloned();
    }
    choices.iter().find(|choice| choice.eq_ignore_ascii_case(text)).cloned()
}

/// `1 Basic, 2 Pro`.
pub(crate) fn numbered(choices: &[String]) -> String {
    choices.iter().enumerate().map(|(i, c)| format!("{} {c}", i + 1)).collect::<Vec<_>>().join(", ")
}
