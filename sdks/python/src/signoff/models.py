"""The wire types of the Signoff API as pydantic models (mirroring `signoff-wire` and docs/api.md).

Every model accepts fields it does not know (kept in `model_extra`), so a newer server never breaks an older SDK.
Status and kind fields are plain strings for the same reason; compare them with the constants documented here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

JSON = Any
"""Any JSON value: what `args`, `context`, `state` and event data hold."""


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class DecidedBy(Wire):
    """Who decided: `kind` is `human` (with `approver_id`, `channel`), `policy` (`rule`), `timeout`, `agent`
    (`key_id`), or `grant` (`grant_id`, and `approver_id`: the person who granted the standing approval)."""

    kind: str
    approver_id: str | None = None
    channel: str | None = None
    rule: str | None = None
    key_id: str | None = None
    grant_id: str | None = None


class Decision(Wire):
    """The one decision of a request. Execute `args`, never the request's proposed `args`."""

    outcome: str
    """`approved`, `rejected`, `expired`, `cancelled` or `answered`: the request's new status."""
    args: dict[str, JSON] = Field(default_factory=dict)
    edited: bool = False
    comment: str | None = None
    reason: str | None = None
    answer: str | None = None
    """A question's answer (outcome `answered`)."""
    by: DecidedBy
    at: datetime


class Approval(Wire):
    """One person's approval toward the quorum, with the arguments they approved."""

    approver_id: str
    channel: str
    comment: str | None = None
    args: dict[str, JSON] = Field(default_factory=dict)
    edited: bool = False
    at: datetime


class Outcome(Wire):
    """What the agent reported after executing (or failing to)."""

    ok: bool
    detail: JSON = None
    at: datetime


class Review(Wire):
    """A person's one review of an action that ran (`review` on a request)."""

    verdict: str
    """`confirmed` or `flagged`."""
    reason: str | None = None
    """A flag's reason: free text or a short code such as `wrong_amount`."""
    comment: str | None = None
    undo: bool = False
    """A flag's demand that the agent undo the action."""
    miss: bool = False
    """A flag on a request policy approved without a person: a miss of the gate."""
    by: str
    channel: str
    at: datetime


class RequestedBy(Wire):
    key_id: str
    key_name: str
    responsible: str | None = None


class Escalation(Wire):
    due_at: datetime
    to: str
    fired_at: datetime | None = None


class Placement(Wire):
    """How the policy in force placed the request (`policy` on a request)."""

    version: int
    content_hash: str
    rule: str | None = None
    error: str | None = None
    verdict: dict[str, JSON] = Field(default_factory=dict)


class Request(Wire):
    """An approval request or a question, as every endpoint that returns one answers it."""

    id: str
    status: str
    """`pending`, then `approved`, `rejected`, `expired`, `cancelled` or (a question) `answered`."""
    kind: str = "approval"
    """`approval` (approve or reject) or `question` (answered with text)."""
    question: str | None = None
    options: list[str] = Field(default_factory=list)
    """A question's allowed answers; empty means free text."""
    action: str
    args: dict[str, JSON] = Field(default_factory=dict)
    summary: str | None = None
    reasoning: str | None = None
    context: dict[str, JSON] = Field(default_factory=dict)
    confidence: float | None = None
    tags: list[str] = Field(default_factory=list)
    mode: str = "pre"
    run_id: str | None = None
    call_id: str | None = None
    callback_url: str | None = None
    state: dict[str, JSON] | None = None
    timeout_s: int | None = None
    revises: str | None = None
    revised_by: str | None = None
    requested_by: RequestedBy | None = None
    created_at: datetime
    updated_at: datetime
    policy: Placement | None = None
    group: str | None = None
    approvals_required: int = 1
    approvals: list[Approval] = Field(default_factory=list)
    allow_edit: bool = True
    reject_reasons: list[str] = Field(default_factory=list)
    sampled: bool | None = None
    deadline_at: datetime | None = None
    on_timeout: str | None = None
    escalations: list[Escalation] = Field(default_factory=list)
    decision: Decision | None = None
    outcome: Outcome | None = None
    review: Review | None = None
    """Set once a person confirmed or flagged what the agent did."""
    remediation: Outcome | None = None
    """What the agent reported doing about a flag, when its outcome was already reported."""

    @property
    def flagged(self) -> bool:
        """True once a person flagged what the agent did (`review.verdict` is `flagged`)."""
        return self.review is not None and self.review.verdict == "flagged"

    @property
    def pending(self) -> bool:
        """True while nobody (and no deadline) has decided the request."""
        return self.status == "pending"

    @property
    def answer(self) -> str | None:
        """A question's answer, once answered."""
        return self.decision.answer if self.decision is not None else None


class Event(Wire):
    """One event of the hash-chained audit log (a request's timeline, or the live stream)."""

    seq: int
    request_id: str | None = None
    kind: str
    actor: str
    data: JSON = None
    owner_key_id: str | None = None
    at: datetime
    prev_hash: str
    hash: str


T = TypeVar("T")


class Page(Wire, Generic[T]):
    """One page of a list; pass `next_cursor` as `cursor` for the next, until it is None."""

    items: list[T]
    next_cursor: str | None = None
