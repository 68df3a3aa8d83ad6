"""LangGraph and LangChain agents whose interrupts a person answers through Signoff (`pip install 'signoff[langgraph]'`).

A LangGraph graph pauses with `interrupt(...)`: the run stops, its checkpointer keeps the state, and the caller resumes
it with `Command(resume=...)`. This module answers two kinds of interrupt through Signoff:

- **`HumanInTheLoopMiddleware` reviews** (LangChain's `create_agent`), in both of its modes. Each tool call it holds
  becomes one Signoff request: the action is the tool's name, the arguments the tool's, the summary the first line of
  the review's description, keyed by the tool call's id in the run of the thread (`run_id` = the `thread_id`). Its
  decision becomes the middleware's: approved as proposed → `approve`; approved with edited arguments → `edit` (the
  tool runs with the approved arguments); rejected → `reject`, with the message "Rejected by dana: <comment>" for the
  model; expired or cancelled → `reject` with why. A tool whose review allows neither `approve` nor `edit` but
  `respond` (an "ask the user" tool) becomes a Signoff question, and its answer the `respond` message.
- **`ask_signoff` and `request_signoff`**, called inside a node (or a tool) of your own graph: they interrupt with a
  marker the driver turns into a Signoff question or approval request, keyed by the interrupt's id, and return the
  answer's text or the decided request when the graph is resumed.

`run_with_approvals(graph, input, config=..., client=...)` runs a graph to its end, answering every pause through
Signoff; `decisions_for` turns one pause's interrupts into the `Command` that resumes it, for a loop of your own.
Both create their requests idempotently, so a process that died while waiting runs the same thread again
(`run_with_approvals(graph, None, config=...)`) and picks up the same requests and their decisions.

Decisions a review does not allow are never sent to the middleware (it would raise): an edited approval of a tool
whose review does not allow `edit` is turned into a `reject` that says so (the approver approved something other than
the proposal, so the proposal does not run). Such requests are tagged `no-edit`, so a policy rule can forbid edits in
Signoff itself (`allow_edit: false`). A decision that cannot be expressed at all (a rejection of a tool that allows
neither `reject` nor `respond`) raises `DecisionNotAllowed`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast

try:
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.runnables import RunnableConfig
    from langgraph.pregel import Pregel
    from langgraph.types import Command, Interrupt, interrupt
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("signoff.integrations.langgraph needs LangGraph: pip install 'signoff[langgraph]'") from exc

from ..approval import not_approved_message
from ..client import AsyncSignoff, Signoff
from ..errors import ApprovalTimeout, IdempotencyConflict, Unanswered
from ..models import JSON, Request
from ..questions import answer_text

__all__ = [
    "run_with_approvals",
    "arun_with_approvals",
    "decisions_for",
    "adecisions_for",
    "ask_signoff",
    "request_signoff",
    "SignoffInterrupt",
    "DecisionNotAllowed",
    "SIGNOFF_INTERRUPT",
]

SIGNOFF_INTERRUPT = "signoff"
"""The `type` of the interrupt values `ask_signoff` and `request_signoff` raise."""

_ALL_DECISIONS = ("approve", "edit", "reject", "respond")
_INTERRUPT_KEY = "__interrupt__"
_MAX_RESULT_CHARS = 16000
_MAX_ERROR_CHARS = 2000

AnyGraph = Pregel[Any, Any, Any, Any]


class SignoffInterrupt(TypedDict, total=False):
    """The value of an interrupt raised by `ask_signoff` (`kind` `question`) or `request_signoff` (`approval`)."""

    type: Literal["signoff"]
    kind: Literal["approval", "question"]
    action: str
    args: dict[str, JSON]
    question: str
    options: list[str]
    summary: str
    reasoning: str
    context: dict[str, JSON]
    tags: list[str]
    timeout_s: int


class DecisionNotAllowed(ValueError):
    """A Signoff decision that the tool's review cannot take: e.g. a rejection where it allows only `approve`."""

    def __init__(self, message: str, request: Request) -> None:
        super().__init__(message)
        self.request = request


# --- inside a node ------------------------------------------------------------------------------------------------


def ask_signoff(
    question: str,
    options: Sequence[str] | None = None,
    *,
    action: str = "ask_human",
    summary: str | None = None,
    context: dict[str, JSON] | None = None,
    tags: Sequence[str] | None = None,
    timeout_s: int | None = None,
) -> str:
    """Pause the graph until a person answers `question` through Signoff, and return the answer's text.

    Call it inside a node or a tool of a graph that has a checkpointer. The first run of the node interrupts with a
    `SignoffInterrupt`; `run_with_approvals` (or `decisions_for`) asks the question in Signoff and resumes the graph
    with the answered request, and the node's second run returns the answer here. `options`, if given, are the only
    answers accepted. Raises `signoff.Unanswered` if the question expired or was cancelled. A plain
    `Command(resume="text")` answers it too, without Signoff.
    """
    value = _marker(
        "question",
        action=action,
        question=question,
        options=list(options) if options else None,
        summary=summary,
        context=context,
        tags=list(tags) if tags else None,
        timeout_s=timeout_s,
    )
    resumed = interrupt(value)
    if isinstance(resumed, str):
        return resumed
    return answer_text(Request.model_validate(resumed))


def request_signoff(
    action: str,
    args: dict[str, JSON] | None = None,
    *,
    summary: str | None = None,
    reasoning: str | None = None,
    context: dict[str, JSON] | None = None,
    tags: Sequence[str] | None = None,
    timeout_s: int | None = None,
) -> Request:
    """Pause the graph until Signoff decides an approval request for `action`, and return the decided request.

    Like `ask_signoff`, for an approval: `request.status` is `approved` (execute `request.decision.args`, an
    approver's edits included), `rejected`, `expired` or `cancelled` (`signoff.not_approved_message(request)` says
    why, e.g. "Rejected by dana: too large").
    """
    value = _marker(
        "approval",
        action=action,
        args=args or {},
        summary=summary,
        reasoning=reasoning,
        context=context,
        tags=list(tags) if tags else None,
        timeout_s=timeout_s,
    )
    return Request.model_validate(interrupt(value))


def _marker(kind: Literal["approval", "question"], **fields: Any) -> SignoffInterrupt:
    present = {name: value for name, value in fields.items() if value is not None}
    return cast(SignoffInterrupt, {"type": SIGNOFF_INTERRUPT, "kind": kind, **present})


def _unanswered_message(request: Request) -> str:
    """Why a question that was not answered got no answer, in `signoff.ask_human`'s words."""
    try:
        answer_text(request)
    except (Unanswered, ApprovalTimeout) as error:
        return str(error)
    return f"No answer: the question is {request.status}"


# --- from interrupts to Signoff requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ask:
    """One Signoff request that an interrupt needs, created (or found again) by its `call_id` in the thread's run."""

    kind: Literal["approval", "question"]
    call_id: str
    fields: dict[str, Any]
    """The keyword arguments of `create` or `ask`, but `run_id` and `call_id`."""
    tool: str | None = None
    """The reviewed tool (middleware reviews only)."""
    allowed: frozenset[str] = frozenset()
    """The decisions the middleware's review allows."""
    tool_call_id: str | None = None
    """The tool call's own id, when known: its `ToolMessage` is the outcome reported after the tool ran."""


@dataclass(frozen=True)
class _Plan:
    """What one interrupt needs from Signoff, and how its decided requests resume it."""

    interrupt: Interrupt[Any]
    shape: Literal["batched", "per_call", "signoff"]
    asks: tuple[_Ask, ...]

    def resume_value(self, requests: Sequence[Request]) -> Any:
        if self.shape == "signoff":
            return requests[0].model_dump(mode="json")
        decisions = [_tool_decision(ask, request) for ask, request in zip(self.asks, requests, strict=True)]
        return {"decisions": decisions} if self.shape == "batched" else decisions[0]


def _thread_id(config: RunnableConfig) -> str:
    thread_id = config.get("configurable", {}).get("thread_id")
    if thread_id is None or str(thread_id) == "":
        raise ValueError("config needs configurable.thread_id: the thread is the Signoff run of its requests")
    return str(thread_id)


def _plans(interrupts: Sequence[Interrupt[Any]], thread_id: str, state: Any) -> list[_Plan]:
    return [_plan(item, thread_id, state) for item in interrupts]


def _plan(item: Interrupt[Any], thread_id: str, state: Any) -> _Plan:
    value = item.value
    if isinstance(value, Mapping):
        if value.get("type") == SIGNOFF_INTERRUPT:
            return _Plan(item, "signoff", (_signoff_ask(item, value),))
        if value.get("type") == "tool_approval":
            allowed = _allowed_in_schema(item.response_schema)
            call_id = value.get("tool_call_id") or f"{item.id}:0"
            ask = _tool_ask(thread_id, call_id, value.get("tool_call_id") or None, value, allowed)
            return _Plan(item, "per_call", (ask,))
        if isinstance(value.get("action_requests"), list) and isinstance(value.get("review_configs"), list):
            requests: list[Mapping[str, Any]] = value["action_requests"]
            ids = _tool_call_ids(requests, state)
            asks = tuple(
                _tool_ask(
                    thread_id,
                    tool_call_id or f"{item.id}:{index}",
                    tool_call_id,
                    request,
                    _allowed_in_configs(value["review_configs"], index, request["name"]),
                )
                for index, (request, tool_call_id) in enumerate(zip(requests, ids, strict=True))
            )
            return _Plan(item, "batched", asks)
    raise ValueError(
        f"interrupt {item.id} is neither a HumanInTheLoopMiddleware review nor raised by ask_signoff or "
        f"request_signoff, so Signoff cannot answer it: {value!r:.200}"
    )


def _tool_call_ids(action_requests: Sequence[Mapping[str, Any]], state: Any) -> list[str | None]:
    """The ids of the reviewed tool calls: those of the last AI message, matched in order by name and arguments."""
    messages = state.get("messages") if isinstance(state, Mapping) else None
    last_ai = next((m for m in reversed(messages or []) if isinstance(m, AIMessage)), None)
    calls = list(last_ai.tool_calls) if last_ai is not None else []
    ids: list[str | None] = []
    position = 0
    for request in action_requests:
        for index in range(position, len(calls)):
            if calls[index]["name"] == request["name"] and calls[index]["args"] == request["args"]:
                ids.append(calls[index]["id"] or None)
                position = index + 1
                break
        else:
            ids.append(None)
    return ids


def _allowed_in_configs(configs: Sequence[Mapping[str, Any]], index: int, name: str) -> frozenset[str]:
    """The decisions the review allows for the `index`th action: its config by position, else by tool name."""
    if index < len(configs) and configs[index].get("action_name") == name:
        return frozenset(configs[index].get("allowed_decisions") or _ALL_DECISIONS)
    for config in configs:
        if config.get("action_name") == name:
            return frozenset(config.get("allowed_decisions") or _ALL_DECISIONS)
    return frozenset(_ALL_DECISIONS)


def _allowed_in_schema(schema: Any) -> frozenset[str]:
    """The decisions a per-call review allows, read from its `response_schema` (one decision, or a union)."""
    if isinstance(schema, Mapping):
        mapping = schema.get("discriminator", {}).get("mapping")
        if isinstance(mapping, Mapping) and mapping:
            return frozenset(str(k) for k in mapping)
        only = schema.get("properties", {}).get("type", {}).get("const")
        if isinstance(only, str):
            return frozenset({only})
    return frozenset(_ALL_DECISIONS)


def _tool_ask(
    thread_id: str, call_id: str, tool_call_id: str | None, action: Mapping[str, Any], allowed: frozenset[str]
) -> _Ask:
    name = str(action["name"])
    args = dict(action.get("args") or {})
    description = str(action.get("description") or "")
    summary = next((line.strip() for line in description.splitlines() if line.strip()), None)
    context: dict[str, Any] = {
        "thread_id": thread_id,
        "allowed_decisions": [d for d in _ALL_DECISIONS if d in allowed],
    }
    if tool_call_id is not None:
        context["tool_call_id"] = tool_call_id
    if description:
        context["description"] = description
    if "respond" in allowed and not allowed & {"approve", "edit"}:
        question = args.get("question")
        text = question if isinstance(question, str) and question.strip() else description or name
        fields: dict[str, Any] = {"action": name, "question": text[:4000], "context": context, "tags": ["langgraph"]}
        return _Ask("question", call_id, fields, name, allowed, tool_call_id)
    tags = ["langgraph"] if "edit" in allowed else ["langgraph", "no-edit"]
    fields = {"action": name, "args": args, "summary": summary and summary[:2000], "context": context, "tags": tags}
    return _Ask("approval", call_id, fields, name, allowed, tool_call_id)


def _signoff_ask(item: Interrupt[Any], value: Mapping[str, Any]) -> _Ask:
    kind: Literal["approval", "question"] = "question" if value.get("kind") == "question" else "approval"
    names: tuple[str, ...] = ("action", "summary", "context", "tags", "timeout_s")
    names += ("question", "options") if kind == "question" else ("args", "reasoning")
    fields = {name: value[name] for name in names if value.get(name) is not None}
    fields["tags"] = ["langgraph", *fields.get("tags", [])]
    # The interrupt's id names its slot in the task; the digest keeps a changed question from taking an old answer.
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return _Ask(kind, f"{item.id}:{digest}", fields)


def _tool_decision(ask: _Ask, request: Request) -> dict[str, Any]:
    """The middleware decision for a decided request, within the decisions its review allows."""
    decision = request.decision
    if ask.kind == "question":
        if request.status == "answered" and decision is not None and decision.answer is not None:
            return {"type": "respond", "message": decision.answer}
        return _refusal(ask, request, _unanswered_message(request))
    if request.status != "approved" or decision is None:
        return _refusal(ask, request, not_approved_message(request))
    if decision.edited and "edit" not in ask.allowed:
        who = decision.by.approver_id if decision.by.kind == "human" else "Signoff"
        return _refusal(
            ask,
            request,
            f"Not run: {who} approved `{ask.tool}` only with changed arguments "
            f"{json.dumps(decision.args, sort_keys=True)}, and this tool's review allows no edits",
        )
    if decision.edited or "approve" not in ask.allowed:
        if "edit" in ask.allowed:
            return {"type": "edit", "edited_action": {"name": ask.tool, "args": decision.args}}
        raise DecisionNotAllowed(f"`{ask.tool}` was approved, but its review allows no approval", request)
    return {"type": "approve"}


def _refusal(ask: _Ask, request: Request, message: str) -> dict[str, Any]:
    if "reject" in ask.allowed:
        return {"type": "reject", "message": message}
    if "respond" in ask.allowed:
        return {"type": "respond", "message": message}
    raise DecisionNotAllowed(f"{message}; but the review of `{ask.tool}` allows neither reject nor respond", request)


def _awaits_outcome(ask: _Ask, request: Request) -> bool:
    """Whether the tool will run on this request's decision, so its result is the request's outcome."""
    return (
        ask.kind == "approval"
        and ask.tool_call_id is not None
        and request.status == "approved"
        and (not (request.decision is not None and request.decision.edited) or "edit" in ask.allowed)
    )


@dataclass
class _Round:
    """One pause of the graph: its plans, their requests, and what resumes it."""

    plans: list[_Plan]
    requests: list[list[Request]]

    def pending(self) -> Request | None:
        return next((r for rs in self.requests for r in rs if r.pending), None)

    def command(self) -> Command[Any]:
        return Command(
            resume={p.interrupt.id: p.resume_value(rs) for p, rs in zip(self.plans, self.requests, strict=True)}
        )

    def awaiting_outcomes(self) -> dict[str, Request]:
        return {
            cast(str, ask.tool_call_id): request
            for plan, requests in zip(self.plans, self.requests, strict=True)
            for ask, request in zip(plan.asks, requests, strict=True)
            if _awaits_outcome(ask, request)
        }


def _call_ids(ask: _Ask) -> Iterator[str]:
    """The call ids to try in turn: a call id taken by another call (it ran, or its body differs) moves to `#2`..."""
    yield ask.call_id
    attempt = 2
    while True:
        yield f"{ask.call_id}#{attempt}"
        attempt += 1


def _create(client: Signoff, ask: _Ask, run_id: str) -> Request:
    for call_id in _call_ids(ask):
        try:
            if ask.kind == "question":
                request = client.ask(**ask.fields, run_id=run_id, call_id=call_id)
            else:
                request = client.create(**ask.fields, run_id=run_id, call_id=call_id)
        except IdempotencyConflict:
            continue
        if request.outcome is None:
            return request
    raise AssertionError("unreachable")  # pragma: no cover


async def _acreate(client: AsyncSignoff, ask: _Ask, run_id: str) -> Request:
    for call_id in _call_ids(ask):
        try:
            if ask.kind == "question":
                request = await client.ask(**ask.fields, run_id=run_id, call_id=call_id)
            else:
                request = await client.create(**ask.fields, run_id=run_id, call_id=call_id)
        except IdempotencyConflict:
            continue
        if request.outcome is None:
            return request
    raise AssertionError("unreachable")  # pragma: no cover


def _round(
    client: Signoff, interrupts: Sequence[Interrupt[Any]], thread_id: str, state: Any, wait: bool, timeout: float | None
) -> _Round:
    plans = _plans(interrupts, thread_id, state)
    requests = [[_create(client, ask, thread_id) for ask in plan.asks] for plan in plans]
    if wait:
        deadline = None if timeout is None else time.monotonic() + timeout
        for group in requests:
            for index, request in enumerate(group):
                if request.pending:
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    group[index] = client.wait(request.id, left)
    return _Round(plans, requests)


async def _around(
    client: AsyncSignoff,
    interrupts: Sequence[Interrupt[Any]],
    thread_id: str,
    state: Any,
    wait: bool,
    timeout: float | None,
) -> _Round:
    plans = _plans(interrupts, thread_id, state)
    requests = [[await _acreate(client, ask, thread_id) for ask in plan.asks] for plan in plans]
    if wait:

        async def decided(request: Request) -> Request:
            return await client.wait(request.id, timeout) if request.pending else request

        requests = [list(await asyncio.gather(*(decided(r) for r in group))) for group in requests]
    return _Round(plans, requests)


def decisions_for(
    client: Signoff,
    interrupts: Sequence[Interrupt[Any]],
    *,
    thread_id: str,
    state: Mapping[str, Any] | None = None,
    wait: bool = True,
    timeout: float | None = None,
) -> Command[Any] | None:
    """The `Command` that resumes a graph paused at `interrupts`, with the decisions people made in Signoff.

    Creates (or, asked again, finds) one Signoff request per reviewed tool call or `ask_signoff`/`request_signoff`
    interrupt, in the run `thread_id`. `state` is the graph's state values (the `invoke` result, or
    `graph.get_state(config).values`): its last AI message gives the reviewed tool calls' ids, the requests' keys;
    without it they are keyed by interrupt id and position. With `wait`, waits for every decision, at most `timeout`
    seconds; returns None while any request is still pending (so without `wait`, unless all were decided already).
    Raises `ValueError` for an interrupt that is not one of those, and `DecisionNotAllowed` (see the module).
    """
    decided = _round(client, interrupts, thread_id, state, wait, timeout)
    return None if decided.pending() is not None else decided.command()


async def adecisions_for(
    client: AsyncSignoff,
    interrupts: Sequence[Interrupt[Any]],
    *,
    thread_id: str,
    state: Mapping[str, Any] | None = None,
    wait: bool = True,
    timeout: float | None = None,
) -> Command[Any] | None:
    """`decisions_for` with an `AsyncSignoff` client; waits for all the requests at once."""
    decided = await _around(client, interrupts, thread_id, state, wait, timeout)
    return None if decided.pending() is not None else decided.command()


# --- running a graph --------------------------------------------------------------------------------------------------


def _interrupts(result: Any) -> list[Interrupt[Any]]:
    found = result.get(_INTERRUPT_KEY) if isinstance(result, Mapping) else None
    return list(found or [])


def _paused(values: Any, interrupts: Sequence[Interrupt[Any]]) -> Any:
    """A thread's saved state, as `invoke` would have returned it when it paused."""
    return {**values, _INTERRUPT_KEY: list(interrupts)} if isinstance(values, Mapping) else {_INTERRUPT_KEY: interrupts}


def _timed_out(request: Request, timeout: float | None) -> ApprovalTimeout:
    return ApprovalTimeout(
        f"no decision on request {request.id} within {timeout} s; it is still pending: run the thread again with "
        "input None to keep waiting",
        request,
    )


def _outcomes(result: Any, awaiting: dict[str, Request]) -> list[tuple[Request, bool, dict[str, str]]]:
    """The outcomes to report: the results of the approved tool calls whose `ToolMessage` is now in the state."""
    messages = result.get("messages") if isinstance(result, Mapping) else None
    found = []
    for message in messages or []:
        if isinstance(message, ToolMessage) and message.tool_call_id in awaiting:
            request = awaiting.pop(message.tool_call_id)
            text = message.text
            if message.status == "error":
                found.append((request, False, {"error": "tool_error", "message": text[:_MAX_ERROR_CHARS]}))
            else:
                found.append((request, True, {"result": text[:_MAX_RESULT_CHARS]}))
    return found


def _warn_unreported(request: Request, exc: Exception) -> None:
    warnings.warn(f"signoff: could not report the outcome of request {request.id}: {exc}", stacklevel=3)


def run_with_approvals(
    graph: AnyGraph,
    input: Any,
    *,
    config: RunnableConfig,
    client: Signoff,
    timeout: float | None = None,
    **invoke_kwargs: Any,
) -> Any:
    """Run `graph` on `input` to its end, answering each interrupt through Signoff, and return the final state.

    Invokes the graph; while it pauses at interrupts (`__interrupt__` in its result), gets their decisions with
    `decisions_for` (waiting at most `timeout` seconds each time) and resumes it with the `Command`. The graph needs
    a checkpointer, and `config` a `thread_id`: it is the Signoff run, and the tool call ids key the requests.
    Input `None` continues the thread as saved: a thread paused by an earlier process (that died while waiting, or
    timed out) picks up the same Signoff requests, already decided or not. A `Command` is sent as it is.

    Once an approved tool has run, its `ToolMessage` is reported as the request's outcome (`ok` unless the message's
    status is `error`). Raises `signoff.ApprovalTimeout` when `timeout` passes with a request still pending (the
    thread stays paused: run it again with `None`), and what `decisions_for` raises. `invoke_kwargs` (e.g. `context`)
    go to every `graph.invoke`.
    """
    thread_id = _thread_id(config)
    result: Any
    if input is None and (snapshot := graph.get_state(config)).interrupts:
        result = _paused(snapshot.values, snapshot.interrupts)
    else:
        result = graph.invoke(input, config, **invoke_kwargs)
    awaiting: dict[str, Request] = {}
    while True:
        for request, ok, detail in _outcomes(result, awaiting):
            try:
                client.report_outcome(request.id, ok, detail)
            except Exception as exc:  # the tool ran: the run matters more than the report
                _warn_unreported(request, exc)
        interrupts = _interrupts(result)
        if not interrupts:
            return result
        decided = _round(client, interrupts, thread_id, result, True, timeout)
        if (pending := decided.pending()) is not None:
            raise _timed_out(pending, timeout)
        awaiting.update(decided.awaiting_outcomes())
        result = graph.invoke(decided.command(), config, **invoke_kwargs)


async def arun_with_approvals(
    graph: AnyGraph,
    input: Any,
    *,
    config: RunnableConfig,
    client: AsyncSignoff,
    timeout: float | None = None,
    **invoke_kwargs: Any,
) -> Any:
    """`run_with_approvals` with `graph.ainvoke` and an `AsyncSignoff` client."""
    thread_id = _thread_id(config)
    result: Any
    if input is None and (snapshot := await graph.aget_state(config)).interrupts:
        result = _paused(snapshot.values, snapshot.interrupts)
    else:
        result = await graph.ainvoke(input, config, **invoke_kwargs)
    awaiting: dict[str, Request] = {}
    while True:
        for request, ok, detail in _outcomes(result, awaiting):
            try:
                await client.report_outcome(request.id, ok, detail)
            except Exception as exc:
                _warn_unreported(request, exc)
        interrupts = _interrupts(result)
        if not interrupts:
            return result
        decided = await _around(client, interrupts, thread_id, result, True, timeout)
        if (pending := decided.pending()) is not None:
            raise _timed_out(pending, timeout)
        awaiting.update(decided.awaiting_outcomes())
        result = await graph.ainvoke(decided.command(), config, **invoke_kwargs)
