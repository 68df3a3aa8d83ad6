"""Scripted chat models for the LangGraph tests, and the agent process the crash test kills.

`python -m langgraph_support DB THREAD` runs the example's agent (`examples/langgraph_agent.py`) with the refund
script on the thread `THREAD`, its checkpoints in the SQLite file `DB`, through the Signoff of `SIGNOFF_URL` and
`SIGNOFF_KEY`, and prints the last message.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "langgraph_agent.py"


def load_example() -> ModuleType:
    """The example module, imported from its file (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("langgraph_agent_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers the n-th model call of a conversation with `script[n]`.

    n counts the AI messages already in the conversation, so the answer depends only on the conversation: a process
    that resumes a thread another process started gets the same next message.
    """

    script: list[AIMessage]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turn = sum(isinstance(m, AIMessage) for m in messages)
        return ChatResult(generations=[ChatGeneration(message=self.script[turn])])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self


def tool_calls(*calls: tuple[str, dict[str, Any], str]) -> AIMessage:
    """An AI message that calls tools: (name, args, tool call id) each."""
    return AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in calls])


def refund_script(amount: int = 120, call_id: str = "call_refund_1") -> ScriptedChatModel:
    """Look order 1042 up, refund it, then say done."""
    return ScriptedChatModel(
        script=[
            tool_calls(("lookup_order", {"order": "1042"}, "call_lookup_1")),
            tool_calls(("refund", {"customer": "c_42", "amount": amount}, call_id)),
            AIMessage(content="All done."),
        ]
    )


def readme_script() -> ScriptedChatModel:
    """The README's agent: refund 120 to c_42, then say so."""
    return ScriptedChatModel(
        script=[tool_calls(("refund", {"customer": "c_42", "amount": 120}, "call_readme")), AIMessage("Refunded.")]
    )


if __name__ == "__main__":
    from langgraph.checkpoint.sqlite import SqliteSaver

    from signoff import Signoff
    from signoff.integrations.langgraph import run_with_approvals

    database, thread_id = sys.argv[1], sys.argv[2]
    with Signoff() as client, SqliteSaver.from_conn_string(database) as checkpointer:
        agent = load_example().build_agent(refund_script(), checkpointer)
        config: Any = {"configurable": {"thread_id": thread_id}}
        start = {"messages": [{"role": "user", "content": "Order 1042 arrived broken."}]}
        result = run_with_approvals(agent, start, config=config, client=client)
        print(result["messages"][-1].text, flush=True)
