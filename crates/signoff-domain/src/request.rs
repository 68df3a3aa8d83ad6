//! Approval requests and the one-way status machine `pending → approved | rejected | expired | cancelled`.

use crate::event::{EventKind, NewEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Requests are identified by UUIDv7, so ids sort by creation time.
pub type RequestId = Uuid;

/// `pre`: the agent asks before acting. `post`: the agent reports what it already did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Pre,
    Post,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Pre => "pre",
            Mode::Post => "post",
        }
    }
}

/// Where a request is in its life. Only `pending` can change, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    Expired,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Pending, Status::Approved, Status::Rejected, Status::Expired, Status::Cancelled]
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        self != Status::Pending
    }
}

/// A proposed (or, in `post` mode, performed) action as the agent submits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub action: String,
    #[serde(default = "empty_object")]
    pub args: Value,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default = "empty_object")]
    pub context: Value,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub state: Option<Value>,
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl NewRequest {
    /// A request for `action` with everything else left empty.
    pub fn action(action: impl Into<String>) -> Self {
        NewRequest {
            action: action.into(),
            args: empty_object(),
            summary: None,
            reasoning: None,
            context: empty_object(),
            confidence: None,
            tags: Vec::new(),
            mode: Mode::Pre,
            run_id: None,
            call_id: None,
            callback_url: None,
            state: None,
            timeout_s: None,
        }
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), DomainError> {
        let invalid =
            |field: &'static str, message: &str| Err(DomainError::Invalid { field, message: message.to_string() });
        let chars = self.action.chars().count();
        if chars == 0 || chars > 128 {
            return invalid("action", "must be 1 to 128 characters");
        }
        if !self.args.is_object() {
            return invalid("args", "must be a JSON object");
        }
        if !self.context.is_object() {
            return invalid("context", "must be a JSON object");
        }
        if let Some(state) = &self.state
            && !state.is_object()
        {
            return invalid("state", "must be a JSON object");
        }
        if let Some(confidence) = self.confidence
            && !(0.0..=1.0).contains(&confidence)
        {
            return invalid("confidence", "must be between 0 and 1");
        }
        if self.tags.len() > 64 {
            return invalid("tags", "at most 64 tags");
        }
        if self.tags.iter().any(|tag| tag.is_empty() || tag.chars().count() > 128) {
            return invalid("tags", "each tag must be 1 to 128 characters");
        }
        for (field, value) in [("run_id", &self.run_id), ("call_id", &self.call_id)] {
            if let Some(value) = value
                && (value.is_empty() || value.chars().count() > 256)
            {
                return invalid(field, "must be 1 to 256 characters");
            }
        }
        if self.call_id.is_some() && self.run_id.is_none() {
            return invalid("call_id", "needs run_id: the pair (run_id, call_id) is the idempotency key");
        }
        if let Some(url) = &self.callback_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid("callback_url", "must be an http:// or https:// URL");
        }
        if self.timeout_s == Some(0) {
            return invalid("timeout_s", "must be at least 1 second");
        }
        // Texts are indexed as-is, and NUL is the one character databases refuse there.
        let texts = [Some(&self.action), self.run_id.as_ref(), self.call_id.as_ref(), self.callback_url.as_ref()];
        if texts.into_iter().flatten().any(|text| text.contains('\0')) {
            return invalid("body", "action, run_id, call_id and callback_url must not contain NUL (\\u0000)");
        }
        Ok(())
    }

    /// The idempotency key implied by (`run_id`, `call_id`), when both are set.
    pub fn run_call_key(&self) -> Option<String> {
        match (&self.run_id, &self.call_id) {
            // Length-prefixed, so no (run, call) pair can collide with another.
            (Some(run), Some(call)) => Some(format!("run:{}:{run}:call:{call}", run.len())),
            _ => None,
        }
    }

    /// A hash of the body, to tell a retry (same body) from a conflicting reuse of a key.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_value(self).unwrap_or(Value::Null).to_string();
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// The key that created a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub key_id: String,
    pub key_name: String,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    Approved,
    Rejected,
    Expired,
    Cancelled,
}

impl DecisionOutcome {
    pub fn status(self) -> Status {
        match self {
            DecisionOutcome::Approved => Status::Approved,
            DecisionOutcome::Rejected => Status::Rejected,
            DecisionOutcome::Expired => Status::Expired,
            DecisionOutcome::Cancelled => Status::Cancelled,
        }
    }
}

/// Who ended a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecidedBy {
    Human { approver_id: String, channel: String },
    Policy { rule: String },
    Timeout,
    Agent { key_id: String },
}

/// The one decision a request gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: DecisionOutcome,
    /// The arguments to execute: the proposed ones, or the approver's edit.
    pub args: Value,
    pub edited: bool,
    pub comment: Option<String>,
    pub reason: Option<String>,
    pub by: DecidedBy,
    pub at: DateTime<Utc>,
}

/// One approver's approval, counted toward the approvals a request needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approver_id: String,
    pub channel: String,
    pub comment: Option<String>,
    pub args: Option<Value>,
    pub at: DateTime<Utc>,
}

/// What the agent reports after executing (or failing to execute) the action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub ok: bool,
    pub detail: Option<Value>,
    pub at: DateTime<Utc>,
}

/// A request as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub status: Status,
    pub action: String,
    pub args: Value,
    pub summary: Option<String>,
    pub reasoning: Option<String>,
    pub context: Value,
    pub confidence: Option<f64>,
    pub tags: Vec<String>,
    pub mode: Mode,
    pub run_id: Option<String>,
    pub call_id: Option<String>,
    pub callback_url: Option<String>,
    pub state: Option<Value>,
    pub timeout_s: Option<u64>,
    pub requested_by: Requester,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Distinct approvers needed before the request is approved.
    pub approvals_required: u32,
    pub approvals: Vec<Approval>,
    pub decision: Option<Decision>,
    pub outcome: Option<Outcome>,
}

/// Why a change to a request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("the request is already {0}")]
    AlreadyDecided(&'static str),
    #[error("a rejection needs a comment saying why")]
    CommentRequired,
    #[error("edited args must be a JSON object, and only an approval can carry them")]
    InvalidEdit,
    #[error("whoever created a request cannot approve it")]
    SelfApproval,
    #[error("an outcome was already reported for this request")]
    OutcomeAlreadyReported,
    #[error("the request is still pending; report the outcome after it is decided")]
    NotDecided,
}

/// A person's verdict on a request.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanVerdict {
    pub approve: bool,
    pub approver_id: String,
    /// The key that carries the verdict, to refuse self-approval.
    pub key_id: String,
    pub channel: String,
    pub comment: Option<String>,
    pub reason: Option<String>,
    pub args: Option<Value>,
}

impl Request {
    /// A new pending request.
    pub fn new(id: RequestId, new: NewRequest, requested_by: Requester, now: DateTime<Utc>) -> Self {
        Request {
            id,
            status: Status::Pending,
            action: new.action,
            args: new.args,
            summary: new.summary,
            reasoning: new.reasoning,
            context: new.context,
            confidence: new.confidence,
            tags: new.tags,
            mode: new.mode,
            run_id: new.run_id,
            call_id: new.call_id,
            callback_url: new.callback_url,
            state: new.state,
            timeout_s: new.timeout_s,
            requested_by,
            created_at: now,
            updated_at: now,
            approvals_required: 1,
            approvals: Vec::new(),
            decision: None,
            outcome: None,
        }
    }

    /// The event recording this request's creation by `actor`.
    pub fn created_event(&self, actor: &str) -> NewEvent {
        NewEvent::new(
            Some(self.id),
            EventKind::Created,
            actor,
            json!({ "action": self.action, "mode": self.mode, "requested_by": self.requested_by.key_id }),
        )
    }

    fn ensure_pending(&self) -> Result<(), DomainError> {
        if self.status.is_final() {
            return Err(DomainError::AlreadyDecided(self.status.as_str()));
        }
        Ok(())
    }

    fn finish(&mut self, decision: Decision) -> NewEvent {
        self.status = decision.outcome.status();
        self.updated_at = decision.at;
        let event = NewEvent::new(
            Some(self.id),
            if decision.outcome == DecisionOutcome::Cancelled { EventKind::Cancelled } else { EventKind::Decided },
            actor_of(&decision.by),
            serde_json::to_value(&decision).unwrap_or(Value::Null),
        );
        self.decision = Some(decision);
        event
    }

    /// Applies a person's approve or reject. An approval counts toward `approvals_required`;
    /// the same approver approving again counts once; any rejection rejects.
    pub fn apply_human_verdict(
        &mut self,
        verdict: HumanVerdict,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        self.ensure_pending()?;
        if let Some(args) = &verdict.args
            && (!verdict.approve || !args.is_object())
        {
            return Err(DomainError::InvalidEdit);
        }
        let by = DecidedBy::Human { approver_id: verdict.approver_id.clone(), channel: verdict.channel.clone() };
        if !verdict.approve {
            if verdict.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
                return Err(DomainError::CommentRequired);
            }
            let decision = Decision {
                outcome: DecisionOutcome::Rejected,
                args: self.args.clone(),
                edited: false,
                comment: verdict.comment,
                reason: verdict.reason,
                by,
                at: now,
            };
            return Ok(vec![self.finish(decision)]);
        }
        if verdict.key_id == self.requested_by.key_id {
            return Err(DomainError::SelfApproval);
        }
        if self.approvals.iter().any(|a| a.approver_id == verdict.approver_id) {
            return Ok(Vec::new());
        }
        self.approvals.push(Approval {
            approver_id: verdict.approver_id.clone(),
            channel: verdict.channel.clone(),
            comment: verdict.comment.clone(),
            args: verdict.args.clone(),
            at: now,
        });
        self.updated_at = now;
        let mut events = vec![NewEvent::new(
            Some(self.id),
            EventKind::ApprovalRecorded,
            actor_of(&by),
            json!({ "approvals": self.approvals.len(), "required": self.approvals_required }),
        )];
        if self.approvals.len() as u32 >= self.approvals_required {
            // The last approver's edit wins; otherwise the latest edit made along the way.
            let edit = self.approvals.iter().rev().find_map(|a| a.args.clone());
            let decision = Decision {
                outcome: DecisionOutcome::Approved,
                edited: edit.as_ref().is_some_and(|args| *args != self.args),
                args: edit.unwrap_or_else(|| self.args.clone()),
                comment: verdict.comment,
                reason: verdict.reason,
                by,
                at: now,
            };
            events.push(self.finish(decision));
        }
        Ok(events)
    }

    /// The requesting agent withdraws a pending request.
    pub fn cancel(
        &mut self,
        key_id: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        self.ensure_pending()?;
        let decision = Decision {
            outcome: DecisionOutcome::Cancelled,
            args: self.args.clone(),
            edited: false,
            comment: None,
            reason,
            by: DecidedBy::Agent { key_id: key_id.to_string() },
            at: now,
        };
        Ok(vec![self.finish(decision)])
    }

    /// The agent reports what happened when it executed. Once per request; a `pre` request must be decided first.
    pub fn report_outcome(
        &mut self,
        ok: bool,
        detail: Option<Value>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        if self.outcome.is_some() {
            return Err(DomainError::OutcomeAlreadyReported);
        }
        if self.mode == Mode::Pre && self.status == Status::Pending {
            return Err(DomainError::NotDecided);
        }
        let outcome = Outcome { ok, detail, at: now };
        let event = NewEvent::new(
            Some(self.id),
            EventKind::OutcomeReported,
            actor,
            serde_json::to_value(&outcome).unwrap_or(Value::Null),
        );
        self.outcome = Some(outcome);
        self.updated_at = now;
        Ok(vec![event])
    }
}

fn actor_of(by: &DecidedBy) -> String {
    match by {
        DecidedBy::Human { approver_id, .. } => format!("approver:{approver_id}"),
        DecidedBy::Policy { rule } => format!("policy:{rule}"),
        DecidedBy::Timeout => "timeout".to_string(),
        DecidedBy::Agent { key_id } => format!("key:{key_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requester() -> Requester {
        Requester { key_id: "k_agent".into(), key_name: "bot".into() }
    }

    fn pending() -> Request {
        let mut new = NewRequest::action("refund");
        new.args = json!({"amount": 10});
        Request::new(Uuid::now_v7(), new, requester(), Utc::now())
    }

    fn verdict(approve: bool, approver: &str) -> HumanVerdict {
        HumanVerdict {
            approve,
            approver_id: approver.into(),
            key_id: format!("k_{approver}"),
            channel: "api".into(),
            comment: (!approve).then(|| "no".to_string()),
            reason: None,
            args: None,
        }
    }

    #[test]
    fn approval_decides_once_and_never_again() {
        let mut request = pending();
        let events = request.apply_human_verdict(verdict(true, "dana"), Utc::now()).unwrap();
        assert_eq!(request.status, Status::Approved);
        assert_eq!(events.last().unwrap().kind, EventKind::Decided);
        let again = request.apply_human_verdict(verdict(false, "carl"), Utc::now());
        assert_eq!(again, Err(DomainError::AlreadyDecided("approved")));
        assert_eq!(request.cancel("k_agent", None, Utc::now()), Err(DomainError::AlreadyDecided("approved")));
    }

    #[test]
    fn rejection_needs_a_comment() {
        let mut request = pending();
        let mut v = verdict(false, "dana");
        v.comment = Some("  ".into());
        assert_eq!(request.apply_human_verdict(v, Utc::now()), Err(DomainError::CommentRequired));
        assert_eq!(request.status, Status::Pending);
    }

    #[test]
    fn edited_args_are_kept_beside_the_proposed_ones() {
        let mut request = pending();
        let mut v = verdict(true, "dana");
        v.args = Some(json!({"amount": 5}));
        request.apply_human_verdict(v, Utc::now()).unwrap();
        let decision = request.decision.as_ref().unwrap();
        assert_eq!(decision.args, json!({"amount": 5}));
        assert!(decision.edited);
        assert_eq!(request.args, json!({"amount": 10}));
    }

    #[test]
    fn only_an_approval_may_edit() {
        let mut request = pending();
        let mut v = verdict(false, "dana");
        v.args = Some(json!({"amount": 5}));
        assert_eq!(request.apply_human_verdict(v, Utc::now()), Err(DomainError::InvalidEdit));
    }

    #[test]
    fn quorum_counts_distinct_approvers_and_refuses_the_requester() {
        let mut request = pending();
        request.approvals_required = 2;
        request.apply_human_verdict(verdict(true, "carl"), Utc::now()).unwrap();
        assert!(request.apply_human_verdict(verdict(true, "carl"), Utc::now()).unwrap().is_empty());
        assert_eq!(request.status, Status::Pending);
        let mut own = verdict(true, "agent");
        own.key_id = "k_agent".into();
        assert_eq!(request.apply_human_verdict(own, Utc::now()), Err(DomainError::SelfApproval));
        request.apply_human_verdict(verdict(true, "cleo"), Utc::now()).unwrap();
        assert_eq!(request.status, Status::Approved);
        assert_eq!(request.approvals.len(), 2);
    }

    #[test]
    fn outcome_is_reported_once_after_the_decision() {
        let mut request = pending();
        assert_eq!(request.report_outcome(true, None, "agent:bot", Utc::now()), Err(DomainError::NotDecided));
        request.apply_human_verdict(verdict(true, "dana"), Utc::now()).unwrap();
        request.report_outcome(true, None, "agent:bot", Utc::now()).unwrap();
        assert_eq!(
            request.report_outcome(false, None, "agent:bot", Utc::now()),
            Err(DomainError::OutcomeAlreadyReported)
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut new = NewRequest::action("");
        assert!(matches!(new.validate(), Err(DomainError::Invalid { field: "action", .. })));
        new.action = "x".into();
        new.confidence = Some(1.5);
        assert!(matches!(new.validate(), Err(DomainError::Invalid { field: "confidence", .. })));
        new.confidence = Some(0.5);
        new.call_id = Some("c".into());
        assert!(matches!(new.validate(), Err(DomainError::Invalid { field: "call_id", .. })));
    }
}
