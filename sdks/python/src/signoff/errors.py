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


# One class per documented code; the code is the class name in snake_case.
class BadRequest(SignoffError): ...
class InvalidRequest(SignoffError): ...
class InvalidArgs(SignoffError): ...
class CommentRequired(SignoffError): ...
class InvalidEdit(SignoffError): ...
class EditNotAllowed(SignoffError): ...
class InvalidReason(SignoffError): ...
class InvalidPolicy(SignoffError): ...
class InvalidRevision(SignoffError): ...
class Unauthorized(SignoffError): ...
class Forbidden(SignoffError): ...
class NotAnApprover(Forbidden): ...
class SelfApproval(Forbidden): ...
class NotFound(SignoffError): ...
class MethodNotAllowed(SignoffError): ...
class IdempotencyConflict(Conflict): ...
class AlreadyDecided(Conflict): ...
class OutcomeAlreadyReported(Conflict): ...
class NotDecided(Conflict): ...
class PayloadTooLarge(SignoffError): ...
class FieldTooLarge(SignoffError): ...
class UnsupportedMediaType(SignoffError): ...
class Internal(SignoffError): ...
class Unavailable(SignoffError): ...
class Timeout(SignoffError): ...


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


class RateLimited(_WithRetryAfter): ...
class TooManyConnections(_WithRetryAfter): ...


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


ERROR_CLASSES: dict[str, type[SignoffError]] = {
    _snake(cls.__name__): cls
    for cls in (
        BadRequest, InvalidRequest, InvalidArgs, CommentRequired, InvalidEdit, EditNotAllowed, InvalidReason,
        InvalidPolicy, InvalidRevision, Unauthorized, Forbidden, NotAnApprover, SelfApproval, NotFound,
        MethodNotAllowed, IdempotencyConflict, AlreadyDecided, OutcomeAlreadyReported, NotDecided, PayloadTooLarge,
        FieldTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable, Timeout, TooManyConnections,
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
        return Conflict(code, message, status, details) if status == 409 else SignoffError(code, message, status, details)
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
    """The gated call waited its `timeout` and the request is still pending. Calling again resumes the same request."""

    def __init__(self, message: str, request: Request) -> None:
        super().__init__(message)
        self.request = request
