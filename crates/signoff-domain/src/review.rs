//! The post-execution review loop: a person confirms or flags what an agent did. A sampled review (a `post` report
//! drawn by a `review` rule) is decided by its review; a request that policy let through without a person can still
//! be flagged afterwards, as a miss of the gate, without changing its decision.

use crate::event::{EventKind, NewEvent};
use crate::identity::{Actor, ApproverId};
use crate::request::{DecidedBy, Decision, DecisionOutcome, DomainError, Kind, Request, Status};
use crate::vocabulary::{Channel, Mode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest flag reason, in characters.
pub const FLAG_REASON_MAX_CHARS: usize = 200;

/// What a reviewer said of an action that ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewVerdict {
    Confirmed,
    Flagged,
}

/// A request's one review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub verdict: ReviewVerdict,
    /// A flag's reason: free text or a short code (`wrong_amount`).
    pub reason: Option<String>,
    pub comment: Option<String>,
    /// A flag's demand that the agent undo the action.
    pub undo: bool,
    /// A flag on a request that policy let through without a person (auto-approved, not drawn for sampling, or
    /// approved by its deadline): a miss of the gate.
    pub miss: bool,
    pub by: ApproverId,
    pub channel: Channel,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub at: DateTime<Utc>,
}

/// Who reviews, and through what.
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewer {
    pub approver_id: ApproverId,
    /// The key that carried the review, when one did (a key never reviews what it created).
    pub key_id: Option<String>,
    pub channel: Channel,
}

/// What a flag says.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagInput {
    pub reason: String,
    pub comment: Option<String>,
    pub undo: bool,
}

/// What a review may do to a request, by where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reviewable {
    /// A pending sampled review: its review decides it.
    SampledReview,
    /// Let through without a person: a flag records a miss and leaves the decision alone.
    Miss,
}

impl Request {
    /// A pending `post` report that a `review` rule drew for review.
    pub fn is_pending_sampled_review(&self) -> bool {
        self.mode == Mode::Post && self.sampled == Some(true) && self.status == Status::Pending
    }

    /// What a review may do here, or why none may: questions are answered, not reviewed (`wrong_kind`); one review
    /// per request (`already_reviewed`); a pending request other than a sampled review is decided, not reviewed
    /// (`not_decided`); a request a person approved, or that was rejected, expired or cancelled, is not reviewable.
    pub fn reviewable(&self) -> Result<Reviewable, DomainError> {
        if self.kind == Kind::Question {
            return Err(DomainError::WrongKind("this request is a question: answer it, do not review it"));
        }
        if self.review.is_some() {
            return Err(DomainError::AlreadyReviewed);
        }
        if self.is_pending_sampled_review() {
            return Ok(Reviewable::SampledReview);
        }
        if self.status == Status::Pending {
            return Err(DomainError::NotDecided);
        }
        let Some(decision) = &self.decision else { return Err(DomainError::NotDecided) };
        match (decision.outcome, &decision.by) {
            // A standing grant approves without a person looking at this request: its decisions are gate misses too.
            (DecisionOutcome::Approved, DecidedBy::Policy { .. } | DecidedBy::Timeout | DecidedBy::Grant { .. }) => {
                Ok(Reviewable::Miss)
            }
            (DecisionOutcome::Approved, DecidedBy::Human { .. }) => Err(DomainError::NotReviewable(
                "a person approved this request: a flag is for sampled reviews and for requests policy let through \
                 without a person"
                    .into(),
            )),
            _ => Err(DomainError::NotReviewable(format!(
                "this request was {}: only an action that was let through can be reviewed",
                self.status.as_str()
            ))),
        }
    }

    /// Refuses a review by whoever is responsible for the request: the key that created it, or the person who
    /// answers for that key. A review is someone else's look at the agent's work, a flag as much as a confirmation.
    pub fn refuse_self_review(&self, reviewer: &Reviewer) -> Result<(), DomainError> {
        let own_key = reviewer.key_id.as_ref().is_some_and(|key| *key == self.requested_by.key_id);
        if own_key || self.requested_by.responsible.as_ref() == Some(&reviewer.approver_id) {
            return Err(DomainError::SelfReview);
        }
        Ok(())
    }

    /// A person confirms a pending sampled review: it is approved by them, and its review says `confirmed`.
    pub fn confirm(
        &mut self,
        reviewer: Reviewer,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        if self.reviewable()? != Reviewable::SampledReview {
            return Err(DomainError::NotReviewable(
                "only a pending sampled review can be confirmed: a request policy let through needs no confirmation"
                    .into(),
            ));
        }
        self.refuse_self_review(&reviewer)?;
        let comment = comment.filter(|c| !c.trim().is_empty());
        let decision = Decision {
            outcome: DecisionOutcome::Approved,
            args: self.args.clone(),
            edited: false,
            comment: comment.clone(),
            reason: None,
            by: DecidedBy::Human { approver_id: reviewer.approver_id.clone(), channel: reviewer.channel },
            at: now,
            answer: None,
        };
        let decided = self.finish(decision);
        let review = Review {
            verdict: ReviewVerdict::Confirmed,
            reason: None,
            comment,
            undo: false,
            miss: false,
            by: reviewer.approver_id,
            channel: reviewer.channel,
            at: now,
        };
        Ok(vec![decided, self.record_review(review)])
    }

    /// A person flags what the agent did. A pending sampled review is rejected by them (`miss: false`); a request
    /// policy let through keeps its decision and records a miss (`miss: true`).
    pub fn flag(
        &mut self,
        reviewer: Reviewer,
        flag: FlagInput,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        let reason = flag.reason.trim();
        if reason.is_empty() || reason.chars().count() > FLAG_REASON_MAX_CHARS {
            return Err(DomainError::Invalid {
                field: "reason",
                message: format!("a flag's reason is 1 to {FLAG_REASON_MAX_CHARS} characters"),
            });
        }
        let reason = Some(reason.to_string());
        self.flag_with(reviewer, reason, flag.comment.filter(|c| !c.trim().is_empty()), flag.undo, now)
    }

    /// A rejection of a pending sampled review through the decision path (Slack, email, any channel's Reject): a
    /// flag with the rejection's reason and comment, asking for no undo.
    pub(crate) fn flag_by_rejection(
        &mut self,
        reviewer: Reviewer,
        reason: Option<String>,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        if comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
            return Err(DomainError::CommentRequired);
        }
        self.flag_with(reviewer, reason.filter(|r| !r.trim().is_empty()), comment, false, now)
    }

    fn flag_with(
        &mut self,
        reviewer: Reviewer,
        reason: Option<String>,
        comment: Option<String>,
        undo: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, DomainError> {
        let reviewable = self.reviewable()?;
        self.refuse_self_review(&reviewer)?;
        let mut events = Vec::new();
        if reviewable == Reviewable::SampledReview {
            let decision = Decision {
                outcome: DecisionOutcome::Rejected,
                args: self.args.clone(),
                edited: false,
                comment: comment.clone(),
                reason: reason.clone(),
                by: DecidedBy::Human { approver_id: reviewer.approver_id.clone(), channel: reviewer.channel },
                at: now,
                answer: None,
            };
            events.push(self.finish(decision));
        }
        let review = Review {
            verdict: ReviewVerdict::Flagged,
            reason,
            comment,
            undo,
            miss: reviewable == Reviewable::Miss,
            by: reviewer.approver_id,
            channel: reviewer.channel,
            at: now,
        };
        events.push(self.record_review(review));
        Ok(events)
    }

    fn record_review(&mut self, review: Review) -> NewEvent {
        let kind = match review.verdict {
            ReviewVerdict::Confirmed => EventKind::Confirmed,
            ReviewVerdict::Flagged => EventKind::Flagged,
        };
        let actor = Actor::Person(review.by.clone()).to_string();
        let data = serde_json::to_value(&review).unwrap_or(Value::Null);
        self.updated_at = review.at;
        self.review = Some(review);
        NewEvent::new(Some(self.id), kind, actor, data)
    }

    /// Whether the request carries a flag.
    pub fn is_flagged(&self) -> bool {
        self.review.as_ref().is_some_and(|review| review.verdict == ReviewVerdict::Flagged)
    }
}
