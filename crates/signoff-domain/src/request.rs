//! Approval requests and the one-way status machine `pending → approved | rejected | expired | cancelled`.

use crate::event::{EventKind, NewEvent};
use crate::identity::{Actor, ApproverId};
use crate::key::ApiKey;
use crate::review::{Review, Reviewer};
use crate::vocabulary::{Channel, Mode, OnTimeout, Route, Verdict};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// A request's id: a UUIDv7, so ids sort by creation time. Written as the lowercase hyphenated UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(Uuid);

impl RequestId {
    /// A new id, ordered after every id made before it.
    pub fn new() -> RequestId {
        RequestId(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// An id ordered before every id made at or after `at` (a minute of slack for clocks that step back): a
    /// bound on the time-ordered ids for a query over requests created since `at`.
    pub fn floor_before(at: DateTime<Utc>) -> RequestId {
        let millis = (at.timestamp_millis() - 60_000).max(0) as u64;
        RequestId(uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid())
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl From<Uuid> for RequestId {
    fn from(uuid: Uuid) -> Self {
        RequestId(uuid)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl std::str::FromStr for RequestId {
    type Err = uuid::Error;

    /// Any UUID spelling `uuid` accepts; an id that cannot exist fails to parse.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(RequestId)
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
    /// A question that a person answered.
    Answered,
}

impl Status {
    pub const ALL: [Status; 6] =
        [Status::Pending, Status::Approved, Status::Rejected, Status::Expired, Status::Cancelled, Status::Answered];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Answered => "answered",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
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
    #[serde(default, deserialize_with = "whole_seconds")]
    pub timeout_s: Option<u64>,
    /// The earlier request (rejected or expired, the same agent's) that this one asks again, with changed arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revises: Option<RequestId>,
    /// `approval` (the default), or `question`: the agent asks a person something and gets text back.
    #[serde(default, skip_serializing_if = "Kind::is_approval")]
    pub kind: Kind,
    /// A question's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// A question's choices: when given, the answer is one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// What a request asks of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Approve or reject an action.
    #[default]
    Approval,
    /// Answer a question with text (human-as-tool).
    Question,
}

impl Kind {
    pub fn is_approval(&self) -> bool {
        *self == Kind::Approval
    }
}

/// The longest question, in characters.
pub const QUESTION_MAX_CHARS: usize = 4000;
/// The most options a question may offer, and the longest option.
pub const OPTIONS_MAX: usize = 20;
pub const OPTION_MAX_CHARS: usize = 200;
/// The longest answer, in characters.
pub const ANSWER_MAX_CHARS: usize = 16_000;

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// `timeout_s` as JSON Schema reads an integer: `30`, or the same number written `30.0`; never a fraction.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    // 2^64: every whole float below it is a u64.
    const U64_END: f64 = 18_446_744_073_709_551_616.0;
    let whole = number
        .as_u64()
        .or_else(|| number.as_f64().filter(|v| v.fract() == 0.0 && (0.0..U64_END).contains(v)).map(|v| v as u64));
    whole.map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!("timeout_s: expected a whole number of seconds, found {number}"))
    })
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
            revises: None,
            kind: Kind::Approval,
            question: None,
            options: Vec::new(),
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
            && !crate::is_valid_callback_url(url)
        {
            return invalid(
                "callback_url",
                "must be an http:// or https:// URL of at most 2048 characters: a host name, IPv4 address or \
                 [IPv6] address, an optional port, path and query; no user info, fragment, spaces or non-ASCII \
                 characters (percent-encode them)",
            );
        }
        if self.timeout_s == Some(0) {
            return invalid("timeout_s", "must be at least 1 second");
        }
        match (self.kind, &self.question) {
            (Kind::Approval, Some(_)) => return invalid("question", "only a request of kind `question` has one"),
            (Kind::Approval, None) if !self.options.is_empty() => {
                return invalid("options", "only a request of kind `question` has them");
            }
            (Kind::Question, None) => return invalid("question", "a request of kind `question` needs its question"),
            (Kind::Question, Some(question)) => {
                let chars = question.trim().chars().count();
                if chars == 0 || question.chars().count() > QUESTION_MAX_CHARS {
                    return invalid("question", &format!("must be 1 to {QUESTION_MAX_CHARS} characters"));
                }
                if self.mode == Mode::Post {
                    return invalid("mode", "a question is asked before acting: `pre`");
                }
                if self.options.len() > OPTIONS_MAX {
                    return invalid("options", &format!("at most {OPTIONS_MAX} options"));
                }
                if self.options.iter().any(|o| o.trim().is_empty() || o.chars().count() > OPTION_MAX_CHARS) {
                    return invalid("options", &format!("each option must be 1 to {OPTION_MAX_CHARS} characters"));
                }
                if (1..self.options.len()).any(|i| self.options[..i].contains(&self.options[i])) {
                    return invalid("options", "each option must be listed once");
                }
            }
            (Kind::Approval, None) => {}
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

/// The key that created a request, and the person responsible for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub key_id: String,
    pub key_name: String,
    /// The person who answers for this key (an agent's owner, or the person an admin key is bound to). They never
    /// approve this request, through any key or channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible: Option<ApproverId>,
}

impl Requester {
    /// The requester for requests created with `key`.
    pub fn of(key: &ApiKey) -> Requester {
        Requester { key_id: key.id.clone(), key_name: key.name.clone(), responsible: key.responsible_person().cloned() }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    Approved,
    Rejected,
    Expired,
    Cancelled,
    /// A question answered (the text is the decision's `answer`).
    Answered,
}

impl DecisionOutcome {
    pub fn status(self) -> Status {
        match self {
            DecisionOutcome::Approved => Status::Approved,
            DecisionOutcome::Rejected => Status::Rejected,
            DecisionOutcome::Expired => Status::Expired,
            DecisionOutcome::Cancelled => Status::Cancelled,
            DecisionOutcome::Answered => Status::Answered,
        }
    }
}

/// Who ended a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecidedBy {
    Human {
        approver_id: ApproverId,
        channel: Channel,
    },
    Policy {
        rule: String,
    },
    Timeout,
    Agent {
        key_id: String,
    },
    /// A standing approval (`grant_id`) that `approver_id` granted approved it at once.
    Grant {
        grant_id: String,
        approver_id: ApproverId,
    },
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
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub at: DateTime<Utc>,
    /// A question's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

/// One person's approval of one set of arguments, counted toward the approvals a request needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approver_id: ApproverId,
    pub channel: Channel,
    pub comment: Option<String>,
    /// The arguments this person approved: the proposed ones, or their edit.
    pub args: Value,
    /// Whether `args` differ from the proposed arguments.
    #[serde(default)]
    pub edited: bool,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub at: DateTime<Utc>,
}

/// What the agent reports after executing (or failing to execute) the action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub ok: bool,
    pub detail: Option<Value>,
    #[serde(serialize_with = "crate::time::rfc3339")]
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
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// How policy placed the request (absent only on requests stored before policies existed).
    #[serde(default)]
    pub policy: Option<PolicyMatch>,
    /// The group whose members may decide (`everyone`: any approver). Escalation changes it.
    #[serde(default)]
    pub group: Option<String>,
    /// Distinct approvers needed before the request is approved.
    pub approvals_required: u32,
    pub approvals: Vec<Approval>,
    /// Whether approvers may approve with edited args.
    #[serde(default = "yes")]
    pub allow_edit: bool,
    /// When non-empty, a rejection's `reason` must be one of these.
    #[serde(default)]
    pub reject_reasons: Vec<String>,
    /// Post-execution reports under a review rule: whether this one was drawn for review.
    #[serde(default)]
    pub sampled: Option<bool>,
    /// When the request stops waiting, and what happens then.
    #[serde(default)]
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    pub deadline_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub on_timeout: Option<OnTimeout>,
    /// Escalation steps, in order, with when each falls due.
    #[serde(default)]
    pub escalations: Vec<Escalation>,
    /// Reminders to the current group's members who have not approved yet, with when each falls due. Set when the
    /// request is routed, and set anew for the group it escalates to.
    #[serde(default)]
    pub reminders: Vec<Reminder>,
    pub decision: Option<Decision>,
    pub outcome: Option<Outcome>,
    /// The earlier request this one asks again (see [`NewRequest::revises`]).
    #[serde(default)]
    pub revises: Option<RequestId>,
    /// The later request that asked this one again.
    #[serde(default)]
    pub revised_by: Option<RequestId>,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
    /// A person's review of the action once it ran: a sampled review's confirmation or flag, or a flag on a request
    /// policy let through (a miss). One per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// What the agent reported doing about a flag, when it had already reported the action's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Outcome>,
}

fn yes() -> bool {
    true
}

/// The policy version and verdict a request was placed by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyMatch {
    /// The policy version (0: the built-in default).
    pub version: i64,
    pub content_hash: String,
    /// The rule that matched (`None`: no rule matched, the defaults applied).
    pub rule: Option<String>,
    /// A condition that could not be evaluated; the request went to a person instead.
    pub error: Option<String>,
    pub verdict: Verdict,
}

/// One escalation step of a routed request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub due_at: DateTime<Utc>,
    pub to: String,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    pub fired_at: Option<DateTime<Utc>>,
    /// The reminder schedule of the group escalated to, counted from the escalation (whole seconds in JSON).
    #[serde(default, with = "crate::vocabulary::secs_list")]
    pub remind: Vec<Duration>,
}

/// One reminder of a routed request: when it falls due, and when it fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub due_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    pub fired_at: Option<DateTime<Utc>>,
}

/// Reminders `schedule` after `from`, keeping only those before `deadline_at` (the deadline says the rest).
fn reminders(schedule: &[Duration], from: DateTime<Utc>, deadline_at: Option<DateTime<Utc>>) -> Vec<Reminder> {
    schedule
        .iter()
        .map(|after| Reminder {
            due_at: from + chrono::Duration::from_std(*after).unwrap_or(chrono::Duration::MAX),
            fired_at: None,
        })
        .filter(|reminder| deadline_at.is_none_or(|deadline| reminder.due_at < deadline))
        .collect()
}

/// What a request is routed by, beside the verdict: the policy's identity and its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub version: i64,
    pub content_hash: String,
    pub verdict: Verdict,
    /// For reviews, which carry no timing of their own: the policy's default timeout.
    pub default_timeout: Duration,
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
    #[error("the person responsible for a request (its agent's owner, or whoever created it) cannot approve it")]
    SelfApproval,
    #[error("the policy rule for this request does not allow edited args")]
    EditNotAllowed,
    #[error("a rejection of this request needs a `reason`, one of: {0}")]
    InvalidReason(String),
    #[error("only members of the group `{0}` may decide this request")]
    NotInGroup(String),
    #[error("an outcome was already reported for this request")]
    OutcomeAlreadyReported,
    #[error("the request is still pending; report the outcome after it is decided")]
    NotDecided,
    #[error("revises: {0}")]
    InvalidRevision(String),
    #[error("{0}")]
    WrongKind(&'static str),
    #[error("{0}")]
    InvalidAnswer(String),
    #[error("the person responsible for a request (its agent's owner, or whoever created it) cannot review it")]
    SelfReview,
    #[error("only an approver the policy declares may flag a request that policy let through")]
    NotADeclaredApprover,
    #[error("this request was already reviewed: a request gets one review")]
    AlreadyReviewed,
    #[error("{0}")]
    NotReviewable(String),
}

impl DomainError {
    /// A `revises` naming no request of the agent's: the same words for another agent's request as for none, so an
    /// agent learns nothing of others' requests.
    pub fn no_request_to_revise(id: RequestId) -> DomainError {
        DomainError::InvalidRevision(format!("no request {id} of this agent to revise"))
    }
}

/// A person's verdict on a request.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanVerdict {
    pub approve: bool,
    pub approver_id: ApproverId,
    /// The key that carries the verdict, when it came through the API (a key never approves what it created).
    pub key_id: Option<String>,
    pub channel: Channel,
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
            policy: None,
            group: None,
            approvals_required: 1,
            approvals: Vec::new(),
            allow_edit: true,
            reject_reasons: Vec::new(),
            sampled: None,
            deadline_at: None,
            on_timeout: None,
            escalations: Vec::new(),
            reminders: Vec::new(),
            decision: None,
            outcome: None,
            revises: new.revises,
            revised_by: None,
            kind: new.kind,
            question: new.question,
            options: new.options,
            review: None,
            remediation: None,
        }
    }

    /// The event recording this request's creation by `actor`: the whole proposal as the agent made it, so the
    /// chain keeps it whatever edits follow.
    pub fn created_event(&self, actor: &Actor) -> NewEvent {
        let mut event = NewEvent::new(
            Some(self.id),
            EventKind::Created,
            actor.to_string(),
            json!({
                "action": self.action,
                "args": self.args,
                "summary": self.summary,
                "reasoning": self.reasoning,
                "context": self.context,
                "confidence": self.confidence,
                "tags": self.tags,
                "mode": self.mode,
                "run_id": self.run_id,
                "call_id": self.call_id,
                "callback_url": self.callback_url,
                "timeout_s": self.timeout_s,
                "requested_by": self.requested_by,
            }),
        );
        if let Some(earlier) = self.revises {
            event.data["revises"] = json!(earlier);
        }
        if self.kind == Kind::Question {
            event.data["kind"] = json!(self.kind);
            event.data["question"] = json!(self.question);
            event.data["options"] = json!(self.options);
        }
        event
    }

    /// Records that `revision`, a new request, asks this one again. Only the agent (key) that made this request may
    /// revise it, only once it was rejected or expired, and only once: anything else is
    /// [`DomainError::InvalidRevision`], and another agent's request reads as no request at all.
    pub fn accept_revision(&mut self, revision: &Request, now: DateTime<Utc>) -> Result<NewEvent, DomainError> {
        if self.requested_by.key_id != revision.requested_by.key_id {
            return Err(DomainError::no_request_to_revise(self.id));
        }
        if !matches!(self.status, Status::Rejected | Status::Expired) {
            return Err(DomainError::InvalidRevision(format!(
                "request {} is {}: only a rejected or expired request can be revised",
                self.id,
                self.status.as_str()
            )));
        }
        if let Some(later) = self.revised_by {
            return Err(DomainError::InvalidRevision(format!("request {} was already revised by {later}", self.id)));
        }
        self.revised_by = Some(revision.id);
        self.updated_at = now;
        let actor = format!("key:{}", revision.requested_by.key_id);
        Ok(NewEvent::new(Some(self.id), EventKind::Revised, actor, json!({ "revised_by": revision.id })))
    }

    /// Applies the policy's verdict to a new request: decides it at once (approve, deny, an unsampled
    /// review) or routes it to a group with its deadline and escalation steps. A verdict that carries an
    /// evaluation error (`defaults.on_error`) records it in `policy.error`: a deny's comment states it, and a
    /// route's deadline never approves.
    pub fn place(&mut self, placement: Placement, now: DateTime<Utc>) -> Vec<NewEvent> {
        let verdict = placement.verdict.clone();
        self.policy = Some(PolicyMatch {
            version: placement.version,
            content_hash: placement.content_hash,
            rule: verdict.rule().map(String::from),
            error: verdict.eval_error().map(String::from),
            verdict: verdict.clone(),
        });
        let by_policy = |rule: &str| DecidedBy::Policy { rule: rule.to_string() };
        let decide = |request: &mut Request, outcome, rule: &str, comment: Option<String>| {
            let decision = Decision {
                outcome,
                args: request.args.clone(),
                edited: false,
                comment,
                reason: None,
                by: by_policy(rule),
                at: now,
                answer: None,
            };
            vec![request.finish(decision)]
        };
        match verdict {
            Verdict::Approve { rule } => decide(self, DecisionOutcome::Approved, &rule, None),
            Verdict::Deny { rule, error: None } => {
                decide(self, DecisionOutcome::Rejected, &rule, Some(format!("denied by policy rule `{rule}`")))
            }
            Verdict::Deny { rule, error: Some(error) } => {
                let comment = format!("denied by policy: {error} (defaults.on_error: deny)");
                decide(self, DecisionOutcome::Rejected, &rule, Some(comment))
            }
            Verdict::Review { rule, sampled: false, .. } => {
                self.sampled = Some(false);
                decide(self, DecisionOutcome::Approved, &rule, Some("not sampled for review".into()))
            }
            Verdict::Review { rule, group, sampled: true } => {
                // The action already happened: a reviewer confirms or flags it, and cannot edit it.
                self.sampled = Some(true);
                let review = Route {
                    rule: Some(rule),
                    group,
                    approvals: 1,
                    allow_edit: false,
                    reject_reasons: Vec::new(),
                    timeout: placement.default_timeout,
                    on_timeout: OnTimeout::Fail,
                    escalate: Vec::new(),
                    remind: Vec::new(),
                    eval_error: None,
                };
                self.route(review, now)
            }
            Verdict::Route(mut route) => {
                // A condition that could not be evaluated never lets an action through, not even by timing out.
                if route.eval_error.is_some() && route.on_timeout == OnTimeout::Approve {
                    route.on_timeout = OnTimeout::Reject;
                }
                self.route(route, now)
            }
        }
    }

    /// Sends the request to the route's group until its deadline: the policy's `timeout`, or the agent's
    /// `timeout_s` when that is shorter (an agent may shorten a deadline, never extend it). Escalation steps and
    /// reminders that would fall due after the deadline are dropped.
    fn route(&mut self, route: Route, now: DateTime<Utc>) -> Vec<NewEvent> {
        let after = |d: Duration| now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let timeout = self.timeout_s.map_or(route.timeout, |agent| route.timeout.min(Duration::from_secs(agent)));
        let deadline_at = after(timeout);
        self.approvals_required = route.approvals;
        self.allow_edit = route.allow_edit;
        self.reject_reasons = route.reject_reasons;
        self.group = Some(route.group.clone());
        self.deadline_at = Some(deadline_at);
        self.on_timeout = Some(route.on_timeout);
        self.escalations = route
            .escalate
            .into_iter()
            .map(|step| Escalation { due_at: after(step.after), to: step.to, fired_at: None, remind: step.remind })
            .filter(|step| step.due_at < deadline_at)
            .collect();
        self.reminders = reminders(&route.remind, now, Some(deadline_at));
        let rule = route.rule;
        vec![NewEvent::new(
            Some(self.id),
            EventKind::Routed,
            rule.as_deref().map_or_else(|| "policy:defaults".to_string(), |rule| format!("policy:{rule}")),
            json!({
                "group": route.group,
                "rule": rule,
                "approvals_required": self.approvals_required,
                "deadline_at": deadline_at,
                "on_timeout": route.on_timeout,
                "error": route.eval_error,
            }),
        )]
    }

    pub(crate) fn ensure_pending(&self) -> Result<(), DomainError> {
        if self.status.is_final() {
            return Err(DomainError::AlreadyDecided(self.status.as_str()));
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self, decision: Decision) -> NewEvent {
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

    /// Applies a person's approve or reject. Any rejection rejects. An approval approves one set of arguments (the
    /// proposed ones, or the person's edit); the request is approved once `approvals_required` distinct people have
    /// approved the same arguments. An approval of other arguments supersedes the approvals given before it
    /// (`approvals_reset`), so no one person decides what a quorum executes.
    pub fn apply_human_verdict(
        &mut self,
        verdict: HumanVerdict,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        self.ensure_pending()?;
        if self.kind == Kind::Question {
            return Err(DomainError::WrongKind("this request is a question: answer it, do not decide it"));
        }
        if let Some(args) = &verdict.args {
            if !verdict.approve || !args.is_object() {
                return Err(DomainError::InvalidEdit);
            }
            if !self.allow_edit && *args != self.args {
                return Err(DomainError::EditNotAllowed);
            }
        }
        if self.is_pending_sampled_review() && self.review.is_none() {
            // Every channel's Approve and Reject on a sampled review is its review: a confirmation or a flag.
            let reviewer =
                Reviewer { approver_id: verdict.approver_id, key_id: verdict.key_id, channel: verdict.channel };
            return if verdict.approve {
                self.confirm(reviewer, verdict.comment, now)
            } else {
                self.flag_by_rejection(reviewer, verdict.reason, verdict.comment, now)
            };
        }
        let by = DecidedBy::Human { approver_id: verdict.approver_id.clone(), channel: verdict.channel };
        if !verdict.approve {
            return self.reject(verdict, by, now);
        }
        self.refuse_self_approval(&verdict)?;
        let args = verdict.args.clone().unwrap_or_else(|| self.args.clone());
        if self.approvals.iter().any(|a| a.approver_id == verdict.approver_id && a.args == args) {
            return Ok(Vec::new());
        }
        let actor = actor_of(&by);
        let mut events = Vec::new();
        let (kept, superseded): (Vec<Approval>, Vec<Approval>) =
            std::mem::take(&mut self.approvals).into_iter().partition(|a| a.args == args);
        self.approvals = kept;
        if !superseded.is_empty() {
            let superseded: Vec<Value> =
                superseded.iter().map(|a| json!({ "approver_id": a.approver_id, "args": a.args })).collect();
            events.push(NewEvent::new(
                Some(self.id),
                EventKind::ApprovalsReset,
                actor.clone(),
                json!({ "superseded": superseded, "args": args }),
            ));
        }
        let approval = Approval {
            approver_id: verdict.approver_id,
            channel: verdict.channel,
            comment: verdict.comment.clone(),
            edited: args != self.args,
            args,
            at: now,
        };
        self.approvals.push(approval.clone());
        self.updated_at = now;
        if (self.approvals.len() as u32) < self.approvals_required {
            // An approval short of the quorum is its own event; the one that completes it is the decision.
            events.push(NewEvent::new(
                Some(self.id),
                EventKind::ApprovalRecorded,
                actor,
                json!({
                    "approval": approval,
                    "approvals": self.approvals.len(),
                    "required": self.approvals_required,
                }),
            ));
            return Ok(events);
        }
        let decision = Decision {
            outcome: DecisionOutcome::Approved,
            edited: approval.edited,
            args: approval.args,
            comment: verdict.comment,
            reason: verdict.reason,
            by,
            at: now,
            answer: None,
        };
        events.push(self.finish(decision));
        Ok(events)
    }

    /// Refuses an approval by whoever is responsible for the request: the key that created it, or the person who
    /// answers for that key (an agent's owner), through any key or channel. Rejections are always allowed.
    pub fn refuse_self_approval(&self, verdict: &HumanVerdict) -> Result<(), DomainError> {
        let own_key = verdict.key_id.as_ref().is_some_and(|key| *key == self.requested_by.key_id);
        if verdict.approve && (own_key || self.requested_by.responsible.as_ref() == Some(&verdict.approver_id)) {
            return Err(DomainError::SelfApproval);
        }
        Ok(())
    }

    fn reject(
        &mut self,
        verdict: HumanVerdict,
        by: DecidedBy,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        if verdict.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
            return Err(DomainError::CommentRequired);
        }
        if !self.reject_reasons.is_empty()
            && !verdict.reason.as_ref().is_some_and(|reason| self.reject_reasons.contains(reason))
        {
            return Err(DomainError::InvalidReason(self.reject_reasons.join(", ")));
        }
        let decision = Decision {
            outcome: DecisionOutcome::Rejected,
            args: self.args.clone(),
            edited: false,
            comment: verdict.comment,
            reason: verdict.reason,
            by,
            at: now,
            answer: None,
        };
        Ok(vec![self.finish(decision)])
    }

    /// When the next stored timer of this request falls due: its next escalation step, reminder or deadline.
    /// `None` once it is decided.
    pub fn next_timer_at(&self) -> Option<DateTime<Utc>> {
        if self.status.is_final() {
            return None;
        }
        let escalations = self.escalations.iter().filter(|step| step.fired_at.is_none()).map(|step| step.due_at);
        let reminders = self.reminders.iter().filter(|r| r.fired_at.is_none()).map(|r| r.due_at);
        escalations.chain(reminders).chain(self.deadline_at).min()
    }

    /// Fires every timer due at `now`: escalation steps re-route the request (approvals already given stay),
    /// and a passed deadline applies `on_timeout`. Does nothing to a decided request, so a timer that races a
    /// decision, or fires twice, has no effect the second time.
    pub fn fire_timers(&mut self, now: DateTime<Utc>) -> Vec<NewEvent> {
        if self.status.is_final() {
            return Vec::new();
        }
        let mut events = Vec::new();
        for (step, escalation) in self.escalations.iter_mut().enumerate() {
            if escalation.fired_at.is_some() || escalation.due_at > now {
                continue;
            }
            escalation.fired_at = Some(now);
            let from = self.group.replace(escalation.to.clone());
            self.reminders = reminders(&escalation.remind, now, self.deadline_at);
            events.push(NewEvent::new(
                Some(self.id),
                EventKind::Escalated,
                "timer",
                json!({ "step": step + 1, "from": from, "to": escalation.to, "due_at": escalation.due_at }),
            ));
            self.updated_at = now;
        }
        let deadline_passed = self.deadline_at.is_some_and(|deadline| deadline <= now);
        // Reminders missed while the server was down fire as one: nobody needs three reminders at once.
        let mut latest = None;
        for (index, reminder) in self.reminders.iter_mut().enumerate() {
            if reminder.fired_at.is_none() && reminder.due_at <= now {
                reminder.fired_at = Some(now);
                latest = Some((index, reminder.due_at));
            }
        }
        if let Some((index, due_at)) = latest.filter(|_| !deadline_passed) {
            let data = json!({ "reminder": index + 1, "group": self.group, "due_at": due_at });
            events.push(NewEvent::new(Some(self.id), EventKind::Reminded, "timer", data));
            self.updated_at = now;
        }
        if deadline_passed {
            // A question nobody answered in time has no answer to act on, whatever `on_timeout` says.
            let on_timeout = match self.kind {
                Kind::Question => OnTimeout::Fail,
                Kind::Approval => self.on_timeout.unwrap_or(OnTimeout::Reject),
            };
            let (outcome, comment) = match on_timeout {
                OnTimeout::Approve => (DecisionOutcome::Approved, "approved: no decision before the deadline"),
                OnTimeout::Reject => (DecisionOutcome::Rejected, "rejected: no decision before the deadline"),
                OnTimeout::Fail => (DecisionOutcome::Expired, "expired: no decision before the deadline"),
            };
            let decision = Decision {
                outcome,
                args: self.args.clone(),
                edited: false,
                comment: Some(comment.to_string()),
                reason: Some("timeout".to_string()),
                by: DecidedBy::Timeout,
                at: now,
                answer: None,
            };
            events.push(self.finish(decision));
        }
        events
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
            answer: None,
        };
        Ok(vec![self.finish(decision)])
    }

    /// A person answers a question: the first answer ends it (`answered`). When the question offers options, the
    /// answer must be one of them.
    pub fn answer(
        &mut self,
        approver_id: ApproverId,
        channel: Channel,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        self.ensure_pending()?;
        if self.kind != Kind::Question {
            return Err(DomainError::WrongKind(
                "this request asks for approval: decide it, it has no question to answer",
            ));
        }
        let text = text.trim();
        if text.is_empty() || text.chars().count() > ANSWER_MAX_CHARS {
            return Err(DomainError::InvalidAnswer(format!("an answer is 1 to {ANSWER_MAX_CHARS} characters")));
        }
        if !self.options.is_empty() && !self.options.iter().any(|option| option == text) {
            return Err(DomainError::InvalidAnswer(format!("the answer must be one of: {}", self.options.join(", "))));
        }
        let decision = Decision {
            outcome: DecisionOutcome::Answered,
            args: self.args.clone(),
            edited: false,
            comment: None,
            reason: None,
            by: DecidedBy::Human { approver_id, channel },
            at: now,
            answer: Some(text.to_string()),
        };
        Ok(vec![self.finish(decision)])
    }

    /// The agent reports what happened when it executed. Once per request; a `pre` request must be decided first.
    /// After a flag, a request whose outcome was already reported takes one more report: the remediation
    /// (`remediation`, an `outcome_reported` event with `"remediation": true`).
    pub fn report_outcome(
        &mut self,
        ok: bool,
        detail: Option<Value>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        if self.outcome.is_some() {
            if !self.is_flagged() || self.remediation.is_some() {
                return Err(DomainError::OutcomeAlreadyReported);
            }
            let remediation = Outcome { ok, detail, at: now };
            let mut data = serde_json::to_value(&remediation).unwrap_or(Value::Null);
            data["remediation"] = json!(true);
            self.remediation = Some(remediation);
            self.updated_at = now;
            return Ok(vec![NewEvent::new(Some(self.id), EventKind::OutcomeReported, actor, data)]);
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
        DecidedBy::Human { approver_id, .. } => Actor::Person(approver_id.clone()).to_string(),
        DecidedBy::Policy { rule } => Actor::Policy(Some(rule.clone())).to_string(),
        DecidedBy::Timeout => "timeout".to_string(),
        DecidedBy::Agent { key_id } => format!("key:{key_id}"),
        DecidedBy::Grant { grant_id, .. } => format!("grant:{grant_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::EscalationStep;

    #[test]
    fn the_id_floor_sorts_before_every_id_made_since_and_after_ids_made_well_before() {
        let made_before = RequestId::new();
        std::thread::sleep(Duration::from_millis(2));
        let since = Utc::now();
        let made_since = RequestId::new();
        let floor = RequestId::floor_before(since);
        assert!(floor.to_string() <= made_since.to_string(), "{floor} > {made_since}");
        assert!(floor < made_since);
        // A minute of slack: ids made just before `since` are inside the bound, ids two minutes older are not.
        assert!(floor < made_before);
        let later_floor = RequestId::floor_before(since + chrono::Duration::minutes(2));
        assert!(later_floor.to_string() > made_since.to_string());
    }

    fn requester() -> Requester {
        Requester { key_id: "k_agent".into(), key_name: "bot".into(), responsible: Some(person("olga")) }
    }

    fn person(id: &str) -> ApproverId {
        ApproverId::parse(id).unwrap()
    }

    fn pending() -> Request {
        let mut new = NewRequest::action("refund");
        new.args = json!({"amount": 10});
        Request::new(RequestId::new(), new, requester(), Utc::now())
    }

    fn verdict(approve: bool, approver: &str) -> HumanVerdict {
        HumanVerdict {
            approve,
            approver_id: person(approver),
            key_id: Some(format!("k_{approver}")),
            channel: Channel::Api,
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
    fn timeout_s_is_a_whole_number_written_either_way() {
        let parse = |json: &str| serde_json::from_str::<NewRequest>(json).map(|new| new.timeout_s);
        assert_eq!(parse(r#"{"action": "a", "timeout_s": 30}"#).unwrap(), Some(30));
        assert_eq!(parse(r#"{"action": "a", "timeout_s": 30.0}"#).unwrap(), Some(30));
        assert_eq!(parse(r#"{"action": "a", "timeout_s": null}"#).unwrap(), None);
        assert_eq!(parse(r#"{"action": "a"}"#).unwrap(), None);
        for refused in ["30.5", "-1", "-1.0", "18446744073709551616", "\"30\""] {
            assert!(parse(&format!(r#"{{"action": "a", "timeout_s": {refused}}}"#)).is_err(), "{refused}");
        }
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
        own.key_id = Some("k_agent".into());
        assert_eq!(request.apply_human_verdict(own, Utc::now()), Err(DomainError::SelfApproval));
        // The agent's owner, through any key or channel.
        let mut owner = verdict(true, "olga");
        owner.channel = Channel::Slack;
        owner.key_id = None;
        assert_eq!(request.apply_human_verdict(owner, Utc::now()), Err(DomainError::SelfApproval));
        request.apply_human_verdict(verdict(true, "cleo"), Utc::now()).unwrap();
        assert_eq!(request.status, Status::Approved);
        assert_eq!(request.approvals.len(), 2);
    }

    #[test]
    fn a_quorum_approves_one_set_of_arguments() {
        let mut request = pending();
        request.approvals_required = 2;
        request.apply_human_verdict(verdict(true, "carl"), Utc::now()).unwrap();
        let mut edit = verdict(true, "cleo");
        edit.args = Some(json!({"amount": 9_999_999}));
        let events = request.apply_human_verdict(edit, Utc::now()).unwrap();
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::ApprovalsReset, EventKind::ApprovalRecorded]);
        assert_eq!(events[0].data["superseded"][0]["approver_id"], "carl");
        assert_eq!(events[1].data["approval"]["args"], json!({"amount": 9_999_999}));
        assert_eq!(request.status, Status::Pending, "one person alone never decides what a quorum executes");
        assert_eq!(request.approvals.len(), 1);

        // Carl approving the proposal again resets Cleo's edit; nobody has two votes.
        request.apply_human_verdict(verdict(true, "carl"), Utc::now()).unwrap();
        assert_eq!(request.status, Status::Pending);
        assert_eq!(request.approvals.iter().map(|a| a.approver_id.as_str()).collect::<Vec<_>>(), ["carl"]);

        // A second person approving the same (proposed) arguments completes the quorum.
        request.apply_human_verdict(verdict(true, "cleo"), Utc::now()).unwrap();
        assert_eq!(request.status, Status::Approved);
        let decision = request.decision.as_ref().unwrap();
        assert_eq!((decision.args.clone(), decision.edited), (json!({"amount": 10}), false));
    }

    #[test]
    fn a_quorum_can_agree_on_an_edit() {
        let mut request = pending();
        request.approvals_required = 2;
        for approver in ["carl", "cleo"] {
            let mut edit = verdict(true, approver);
            edit.args = Some(json!({"amount": 7}));
            request.apply_human_verdict(edit, Utc::now()).unwrap();
        }
        let decision = request.decision.as_ref().unwrap();
        assert_eq!((decision.args.clone(), decision.edited), (json!({"amount": 7}), true));
        assert!(request.approvals.iter().all(|a| a.edited));
    }

    #[test]
    fn the_created_event_holds_the_whole_proposal() {
        let mut new = NewRequest::action("refund");
        new.args = json!({"amount": 10});
        new.summary = Some("Refund".into());
        new.reasoning = Some("broken".into());
        new.tags = vec!["vip".into()];
        let request = Request::new(RequestId::new(), new, requester(), Utc::now());
        let event = request.created_event(&Actor::Key { role: crate::Role::Agent, name: "bot".into() });
        assert_eq!(event.actor, "agent:bot");
        for (field, value) in [
            ("args", json!({"amount": 10})),
            ("summary", json!("Refund")),
            ("reasoning", json!("broken")),
            ("tags", json!(["vip"])),
        ] {
            assert_eq!(event.data[field], value, "{field}");
        }
        assert_eq!(event.data["requested_by"]["responsible"], "olga");
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
    fn timers_escalate_then_apply_the_deadline_once() {
        let mut request = pending();
        let start = request.created_at;
        request.group = Some("directors".into());
        request.deadline_at = Some(start + chrono::Duration::hours(28));
        request.on_timeout = Some(OnTimeout::Fail);
        request.escalations = vec![Escalation {
            due_at: start + chrono::Duration::hours(4),
            to: "cfo".into(),
            fired_at: None,
            remind: vec![],
        }];
        assert_eq!(request.next_timer_at(), Some(start + chrono::Duration::hours(4)));
        assert!(request.fire_timers(start + chrono::Duration::hours(1)).is_empty());
        let escalated = request.fire_timers(start + chrono::Duration::hours(5));
        assert_eq!(escalated[0].kind, EventKind::Escalated);
        assert_eq!(request.group.as_deref(), Some("cfo"));
        assert_eq!(request.next_timer_at(), request.deadline_at);
        let expired = request.fire_timers(start + chrono::Duration::hours(29));
        assert_eq!((request.status, expired.len()), (Status::Expired, 1));
        assert_eq!(request.decision.as_ref().unwrap().by, DecidedBy::Timeout);
        assert!(request.fire_timers(start + chrono::Duration::hours(30)).is_empty());
        assert_eq!(request.next_timer_at(), None);
    }

    fn placement(verdict: Verdict) -> Placement {
        Placement { version: 3, content_hash: "h".into(), verdict, default_timeout: Duration::from_secs(3600) }
    }

    fn route_to(group: &str, approvals: u32, on_timeout: OnTimeout, eval_error: Option<&str>) -> Verdict {
        Verdict::Route(crate::Route {
            rule: Some("small".into()),
            group: group.into(),
            approvals,
            allow_edit: true,
            reject_reasons: Vec::new(),
            timeout: Duration::from_secs(3600),
            on_timeout,
            escalate: Vec::new(),
            remind: Vec::new(),
            eval_error: eval_error.map(String::from),
        })
    }

    #[test]
    fn reminders_fall_due_once_each_and_start_again_for_the_group_escalated_to() {
        let hours = |h: i64| chrono::Duration::hours(h);
        let mut request = pending();
        let start = request.created_at;
        let Verdict::Route(mut route) = route_to("directors", 1, OnTimeout::Reject, None) else { unreachable!() };
        route.timeout = Duration::from_secs(10 * 3600);
        route.remind = vec![Duration::from_secs(3600), Duration::from_secs(2 * 3600), Duration::from_secs(12 * 3600)];
        let cfo_reminders = vec![Duration::from_secs(3600)];
        route.escalate =
            vec![EscalationStep { after: Duration::from_secs(4 * 3600), to: "cfo".into(), remind: cfo_reminders }];
        request.place(placement(Verdict::Route(route)), start);
        // The one after the deadline is dropped: the deadline says the rest.
        assert_eq!(
            request.reminders.iter().map(|r| r.due_at).collect::<Vec<_>>(),
            [start + hours(1), start + hours(2)]
        );
        assert_eq!(request.next_timer_at(), Some(start + hours(1)));

        let reminded = request.fire_timers(start + hours(1));
        assert_eq!(reminded.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventKind::Reminded]);
        assert_eq!(reminded[0].data["reminder"], 1);
        assert!(request.fire_timers(start + hours(1)).is_empty(), "each reminder fires once");
        assert_eq!(request.next_timer_at(), Some(start + hours(2)));

        // Missed while the server was down: the second reminder and the escalation fire together; the cfo's
        // reminders count from the escalation.
        let late = start + hours(5);
        let events = request.fire_timers(late);
        assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventKind::Escalated]);
        assert_eq!(request.group.as_deref(), Some("cfo"));
        assert_eq!(request.reminders, [Reminder { due_at: late + hours(1), fired_at: None }]);
        let events = request.fire_timers(late + hours(2));
        assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventKind::Reminded]);
        assert_eq!(events[0].data["group"], "cfo");
    }

    #[test]
    fn reminders_missed_together_fire_as_one_and_never_with_the_deadline() {
        let mut request = pending();
        let start = request.created_at;
        let Verdict::Route(mut route) = route_to("directors", 1, OnTimeout::Reject, None) else { unreachable!() };
        route.remind = vec![Duration::from_secs(60), Duration::from_secs(120)];
        request.place(placement(Verdict::Route(route.clone())), start);
        let events = request.fire_timers(start + chrono::Duration::minutes(5));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data["reminder"], 2, "one reminder, the latest due");
        assert!(request.reminders.iter().all(|r| r.fired_at.is_some()));

        let mut late = pending();
        late.place(placement(Verdict::Route(route)), start);
        let events = late.fire_timers(start + chrono::Duration::hours(2));
        assert_eq!(
            events.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [EventKind::Decided],
            "the deadline, no reminder"
        );
    }

    #[test]
    fn an_unevaluable_condition_denied_by_on_error_is_a_policy_decision_stating_the_error() {
        let mut request = pending();
        let error = "rule `small` could not be evaluated: No such key: amount";
        let verdict = Verdict::Deny { rule: "small".into(), error: Some(error.into()) };
        let events = request.place(placement(verdict), Utc::now());
        assert_eq!((request.status, events.len()), (Status::Rejected, 1));
        assert_eq!(events[0].kind, EventKind::Decided);
        let decision = request.decision.as_ref().unwrap();
        assert_eq!(decision.by, DecidedBy::Policy { rule: "small".into() });
        let comment = decision.comment.as_deref().unwrap();
        assert!(comment.contains(error) && comment.contains("on_error"), "{comment}");
        let placed = request.policy.as_ref().unwrap();
        assert_eq!((placed.rule.as_deref(), placed.error.as_deref()), (Some("small"), Some(error)));
    }

    #[test]
    fn a_plain_deny_carries_no_error() {
        let mut request = pending();
        request.place(placement(Verdict::Deny { rule: "no".into(), error: None }), Utc::now());
        assert_eq!(request.status, Status::Rejected);
        assert_eq!(request.decision.as_ref().unwrap().comment.as_deref(), Some("denied by policy rule `no`"));
        assert_eq!(request.policy.as_ref().unwrap().error, None);
    }

    #[test]
    fn an_unevaluable_condition_routed_by_on_error_never_approves_on_timeout() {
        let mut request = pending();
        let now = Utc::now();
        let events = request.place(placement(route_to("admins", 2, OnTimeout::Approve, Some("boom"))), now);
        assert_eq!((request.status, events[0].kind), (Status::Pending, EventKind::Routed));
        assert_eq!((request.group.as_deref(), request.approvals_required), (Some("admins"), 2));
        assert_eq!(request.on_timeout, Some(OnTimeout::Reject));
        assert_eq!(request.policy.as_ref().unwrap().error.as_deref(), Some("boom"));
        request.fire_timers(now + chrono::Duration::hours(2));
        assert_eq!(request.status, Status::Rejected);

        // Without an evaluation error, the policy's `on_timeout: approve` stands.
        let mut request = pending();
        request.place(placement(route_to("admins", 1, OnTimeout::Approve, None)), now);
        assert_eq!(request.on_timeout, Some(OnTimeout::Approve));
        assert_eq!(request.policy.as_ref().unwrap().error, None);
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
