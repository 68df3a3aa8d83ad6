"""A scripted model for the OpenAI Agents SDK, and the example's refund agent as a process of its own.

    python openai_agents_process.py start RUN_ID CALLBACK_URL ORDER_ID AMOUNT  # prints {"paused": [request ids]}
    python openai_agents_process.py resume < callback.json                     # prints {"final_output", "issued"}

`start` runs the agent until it stops at the gated refund, then exits; `resume` continues it from a verified callback
message. Both use SIGNOFF_URL and SIGNOFF_KEY. No network but Signoff: the model is `ScriptedModel`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    TResponseInputItem,
    Usage,
    set_tracing_disabled,
)
from agents.items import TResponseOutputItem, TResponseStreamEvent
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from signoff import AsyncSignoff
from signoff.integrations.openai_agents import Paused, resume_from_callback, run_with_approvals

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import openai_agents_refund as example  # noqa: E402

set_tracing_disabled(True)

Step = Sequence[TResponseOutputItem] | Callable[[list[Any]], Sequence[TResponseOutputItem]]


def call(name: str, call_id: str, **arguments: Any) -> ResponseFunctionToolCall:
    """A function call output item, as a model emits it."""
    return ResponseFunctionToolCall(
        type="function_call", id=f"fc_{call_id}", call_id=call_id, name=name, arguments=json.dumps(arguments)
    )


def say(text: str) -> ResponseOutputMessage:
    """An assistant message output item."""
    return ResponseOutputMessage(
        id="msg_1",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def tool_outputs(items: list[Any]) -> list[str]:
    """The outputs of the tool calls the model is shown, oldest first."""
    return [
        str(item["output"]) for item in items if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]


def report_tool_outputs(items: list[Any]) -> list[TResponseOutputItem]:
    """A final answer that repeats what the tools said (so a test reads what the model was shown)."""
    return [say("Done: " + " | ".join(tool_outputs(items)))]


class ScriptedModel(Model):
    """A `Model` that answers each call with the next step of its script, and keeps the inputs it was given."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        self.inputs: list[list[Any]] = []

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else [dict(i) for i in input]
        self.inputs.append(items)
        if not self.steps:
            raise AssertionError("the scripted model was called more often than scripted")
        step = self.steps.pop(0)
        output = step(items) if callable(step) else step
        return ModelResponse(output=list(output), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the scripted model does not stream")


async def start(run_id: str, callback_url: str, order_id: str, amount: int) -> None:
    model = ScriptedModel([[call("refund", "call_refund_1", order_id=order_id, amount=amount)]])
    async with AsyncSignoff() as client:
        result = await run_with_approvals(
            example.build_agent(model),
            f"Please refund ${amount} on order {order_id}.",
            client=client,
            run_id=run_id,
            callback_url=callback_url,
            wait=False,
        )
    assert isinstance(result, Paused), result
    print(json.dumps({"paused": result.request_ids}))


async def resume(message: dict[str, Any]) -> None:
    model = ScriptedModel([report_tool_outputs])
    async with AsyncSignoff() as client:
        result = await resume_from_callback(example.build_agent(model), message, client=client)
    assert result is not None and not isinstance(result, Paused), result
    print(json.dumps({"final_output": result.final_output, "issued": example.ISSUED}))


if __name__ == "__main__":
    if sys.argv[1] == "start":
        asyncio.run(start(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
    else:
        asyncio.run(resume(json.loads(sys.stdin.read())))
