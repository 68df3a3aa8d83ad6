"""Exceptions: one class per error code of the Signoff API, and the outcomes of a gated call that did not run.

Every API error is a `SignoffError` with the stable `code`, the human `message`, the HTTP `status` and, for
`invalid_args` and `invalid_policy`, the itemised `details`. Branch on the class (or on `code`), never on `message`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Request


class SignoffError(Exception):
    """An error answered by the Signoff API (or, with `status` None, the server could not be reached)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = details or []


class ConnectionFailed(SignoffError):
    """The server could not be reached, or the connection broke, and retrying did not help."""

    def __init__(self, message: str) -> None:
        super().__init__("connection_failed", message)


class Conflict(SignoffError):
    """A 409: the call conflicts with the request's state or an earlier call."""


# One class per documented code (see docs/api.md#errors); the code is the class name in snake_case.
class BadRequest(SignoffError):
    """400: the body is not JSON or has the wrong shape, or the query string does not parse."""


class InvalidRequest(SignoffError):
    """400: a value is out of range (a create's validation rules, a refused `callback_url`, ...)."""


class InvalidArgs(SignoffError):
    """400: `args` do not fit the policy's schema for the action; `details` has each problem's `path`."""


class CommentRequired(SignoffError):
    """400: a rejection needs a non-blank `comment`."""


class InvalidEdit(SignoffError):
    """400: a decision's `args` is not an object, or came with a rejection."""


class EditNotAllowed(SignoffError):
    """400: the request's rule does not allow edited arguments."""


class InvalidReason(SignoffError):
    """400: the rejection's `reason` is missing or not one of the request's `reject_reasons`."""


class InvalidPolicy(SignoffError):
    """400: the policy document is invalid; `details` lists every problem with its line and column."""


class InvalidRevision(SignoffError):
    """400: `revises` names no rejected or expired request of this agent's, or one already revised."""


class WrongKind(SignoffError):
    """400: an answer to a request that asks for approval, or a decision on a question."""


class InvalidAnswer(SignoffError):
    """400: an answer that is empty, too long, or not one of the question's options."""


class Unauthorized(SignoffError):
    """401: no key, an unknown key, or a revoked key."""


class Forbidden(SignoffError):
    """403: the key's role may not do this, or its person is not in the request's group."""


class NotAnApprover(Forbidden):
    """403: an admin key bound to no person tried to decide: people decide, not keys."""


class SelfApproval(Forbidden):
    """403: the person responsible for the request tried to approve it."""


class NotFound(SignoffError):
    """404: no such request (or another agent's), or no such route."""


class MethodNotAllowed(SignoffError):
    """405: the route does not take this method."""


class IdempotencyConflict(Conflict):
    """409: the idempotency key was used before with a different body."""


class AlreadyDecided(Conflict):
    """409: the request is no longer pending."""


class OutcomeAlreadyReported(Conflict):
    """409: the request's outcome was already reported."""


class NotDecided(Conflict):
    """409: an outcome for a `pre` request that is still pending."""


class AlreadyReviewed(Conflict):
    """409: a confirm or flag on a request that already has its one review."""


class NotReviewable(Conflict):
    """409: a confirm or flag on a request that cannot be reviewed (a person approved it; it was rejected, expired or
    cancelled; or, for a confirm, policy let it through)."""


class PolicyChanged(Conflict):
    """409: an advice finding made for another policy version than the one in force."""


class PayloadTooLarge(SignoffError):
    """413: the body is over 1 MiB."""


class FieldTooLarge(SignoffError):
    """413: a field is over its cap; the message names it."""


class UnsupportedMediaType(SignoffError):
    """415: a JSON body without a JSON content type."""


class Internal(SignoffError):
    """500: an unexpected server failure (the cause is in the server's log)."""


class Unavailable(SignoffError):
    """503: the database is not reachable."""


class Timeout(SignoffError):
    """503: the server did not answer within its request timeout. A create is safe to retry with its key."""


class _WithRetryAfter(SignoffError):
    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        details: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, status, details)
        self.retry_after = retry_after
        """Seconds the server asked to wait (`Retry-After`), when it said."""


class RateLimited(_WithRetryAfter):
    """429: over the key's (or address's) rate limit; wait `retry_after` seconds."""


class TooManyConnections(_WithRetryAfter):
    """503: the server is at its connection cap; wait `retry_after` seconds."""


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


ERROR_CLASSES: dict[str, type[SignoffError]] = {
    _snake(cls.__name__): cls
    for cls in (
        BadRequest,
        InvalidRequest,
        InvalidArgs,
        CommentRequired,
        InvalidEdit,
        EditNotAllowed,
        InvalidReason,
        InvalidPolicy,
        InvalidRevision,
        WrongKind,
        InvalidAnswer,
        Unauthorized,
        Forbidden,
        NotAnApprover,
        SelfApproval,
        NotFound,
        MethodNotAllowed,
        IdempotencyConflict,
        AlreadyDecided,
        OutcomeAlreadyReported,
        NotDecided,
        AlreadyReviewed,
        NotReviewable,
        PolicyChanged,
        PayloadTooLarge,
        FieldTooLarge,
        UnsupportedMediaType,
        RateLimited,
        Internal,
        Unavailable,
        Timeout,
        TooManyConnections,
    )
}
"""Every API error code the SDK knows, mapped to its exception class."""


def error_from_response(status: int, body: Any, retry_after: float | None = None) -> SignoffError:
    """The exception for an error answer: its code's class, or `SignoffError` for a code this SDK does not know."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return SignoffError("http_error", f"unexpected answer with status {status}", status)
    code, message, details = error["code"], str(error.get("message", "")), error.get("details")
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        return (
            Conflict(code, message, status, details) if status == 409 else SignoffError(code, message, status, details)
        )
    if issubclass(cls, _WithRetryAfter):
        return cls(code, message, status, details, retry_after=retry_after)
    return cls(code, message, status, details)


class NotApproved(Exception):
    """A gated call that did not run because its request was not approved (`on_reject="raise"`)."""

    def __init__(self, message: str, request: Request) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class Rejected(NotApproved):
    """Rejected by a person, by policy, or by a deadline with `on_timeout: reject`."""


class Expired(NotApproved):
    """No decision before the deadline, under `on_timeout: fail`: the request ended `expired`."""


class Cancelled(NotApproved):
    """The request was withdrawn (cancelled) before anyone decided it."""


class ApprovalTimeout(Exception):
    """A gated call or `ask_human` waited its `timeout` and the request is still pending. Calling again resumes it."""

    def __init__(self, message: str, request: Request) -> None:
        super().__init__(message)
        self.request = request


class Unanswered(Exception):
    """`ask_human` got no answer: the question expired at its deadline, or was cancelled."""

    def __init__(self, message: str, request: Request) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
