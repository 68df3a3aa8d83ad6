"""Questions for a person (human-as-tool): `ask_human` asks through Signoff and returns the answer's text;
`human_as_tool` wraps it as a plain function a model can call as a tool.

A question is keyed like a gated call: by the run (`run_id`, else the one set by `signoff.run(...)`, else this
process's own) and a `call_id` derived from the question and its options. So an agent that crashes while waiting and
asks again in the same run gets the same request, and its answer once given, instead of asking twice. To ask the same
question again in one run, pass a `call_id` of your own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from typing import overload

from .approval import current_run_id
from .client import AsyncSignoff, Signoff
from .errors import ApprovalTimeout, Unanswered
from .models import JSON, Request

__all__ = ["ask_human", "ask_human_async", "human_as_tool", "question_call_id", "answer_text"]

TOOL_DESCRIPTION = (
    "Ask a person a question and wait for their answer. Use it when you need a fact, a preference or a judgement "
    "that only a person can give. Ask one clear, self-contained question at a time."
)


def question_call_id(question: str, options: list[str] | None) -> str:
    """The `call_id` `ask_human` gives a question: the same for the same question and options."""
    digest = hashlib.sha256(json.dumps([question, options or []], ensure_ascii=False).encode()).hexdigest()
    return f"ask_human:{digest[:32]}"


def answer_text(request: Request) -> str:
    """The answer of a question that has one; else `Unanswered` (expired, cancelled) or `ApprovalTimeout` (pending)."""
    if request.status == "answered" and request.answer is not None:
        return request.answer
    if request.pending:
        raise ApprovalTimeout(f"no answer yet to question {request.id}: ask again to keep waiting", request)
    decision = request.decision
    if request.status == "cancelled":
        why = decision.reason or decision.comment if decision is not None else None
        raise Unanswered(f"No answer: the question was cancelled{f' ({why})' if why else ''}", request)
    if request.status == "expired":
        raise Unanswered("No answer: nobody answered the question before its deadline", request)
    raise Unanswered(f"No answer: the request is {request.status}", request)


def ask_human(
    question: str,
    options: list[str] | None = None,
    *,
    timeout: float | None = None,
    client: Signoff | None = None,
    action: str = "ask_human",
    run_id: str | None = None,
    call_id: str | None = None,
    context: dict[str, JSON] | None = None,
) -> str:
    """Ask a person `question` (answers limited to `options`, if given) and return the answer's text.

    `action` is what policy sees (rules may route questions by it). Waits at most `timeout` seconds (else until the
    question's deadline): `ApprovalTimeout` if still unanswered then.
    `Unanswered` if it expired or was cancelled. Without `client`, one is made from `SIGNOFF_URL` and `SIGNOFF_KEY`.
    """
    with ExitStack() as stack:
        api = client if client is not None else stack.enter_context(Signoff())
        request = api.ask(
            question,
            options,
            action=action,
            run_id=run_id or current_run_id(),
            call_id=call_id or question_call_id(question, options),
            context=context,
        )
        if request.pending:
            request = api.wait(request.id, timeout)
        return answer_text(request)


async def ask_human_async(
    question: str,
    options: list[str] | None = None,
    *,
    timeout: float | None = None,
    client: AsyncSignoff | None = None,
    action: str = "ask_human",
    run_id: str | None = None,
    call_id: str | None = None,
    context: dict[str, JSON] | None = None,
) -> str:
    """`ask_human` for async code."""
    async with AsyncExitStack() as stack:
        api = client if client is not None else await stack.enter_async_context(AsyncSignoff())
        request = await api.ask(
            question,
            options,
            action=action,
            run_id=run_id or current_run_id(),
            call_id=call_id or question_call_id(question, options),
            context=context,
        )
        if request.pending:
            request = await api.wait(request.id, timeout)
        return answer_text(request)


@overload
def human_as_tool(client: AsyncSignoff, *, timeout: float | None = None) -> Callable[[str], Awaitable[str]]: ...
@overload
def human_as_tool(client: Signoff | None = None, *, timeout: float | None = None) -> Callable[[str], str]: ...
def human_as_tool(
    client: Signoff | AsyncSignoff | None = None, *, timeout: float | None = None
) -> Callable[[str], str] | Callable[[str], Awaitable[str]]:
    """A tool for a model: `ask_human(question: str) -> str`, with a docstring that tells the model when to use it.

    It returns the person's answer; when there is none (expired, cancelled, or still pending after `timeout`), it
    returns a sentence saying so, for the model to read, instead of raising. With an `AsyncSignoff`, the tool is an
    async function.
    """
    if isinstance(client, AsyncSignoff):
        async_client = client

        async def ask_human_tool(question: str) -> str:
            try:
                return await ask_human_async(question, timeout=timeout, client=async_client)
            except (Unanswered, ApprovalTimeout) as missing:
                return str(missing)

        ask_human_tool.__name__ = ask_human_tool.__qualname__ = "ask_human"
        ask_human_tool.__doc__ = TOOL_DESCRIPTION
        return ask_human_tool

    sync_client = client

    def ask_human_sync_tool(question: str) -> str:
        try:
            return ask_human(question, timeout=timeout, client=sync_client)
        except (Unanswered, ApprovalTimeout) as missing:
            return str(missing)

    ask_human_sync_tool.__name__ = ask_human_sync_tool.__qualname__ = "ask_human"
    ask_human_sync_tool.__doc__ = TOOL_DESCRIPTION
    return ask_human_sync_tool
