"""`@require_approval`: gate a function (plain or async) behind a Signoff request.

A gated call:

1. binds the call's arguments by name (they must be JSON: they are what the approver sees and may edit);
2. creates a request keyed by `run_id` and a `call_id` derived from the action and its arguments, so a retried or
   resumed agent (a new process, the same run, the same call) gets the request it made before instead of asking
   again. A request that already has an outcome was used up by an earlier call that ran, so the same call asked
   again in the same run makes a new request (`call_id` gets `#2`, `#3`, ...);
3. waits for the decision (at most `timeout` seconds, if given; else until the request's deadline decides it);
4. if approved, runs the function with the approved arguments (an approver's edit included) and reports the outcome
   (`ok` with the JSON result, or the exception's type and message, which is then raised again);
5. if not approved, returns a message for the model (`on_reject="return"`, e.g. "Rejected by dana: outside the
   refund window") or raises `Rejected`, `Expired` or `Cancelled` (`on_reject="raise"`).

A `timeout` that passes while the request is still pending raises `ApprovalTimeout` whatever `on_reject` says (it is
not a decision; calling again with the same arguments and run picks the same request up).

The run id is the decorated function's `run_id` argument if it has one, else the one set by `with signoff.run(...)`,
else one random id per process (so requests are reused across retries within the process only). Give a durable run id
(a conversation, ticket or job id) for an agent that must resume after a crash.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from uuid import uuid4

from .client import AsyncSignoff, Signoff
from .errors import ApprovalTimeout, Cancelled, Expired, NotApproved, Rejected
from .models import Request

__all__ = ["require_approval", "run", "current_run_id", "not_approved_message", "OnReject"]

OnReject = Literal["return", "raise"]
F = TypeVar("F", bound=Callable[..., Any])

_run_id: ContextVar[str | None] = ContextVar("signoff_run_id", default=None)
_PROCESS_RUN_ID = f"process-{uuid4()}"
_MAX_RESULT_BYTES = 16384


@contextlib.contextmanager
def run(run_id: str) -> Iterator[str]:
    """Gated calls inside this block belong to the run `run_id` (a conversation, ticket or job id)."""
    token = _run_id.set(run_id)
    try:
        yield run_id
    finally:
        _run_id.reset(token)


def current_run_id() -> str:
    """The run id gated calls use here: the one set by `run(...)`, else this process's own."""
    return _run_id.get() or _PROCESS_RUN_ID


def not_approved_message(request: Request) -> str:
    """What a gated call returns to the model for a request that was not approved."""
    decision = request.decision
    if decision is None:
        return f"Not approved: the request is {request.status}"
    text, by = (decision.comment or decision.reason or "").strip(), decision.by
    if request.status == "rejected":
        if by.kind == "timeout":
            return "Rejected: no decision before the deadline"
        who = f" by {by.approver_id}" if by.kind == "human" else " by policy" if by.kind == "policy" else ""
        return f"Rejected{who}: {text}" if text else f"Rejected{who}"
    if request.status == "expired":
        return "Expired: no decision before the deadline"
    if request.status == "cancelled":
        return f"Cancelled: {text}" if text else "Cancelled"
    return f"Not approved: the request is {request.status}"


_EXCEPTIONS: dict[str, type[NotApproved]] = {"rejected": Rejected, "expired": Expired, "cancelled": Cancelled}


@dataclass(frozen=True)
class _Ask:
    """One gated call, ready to be sent."""

    args: dict[str, Any]
    run_id: str
    call_id: str
    summary: str | None

    def create_fields(self, attempt: int) -> dict[str, Any]:
        call_id = self.call_id if attempt == 1 else f"{self.call_id}#{attempt}"
        return {"args": self.args, "summary": self.summary, "run_id": self.run_id, "call_id": call_id}


class _Gate:
    """What the decorator knows about one function; sync and async wrappers share it."""

    def __init__(
        self,
        fn: Callable[..., Any],
        action: str | None,
        summary: str | Callable[..., str] | None,
        timeout: float | None,
        on_reject: OnReject,
    ) -> None:
        if on_reject not in ("return", "raise"):
            raise ValueError(f"on_reject must be 'return' or 'raise', not {on_reject!r}")
        self.fn = fn
        self.action = action or fn.__name__
        self.summary = summary
        self.timeout = timeout
        self.on_reject = on_reject
        self.signature = inspect.signature(fn)
        if any(p.kind is p.VAR_POSITIONAL for p in self.signature.parameters.values()):
            raise TypeError(f"{fn.__qualname__}: *args cannot be gated; name every argument")
        self.has_run_id = "run_id" in self.signature.parameters

    def ask(self, call_args: tuple[Any, ...], call_kwargs: dict[str, Any]) -> _Ask:
        bound = self.signature.bind(*call_args, **call_kwargs)
        bound.apply_defaults()
        args: dict[str, Any] = {}
        run_id = None
        for name, value in bound.arguments.items():
            if name == "run_id":
                run_id = value
            elif self.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                args.update(value)
            else:
                args[name] = value
        try:
            canonical = json.dumps(args, sort_keys=True, separators=(",", ":"))
        except TypeError as exc:
            raise TypeError(f"{self.fn.__qualname__}: the arguments of a gated call must be JSON ({exc})") from exc
        digest = hashlib.sha256(f"{self.action}\n{canonical}".encode()).hexdigest()[:32]
        return _Ask(
            args=args,
            run_id=str(run_id) if run_id is not None else current_run_id(),
            call_id=f"{self.action[:128]}:{digest}",
            summary=self._summary(args),
        )

    def _summary(self, args: dict[str, Any]) -> str | None:
        if self.summary is None:
            return None
        if callable(self.summary):
            return self.summary(**args)
        return self.summary.format(**args)

    def call_with(self, approved: dict[str, Any], run_id: str) -> tuple[list[Any], dict[str, Any]]:
        """The positional and keyword arguments that call the function with the approved arguments."""
        positional, keywords = [], dict(approved)
        for name, param in self.signature.parameters.items():
            if param.kind is param.POSITIONAL_ONLY and name in keywords:
                positional.append(keywords.pop(name))
        if self.has_run_id:
            keywords["run_id"] = run_id
        return positional, keywords

    def not_approved(self, request: Request) -> str:
        if request.pending:
            raise ApprovalTimeout(
                f"no decision on request {request.id} within {self.timeout} s; it is still pending", request
            )
        message = not_approved_message(request)
        if self.on_reject == "raise":
            raise _EXCEPTIONS.get(request.status, NotApproved)(message, request)
        return message


def _success_detail(result: Any) -> dict[str, Any] | None:
    try:
        text = json.dumps(result)
    except (TypeError, ValueError):
        return None
    return {"result": result} if len(text) <= _MAX_RESULT_BYTES else None


def _failure_detail(exc: BaseException) -> dict[str, Any]:
    return {"error": type(exc).__name__, "message": str(exc)[:2000]}


def _warn_unreported(request: Request, exc: Exception) -> None:
    warnings.warn(f"signoff: could not report the outcome of request {request.id}: {exc}", stacklevel=3)


def _sync_gate(gate: _Gate, client: Signoff | None) -> Callable[..., Any]:
    def asked(api: Signoff, ask: _Ask) -> Request:
        attempt = 1
        while True:
            request = api.create(gate.action, **ask.create_fields(attempt))
            if request.outcome is None:
                return request
            attempt += 1

    @functools.wraps(gate.fn)
    def gated(*call_args: Any, **call_kwargs: Any) -> Any:
        ask = gate.ask(call_args, call_kwargs)
        with contextlib.ExitStack() as stack:
            api = client if client is not None else stack.enter_context(Signoff())
            request = asked(api, ask)
            if request.pending:
                request = api.wait(request.id, gate.timeout)
            if request.status != "approved" or request.decision is None:
                return gate.not_approved(request)
            positional, keywords = gate.call_with(request.decision.args, ask.run_id)
            try:
                result = gate.fn(*positional, **keywords)
            except Exception as exc:
                _report(api, request, False, _failure_detail(exc))
                raise
            _report(api, request, True, _success_detail(result))
            return result

    return gated


def _report(api: Signoff, request: Request, ok: bool, detail: Any) -> None:
    try:
        api.report_outcome(request.id, ok, detail)
    except Exception as exc:  # the function ran: its result matters more than the report
        _warn_unreported(request, exc)


def _async_gate(gate: _Gate, client: AsyncSignoff | None) -> Callable[..., Any]:
    async def asked(api: AsyncSignoff, ask: _Ask) -> Request:
        attempt = 1
        while True:
            request = await api.create(gate.action, **ask.create_fields(attempt))
            if request.outcome is None:
                return request
            attempt += 1

    async def report(api: AsyncSignoff, request: Request, ok: bool, detail: Any) -> None:
        try:
            await api.report_outcome(request.id, ok, detail)
        except Exception as exc:
            _warn_unreported(request, exc)

    @functools.wraps(gate.fn)
    async def gated(*call_args: Any, **call_kwargs: Any) -> Any:
        ask = gate.ask(call_args, call_kwargs)
        async with contextlib.AsyncExitStack() as stack:
            api = client if client is not None else await stack.enter_async_context(AsyncSignoff())
            request = await asked(api, ask)
            if request.pending:
                request = await api.wait(request.id, gate.timeout)
            if request.status != "approved" or request.decision is None:
                return gate.not_approved(request)
            positional, keywords = gate.call_with(request.decision.args, ask.run_id)
            try:
                result = await gate.fn(*positional, **keywords)
            except Exception as exc:
                await report(api, request, False, _failure_detail(exc))
                raise
            await report(api, request, True, _success_detail(result))
            return result

    return gated


def require_approval(
    action: str | None = None,
    *,
    summary: str | Callable[..., str] | None = None,
    timeout: float | None = None,
    on_reject: OnReject = "return",
    client: Signoff | AsyncSignoff | None = None,
) -> Callable[[F], F]:
    """Gate the decorated function behind a Signoff approval (see this module's docstring for the whole story).

    - `action`: the request's action (default: the function's name); policy rules match on it.
    - `summary`: one line for the approver; a format string over the arguments (`"Refund {amount} to {customer}"`)
      or a function of them (`lambda amount, customer: ...`).
    - `timeout`: seconds to wait for a decision before raising `ApprovalTimeout` (default: until the deadline).
    - `on_reject`: `"return"` a message for the model, or `"raise"` `Rejected` / `Expired` / `Cancelled`.
    - `client`: a `Signoff` (plain functions) or `AsyncSignoff` (async functions); default: a new one per call,
      configured from `SIGNOFF_URL` and `SIGNOFF_KEY`.
    """

    def decorate(fn: F) -> F:
        gate = _Gate(fn, action, summary, timeout, on_reject)
        if inspect.iscoroutinefunction(fn):
            if client is not None and not isinstance(client, AsyncSignoff):
                raise TypeError(f"{fn.__qualname__} is async: pass an AsyncSignoff client")
            return _async_gate(gate, client)  # type: ignore[return-value]
        if client is not None and not isinstance(client, Signoff):
            raise TypeError(f"{fn.__qualname__} is not async: pass a Signoff client")
        return _sync_gate(gate, client)  # type: ignore[return-value]

    return decorate
