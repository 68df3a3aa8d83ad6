"""Signoff for Python: ask a person (through Signoff's policy) before an agent acts.

    from signoff import require_approval

    @require_approval(action="refund", summary="Refund {amount} to {customer}")
    def refund(customer: str, amount: int) -> str: ...
"""

from . import webhooks
from .approval import current_run_id, not_approved_message, require_approval, run
from .client import DEFAULT_URL, AsyncSignoff, Signoff
from .errors import *  # noqa: F403 - every error class is part of the API
from .errors import ERROR_CLASSES, ApprovalTimeout, Cancelled, Expired, NotApproved, Rejected, SignoffError
from .models import Approval, DecidedBy, Decision, Escalation, Event, Outcome, Page, Placement, Request, RequestedBy

__version__ = "0.1.0"

__all__ = [
    "Signoff", "AsyncSignoff", "DEFAULT_URL", "require_approval", "run", "current_run_id", "not_approved_message",
    "webhooks", "Request", "Decision", "DecidedBy", "Approval", "Outcome", "Escalation", "Placement", "RequestedBy",
    "Event", "Page", "SignoffError", "ERROR_CLASSES", "NotApproved", "Rejected", "Expired", "Cancelled",
    "ApprovalTimeout",
    *(cls.__name__ for cls in ERROR_CLASSES.values()), "Conflict", "ConnectionFailed",
]
