//! What a tool answers about a request: the part an agent acts on, and a sentence saying what happened and what to
//! do next.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use signoff_wire::{DecidedBy, Decision, Outcome, Request, RequestId, Status};

/// A request as a tool reports it.
#[derive(Debug, Serialize)]
pub struct RequestView {
    pub request_id: RequestId,
    pub status: Status,
    pub action: String,
    /// The arguments proposed; once approved, run with `decision.args` (an approver may have edited them).
    pub args: Value,
    /// What happened and what to do next.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The group whose members decide it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// What the agent reported after running it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

impl From<Request> for RequestView {
    fn from(request: Request) -> Self {
        RequestView {
            message: message(&request),
            request_id: request.id,
            status: request.status,
            action: request.action,
            args: request.args,
            decision: request.decision,
            group: request.group,
            deadline_at: request.deadline_at,
            question: request.question,
            options: request.options,
            outcome: request.outcome,
        }
    }
}

/// Who ended a request, in words: `dana (slack)`, `policy rule small-expense`, `its deadline`, `the agent`.
pub fn decided_by(by: &DecidedBy) -> String {
    match by {
        DecidedBy::Human { approver_id, channel } => format!("{approver_id} ({channel})"),
        DecidedBy::Policy { rule } => format!("policy rule `{rule}`"),
        DecidedBy::Timeout => "its deadline".into(),
        DecidedBy::Agent { .. } => "the agent".into(),
        DecidedBy::Grant { grant_id, approver_id } => format!("standing grant {grant_id} of {approver_id}"),
    }
}

/// `: comment` when the decision has one, else nothing.
fn said(decision: &Decision) -> String {
    match (&decision.comment, &decision.reason) {
        (Some(comment), Some(reason)) => format!(": {comment} (reason: {reason})"),
        (Some(comment), None) => format!(": {comment}"),
        (None, Some(reason)) => format!(" (reason: {reason})"),
        (None, None) => String::new(),
    }
}

/// ` Comment: …` when the decision has one, else nothing.
fn comment(decision: &Decision) -> String {
    decision.comment.as_deref().map(|comment| format!(" Comment: {comment}")).unwrap_or_default()
}

pub(crate) fn message(request: &Request) -> String {
    let Some(decision) = &request.decision else { return pending_message(request) };
    let by = decided_by(&decision.by);
    match request.status {
        Status::Pending => pending_message(request),
        Status::Approved if decision.edited => format!(
            "Approved by {by} with edited arguments: {}. Proceed with these arguments (`decision.args`), not your \
             own.{}",
            decision.args,
            comment(decision)
        ),
        Status::Approved => format!("Approved by {by}. Proceed with the arguments as proposed.{}", comment(decision)),
        Status::Rejected => format!("Rejected by {by}{}. Do not run it.", said(decision)),
        Status::Expired => format!("Expired: nobody decided before the deadline{}. Do not run it.", said(decision)),
        Status::Cancelled => format!("Cancelled by {by}{}. Do not run it.", said(decision)),
        Status::Answered => format!("Answered by {by}: {}", decision.answer.as_deref().unwrap_or_default()),
    }
}

fn pending_message(request: &Request) -> String {
    let group = request.group.as_deref().map(|group| format!(" of group `{group}`")).unwrap_or_default();
    let deadline = request.deadline_at.map(|at| format!(" (deadline {})", at.to_rfc3339())).unwrap_or_default();
    format!(
        "Pending: waiting for a person{group}{deadline}. Do not act yet; call `get_approval` with request_id `{}` and a \
         `wait_s` to keep waiting.",
        request.id
    )
}
