"""A LangChain agent whose refunds a person approves, edits or rejects in Signoff, and that resumes after a crash.

`build_agent(model, checkpointer)` is the agent: `create_agent` with a refund tool held for review by
`HumanInTheLoopMiddleware`, and an `ask_manager` tool that asks a person through Signoff (`ask_signoff`).
`main()` runs it with an OpenAI model (`pip install langchain-openai`, OPENAI_API_KEY) against a local
`signoff serve` (SIGNOFF_URL, SIGNOFF_KEY: an agent key), keeping its threads in `agent-threads.db`:

    python examples/langgraph_agent.py ticket-7781 "Refund order 1042: it arrived broken"
    python examples/langgraph_agent.py ticket-7781     # after a crash or a timeout: continues the same thread

Decide in the dashboard, Slack or email, or with the API (`signoff` CLI, `Signoff.approve`, ...).
"""

from __future__ import annotations

import sys
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from signoff import Signoff
from signoff.integrations.langgraph import ask_signoff, run_with_approvals

ORDERS = {"1042": {"customer": "c_42", "total": 120}}


@tool
def lookup_order(order: str) -> str:
    """Look up an order by its number: its customer and total."""
    found = ORDERS.get(order)
    return f"order {order}: customer {found['customer']}, total {found['total']}" if found else f"no order {order}"


@tool
def refund(customer: str, amount: int) -> str:
    """Refund `amount` to `customer`. A person approves every refund first."""
    return f"refunded {amount} to {customer}"


@tool
def ask_manager(question: str) -> str:
    """Ask the support manager a question and wait for the answer (a policy detail, a judgement call)."""
    return ask_signoff(question, action="ask_manager")


def describe_refund(tool_call: Any, state: Any, runtime: Any) -> str:
    """The review's description: its first line is the Signoff request's summary."""
    args = tool_call["args"]
    return f"Refund {args['amount']} to {args['customer']}"


def build_agent(model: BaseChatModel, checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The support agent: refunds wait for a person's decision in Signoff; the checkpointer keeps paused threads."""
    return create_agent(
        model,
        tools=[lookup_order, refund, ask_manager],
        system_prompt="You are a support agent. Look orders up before refunding; ask the manager when unsure.",
        middleware=[
            HumanInTheLoopMiddleware(
                interrupt_on={
                    "refund": {"allowed_decisions": ["approve", "edit", "reject"], "description": describe_refund}
                }
            )
        ],
        checkpointer=checkpointer,
    )


def main() -> None:
    from langchain_openai import ChatOpenAI  # only this example's main needs it
    from langgraph.checkpoint.sqlite import SqliteSaver

    thread_id = sys.argv[1] if len(sys.argv) > 1 else "ticket-7781"
    ask = sys.argv[2] if len(sys.argv) > 2 else "Order 1042 arrived broken. Please refund it."
    config: Any = {"configurable": {"thread_id": thread_id}}
    with Signoff() as client, SqliteSaver.from_conn_string("agent-threads.db") as checkpointer:
        agent = build_agent(ChatOpenAI(model="gpt-4o-mini"), checkpointer)
        # A thread that already ran (or paused) continues as saved; a new one starts with the customer's message.
        started = bool(agent.get_state(config).values)
        start = None if started else {"messages": [{"role": "user", "content": ask}]}
        result = run_with_approvals(agent, start, config=config, client=client)
        print(result["messages"][-1].text)


if __name__ == "__main__":
    main()
