//! Inbound routes of the notification channels: where approvers' answers on Slack, Discord, Telegram, SMS and email
//! come back; and how the text channels (SMS, Telegram) read a rejection's reason or a question's answer from free text.

pub mod discord;
pub mod email;
pub mod slack;
pub mod sms;
pub mod telegram;

use crate::service::DecisionInput;

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
