"""Signoff for the OpenAI Agents SDK: gated function tools ask Signoff, and a paused run rides in the request's state.

    from signoff.integrations.openai_agents import signoff_tool, run_with_approvals, resume_from_callback

    @signoff_tool(summary="Refund {amount} on order {order_id}")
    async def refund(order_id: str, amount: float) -> str: ...

The flow:

1. A gated tool (`signoff_tool`, or `gate(function_tool(...))`) has `needs_approval=True`, so the Runner stops at
   each of its calls with a `ToolApprovalItem` (several calls of one model response stop together: one
   *interruption set*).
2. `run_with_approvals` serializes the stopped run (`RunState.to_json()`) and asks Signoff once per interruption:
   action = the tool's action (default: its name), args = the call's JSON arguments, `run_id` = the run id you give,
   `call_id` = the model's tool call id, `state` = `{"openai_agents_run_state": <the RunState JSON>}` (at most 64 KiB
   of compact JSON, else `RunStateTooLarge` before anything is asked), `callback_url` if given. Creates are
   idempotent on (`run_id`, `call_id`): asking again for the same call gets the same request.
3. If policy decided every request of the set when it was created (`decide: approve` / `deny`), the run goes on at
   once in this process: the caller never sees a pause and no callback is needed. (The Runner itself returns at the
   gated call, since Signoff's verdict only exists once a request is created and a request's `state` cannot be added
   later; `run_with_approvals` continues it on the spot, with no extra model call.)
4. Otherwise `wait=True` waits for the decisions in this process and continues; `wait=False` returns `Paused` (the
   request ids) and the process may exit. A decision then reaches `callback_url`; `resume_from_callback` rebuilds the
   RunState from the request's `state` (read back from Signoff with the agent's key), gathers the requests of the
   whole set, and continues once every one is decided. Exactly one callback of a set resumes it: the one for the
   request decided last. The others (and those of sets that policy decided, which the creating process continued)
   return `None`.
5. Decisions are applied with `RunState.approve(item)` or `RunState.reject(item, rejection_message=...)`, the message
   naming who decided and why ("Rejected by dana: outside the refund window"; a deadline, an expiry or a
   cancellation has its own). The model sees that message as the tool's output.
6. An approved call runs with `decision.args`, the arguments as approved. The Agents SDK has no way to change a
   call's arguments on approval (it binds each approval to a fingerprint of the call's arguments, and a call id must
   never change payload), so the model's call stays in the history as it asked it, and the gated tool's invoker
   substitutes the approved arguments when it runs, through the tool's own validation. The tool then reports its
   outcome to Signoff (`ok` and the JSON result, or the exception). A call whose request already has an outcome is
   not run again (a second resume of the same set): the recorded result is returned instead.

A gated tool runs only for a call that Signoff approved in this process's `run_with_approvals` / `resume` /
`resume_from_callback`; approving it on a RunState by other means makes it fail with `UserError`.

The state holds the conversation so far and the run's context (a mapping context round-trips; pass `context=` on
resume for anything else). It is stored in Signoff and visible to whoever may read the request: keep secrets out of it.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, overload

from agents import Agent, FunctionTool, RunConfig, Runner, RunResult, RunState, ToolApprovalItem, function_tool
from agents.exceptions import UserError
from agents.items import TResponseInputItem
from agents.run_config import DEFAULT_MAX_TURNS
from agents.tool_context import ToolContext

from ..approval import _failure_detail, _success_detail, not_approved_message
from ..client import AsyncSignoff
from ..errors import IdempotencyConflict
from ..models import Request

__all__ = [
    "signoff_tool",
    "gate",
    "run_with_approvals",
    "resume",
    "resume_from_callback",
    "Paused",
    "RunStateTooLarge",
    "STATE_KEY",
    "MAX_STATE_BYTES",
]

STATE_KEY = "openai_agents_run_state"
"""The key of the RunState JSON in a request's `state`."""
MAX_STATE_BYTES = 65536
"""Signoff's cap on a request's `state`, in bytes of compact JSON."""

Summary = str | Callable[..., str]
Invoke = Callable[[ToolContext[Any], str], Awaitable[Any]]


class RunStateTooLarge(ValueError):
    """The stopped run's state is over Signoff's 64 KiB cap on a request's `state`; nothing was asked."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"the run's state is {size} bytes of JSON; a Signoff request's state holds at most {MAX_STATE_BYTES}: "
            "shorten the run's input or history (or its context) before a gated tool is called"
        )
        self.size = size


@dataclass(frozen=True)
class Paused:
    """A run stopped at gated tool calls whose Signoff requests are not all decided (or decided since).

    The process may exit: `resume_from_callback` continues the run from a request's callback, `resume` from any of
    `requests` by id.
    """

    run_id: str
    requests: tuple[Request, ...]
    """One request per stopped tool call, in the order of the calls."""

    @property
    def request_ids(self) -> list[str]:
        return [request.id for request in self.requests]

    @property
    def pending(self) -> list[Request]:
        """The requests still waiting for a decision."""
        return [request for request in self.requests if request.pending]


@dataclass(frozen=True)
class _Approved:
    """The approved calls a continued run may execute, and the client their outcomes are reported with."""

    client: AsyncSignoff
    requests: Mapping[str, Request]
    """By tool call id."""


_approved: ContextVar[_Approved | None] = ContextVar("signoff_openai_agents_approved", default=None)
_failures: ContextVar[list[Exception] | None] = ContextVar("signoff_openai_agents_failures", default=None)
"""While a gated call runs: where `signoff_tool`'s functions note an exception, even one the SDK then turns into a
message for the model (the tool's `failure_error_function`), so the outcome reported is the failure."""


def _noting_failures(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, with the same signature and docstring, noting the exception it raises for the call's outcome."""

    def note(exc: Exception) -> None:
        failures = _failures.get()
        if failures is not None:
            failures.append(exc)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def noting_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                note(exc)
                raise

        return noting_async

    @functools.wraps(fn)
    def noting(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            note(exc)
            raise

    return noting


def _proposed_args(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as a request's `args` (an object; anything else is kept as its raw text)."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"arguments": arguments}


class _SignoffInvoker:
    """The `on_invoke_tool` of a gated tool: runs a call with the arguments its Signoff request approved."""

    def __init__(self, invoke: Invoke, action: str, summary: Summary | None) -> None:
        self.invoke = invoke
        self.action = action
        self.summary = summary

    def summarize(self, args: dict[str, Any]) -> str | None:
        if self.summary is None:
            return None
        try:
            return self.summary(**args) if callable(self.summary) else self.summary.format(**args)
        except Exception as exc:  # the model's arguments may not fit: the request goes without a summary
            warnings.warn(f"signoff: no summary for {self.action}: {exc!r}", stacklevel=2)
            return None

    async def __call__(self, ctx: ToolContext[Any], arguments: str) -> Any:
        approved = _approved.get()
        request = approved.requests.get(ctx.tool_call_id) if approved is not None else None
        if approved is None or request is None or request.decision is None:
            raise UserError(
                f"signoff: call {ctx.tool_call_id} of {ctx.tool_name} has no approved Signoff request; "
                "run the agent with signoff.integrations.openai_agents.run_with_approvals"
            )
        if request.outcome is not None:
            detail = request.outcome.detail
            if request.outcome.ok and isinstance(detail, dict) and "result" in detail:
                return detail["result"]
            raise UserError(
                f"signoff: call {ctx.tool_call_id} of {ctx.tool_name} already ran (request {request.id}) and its "
                "result was not recorded; it is not run again"
            )
        if request.decision.args != _proposed_args(arguments):
            arguments = json.dumps(request.decision.args)
        failures: list[Exception] = []
        token = _failures.set(failures)
        try:
            result = await self.invoke(ctx, arguments)
        except Exception as exc:
            await _report(approved.client, request, False, _failure_detail(exc))
            raise
        finally:
            _failures.reset(token)
        if failures:
            await _report(approved.client, request, False, _failure_detail(failures[-1]))
        else:
            await _report(approved.client, request, True, _success_detail(result))
        return result


async def _report(client: AsyncSignoff, request: Request, ok: bool, detail: Any) -> None:
    try:
        await client.report_outcome(request.id, ok, detail)
    except Exception as exc:  # the tool ran: its result matters more than the report
        warnings.warn(f"signoff: could not report the outcome of request {request.id}: {exc}", stacklevel=2)


def gate(tool: FunctionTool, *, action: str | None = None, summary: Summary | None = None) -> FunctionTool:
    """A copy of `tool` whose calls Signoff approves: `needs_approval=True`, run with the approved arguments.

    - `action`: the requests' action, which policy rules match (default: the tool's name).
    - `summary`: one line for the approver, a format string over the call's arguments
      (`"Refund {amount} on order {order_id}"`) or a function of them.

    The outcome reported is what the tool's invoker returned or raised; a failure that the tool's
    `failure_error_function` turns into a message for the model counts as `ok` here (`signoff_tool` sees through it).
    """
    if not isinstance(tool, FunctionTool):
        raise TypeError(f"only function tools can be gated, not {type(tool).__name__}")
    gated = copy.copy(tool)
    invoke = gated.on_invoke_tool
    if isinstance(invoke, _SignoffInvoker):
        invoke = invoke.invoke
    gated.needs_approval = True
    gated.on_invoke_tool = _SignoffInvoker(invoke, action or tool.name, summary)
    return gated


@overload
def signoff_tool(func: Callable[..., Any], /) -> FunctionTool: ...


@overload
def signoff_tool(
    *, action: str | None = None, summary: Summary | None = None, **function_tool_options: Any
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def signoff_tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    action: str | None = None,
    summary: Summary | None = None,
    **function_tool_options: Any,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """`@function_tool` for a tool whose calls Signoff approves (see `gate` for `action` and `summary`).

    Other keyword arguments go to `function_tool` (`name_override`, `failure_error_function`, ...), except
    `needs_approval`, which Signoff's policy replaces. An exception of the function is reported to Signoff as the
    call's failed outcome, also when the SDK turns it into a message for the model.
    """
    if "needs_approval" in function_tool_options:
        raise TypeError("signoff_tool sets needs_approval itself; Signoff's policy decides which calls a person sees")

    def decorate(fn: Callable[..., Any]) -> FunctionTool:
        tool = function_tool(_noting_failures(fn), **function_tool_options)
        return gate(tool, action=action, summary=summary)

    return decorate(func) if func is not None else decorate


def _raw_field(item: ToolApprovalItem, name: str) -> Any:
    raw = item.raw_item
    return raw.get(name) if isinstance(raw, Mapping) else getattr(raw, name, None)


def _call_id(item: ToolApprovalItem) -> str:
    call_id = _raw_field(item, "call_id")
    if not isinstance(call_id, str) or not call_id:
        raise UserError(f"signoff: the call of {item.tool_name} to approve has no call id")
    return call_id


def _gate_of(item: ToolApprovalItem) -> _SignoffInvoker:
    for tool in getattr(item.agent, "tools", []):
        if isinstance(tool, FunctionTool) and tool.name == item.tool_name:
            if isinstance(tool.on_invoke_tool, _SignoffInvoker):
                return tool.on_invoke_tool
    raise UserError(
        f"signoff: the run stopped for approval of {item.tool_name!r}, which is not a Signoff-gated tool; "
        "make it with signoff_tool(...) or gate(...)"
    )


def _envelope(state: RunState[Any, Any]) -> dict[str, Any]:
    envelope = {STATE_KEY: state.to_json()}
    size = len(json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_STATE_BYTES:
        raise RunStateTooLarge(size)
    return envelope


async def _ask(
    client: AsyncSignoff,
    items: Sequence[ToolApprovalItem],
    envelope: dict[str, Any],
    run_id: str,
    callback_url: str | None,
) -> tuple[Request, ...]:
    """The Signoff request of each stopped call: created, or (the same run and call id) the one created before."""
    requests = []
    for item in items:
        invoker, call_id = _gate_of(item), _call_id(item)
        args = _proposed_args(str(_raw_field(item, "arguments") or ""))
        try:
            request = await client.create(
                invoker.action,
                args,
                summary=invoker.summarize(args),
                run_id=run_id,
                call_id=call_id,
                callback_url=callback_url,
                state=envelope,
            )
        except IdempotencyConflict:
            # Asked before with another body (a state serialized anew, a changed summary): the first ask stands.
            request = await _find(client, run_id, call_id)
        requests.append(request)
    return tuple(requests)


async def _find(client: AsyncSignoff, run_id: str, call_id: str) -> Request:
    cursor = None
    while True:
        page = await client.list(run_id=run_id, cursor=cursor)
        for request in page.items:
            if request.call_id == call_id:
                return request
        if page.next_cursor is None:
            raise UserError(f"signoff: no request for call {call_id} in run {run_id}, though Signoff has its key")
        cursor = page.next_cursor


async def _settle(client: AsyncSignoff, requests: tuple[Request, ...], deadline: float | None) -> tuple[Request, ...]:
    """The requests once decided, or as they are when `deadline` (monotonic) passes."""
    settled = []
    for request in requests:
        if request.pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            request = await client.wait(request.id, remaining)
        settled.append(request)
    return tuple(settled)


def _by_policy(requests: Sequence[Request]) -> bool:
    return all(r.decision is not None and r.decision.by.kind == "policy" for r in requests)


async def _continue(
    agent: Agent[Any],
    state: RunState[Any, Any],
    requests: Sequence[Request],
    client: AsyncSignoff,
    run_config: RunConfig | None,
) -> RunResult:
    """Apply every decision of the set to `state` and run on, executing the approved calls' `decision.args`."""
    by_call = {request.call_id: request for request in requests}
    for item in state.get_interruptions():
        request = by_call[_call_id(item)]
        if request.status == "approved":
            state.approve(item)
        else:
            state.reject(item, rejection_message=not_approved_message(request))
    approved = {call_id: r for call_id, r in by_call.items() if call_id is not None and r.status == "approved"}
    token = _approved.set(_Approved(client, approved))
    try:
        return await Runner.run(agent, state, run_config=run_config)
    finally:
        _approved.reset(token)


async def _drive(
    agent: Agent[Any],
    result: RunResult,
    *,
    client: AsyncSignoff,
    run_id: str,
    callback_url: str | None,
    wait: bool,
    deadline: float | None,
    run_config: RunConfig | None,
) -> RunResult | Paused:
    """Ask for each interruption set of the run and continue it, until it finishes or must pause."""
    while result.interruptions:
        state = result.to_state()
        requests = await _ask(client, state.get_interruptions(), _envelope(state), run_id, callback_url)
        if wait:
            requests = await _settle(client, requests, deadline)
        if any(r.pending for r in requests) or (callback_url is not None and not _by_policy(requests)):
            # Decided by people: the callback of the last decision resumes the run, not this process.
            return Paused(run_id, requests)
        result = await _continue(agent, state, requests, client, run_config)
    return result


async def run_with_approvals(
    agent: Agent[Any],
    input: str | list[TResponseInputItem],
    *,
    client: AsyncSignoff,
    run_id: str,
    callback_url: str | None = None,
    wait: bool = True,
    timeout: float | None = None,
    context: Any = None,
    max_turns: int | None = DEFAULT_MAX_TURNS,
    run_config: RunConfig | None = None,
) -> RunResult | Paused:
    """Run `agent` on `input`, asking Signoff for each call of a gated tool; the finished run's result, or `Paused`.

    - `run_id`: your conversation, ticket or job id; with the tool call id it keys each request.
    - `wait=True`: wait in this process for people's decisions (at most `timeout` seconds in all, then `Paused`).
    - `wait=False`: return `Paused` as soon as a request needs a person; the process may exit. With `callback_url`,
      Signoff posts each decision there; hand the verified callback to `resume_from_callback`. Without one, call
      `resume` with a request id when you choose.
    - Calls that policy decides at once never pause the run, either way.
    - `context`, `max_turns`, `run_config`: as for `Runner.run`.
    """
    if wait and callback_url is not None:
        raise ValueError("a run that waits in-process resumes itself; give callback_url only with wait=False")
    deadline = None if timeout is None else time.monotonic() + timeout
    result = await Runner.run(agent, input, context=context, max_turns=max_turns, run_config=run_config)
    return await _drive(
        agent,
        result,
        client=client,
        run_id=run_id,
        callback_url=callback_url,
        wait=wait,
        deadline=deadline,
        run_config=run_config,
    )


def _request_id(source: Request | Mapping[str, Any] | str) -> str:
    if isinstance(source, Request):
        return source.id
    if isinstance(source, str):
        return source
    data = source.get("data", source)  # a callback message, or a request as JSON
    if isinstance(data, Mapping) and isinstance(data.get("id"), str):
        return str(data["id"])
    raise ValueError("expected a request, a request id, or a callback message ({'type', 'data': <request>})")


async def _load(
    agent: Agent[Any], client: AsyncSignoff, source: Request | Mapping[str, Any] | str, context: Any
) -> tuple[Request, RunState[Any, Any]]:
    """The request (read back from Signoff, so its state is what this agent key stored) and its run's RunState."""
    request = await client.get(_request_id(source))
    envelope = request.state
    if not isinstance(envelope, dict) or not isinstance(envelope.get(STATE_KEY), dict) or request.run_id is None:
        raise ValueError(f"request {request.id} carries no OpenAI Agents run state")
    state = await RunState.from_json(agent, copy.deepcopy(envelope[STATE_KEY]), context_override=context)
    return request, state


async def resume(
    agent: Agent[Any],
    request: Request | Mapping[str, Any] | str,
    *,
    client: AsyncSignoff,
    wait: bool = True,
    timeout: float | None = None,
    context: Any = None,
    run_config: RunConfig | None = None,
) -> RunResult | Paused:
    """Continue the run that stopped at `request` (a request, its id, or a callback message), in this process.

    `agent` must be the agent (and tools) the run started with. The requests of the whole interruption set are
    gathered (any the stopped process did not get to ask are asked now); with `wait=True` their decisions are waited
    for (at most `timeout` seconds, then `Paused`), with `wait=False` a pending one returns `Paused` at once. Later
    stops of the run pause for the run's callback if it has a `callback_url`, else as `wait` says. `context` replaces
    the serialized context (needed when it was not a mapping).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    first, state = await _load(agent, client, request, context)
    run_id = str(first.run_id)
    envelope = dict(first.state or {})
    requests = await _ask(client, state.get_interruptions(), envelope, run_id, first.callback_url)
    if wait:
        requests = await _settle(client, requests, deadline)
    if any(r.pending for r in requests):
        return Paused(run_id, requests)
    result = await _continue(agent, state, requests, client, run_config)
    return await _drive(
        agent,
        result,
        client=client,
        run_id=run_id,
        callback_url=first.callback_url,
        wait=wait and first.callback_url is None,
        deadline=deadline,
        run_config=run_config,
    )


async def resume_from_callback(
    agent: Agent[Any],
    callback: Request | Mapping[str, Any] | str,
    *,
    client: AsyncSignoff,
    context: Any = None,
    run_config: RunConfig | None = None,
) -> RunResult | Paused | None:
    """Continue a run from the callback of one of its requests (the message `signoff.webhooks.verify` returned).

    Returns `None` when this callback does not resume the run: another request of its interruption set is still
    pending (its decision's callback will), another request was decided later (its callback does it), or policy
    decided the whole set at once (the process that asked continued the run). Otherwise the run continues here:
    its result, or `Paused` at its next stop for people (whose callbacks continue it). The request is read back from
    Signoff with `client` (the agent's key), so only state this agent stored is ever resumed. A `request.flagged`
    message (a person flagged what the agent already did) never resumes a run: it returns `None`, and the agent
    handles the flag itself (`message["data"]["review"]`), reporting its remediation with `report_outcome`.
    """
    if isinstance(callback, Mapping) and callback.get("type") == "request.flagged":
        return None
    first, state = await _load(agent, client, callback, context)
    run_id = str(first.run_id)
    requests = await _ask(client, state.get_interruptions(), dict(first.state or {}), run_id, first.callback_url)
    if any(r.pending for r in requests) or _by_policy(requests):
        return None
    last = max(requests, key=lambda r: (r.decision.at if r.decision is not None else r.updated_at, r.id))
    if last.id != first.id:
        return None
    result = await _continue(agent, state, requests, client, run_config)
    return await _drive(
        agent,
        result,
        client=client,
        run_id=run_id,
        callback_url=first.callback_url,
        wait=False,
        deadline=None,
        run_config=run_config,
    )
