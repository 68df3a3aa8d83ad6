"""A refund agent on the OpenAI Agents SDK whose refunds go through Signoff.

    pip install './sdks/python[openai-agents]'
    SIGNOFF_URL=http://127.0.0.1:8700 SIGNOFF_KEY=so_agent_... OPENAI_API_KEY=sk-... \
        python examples/openai_agents_refund.py "Order A-1042 arrived broken; please refund the $120."

`refund` is gated: each call becomes a Signoff request (action `refund`, the call's arguments, a one-line summary).
A policy rule may approve small refunds at once; the others wait here for a person, who may lower the amount. The
agent then refunds what was approved, or tells the customer why not.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from agents import Agent, Model

from signoff import AsyncSignoff
from signoff.integrations.openai_agents import Paused, run_with_approvals, signoff_tool

ISSUED: list[dict[str, object]] = []
"""Refunds this process issued; a real agent calls its payment provider in `refund` instead."""


@signoff_tool(summary="Refund ${amount} on order {order_id}")
async def refund(order_id: str, amount: float) -> str:
    """Refund a customer's order.

    Args:
        order_id: The order to refund, like A-1042.
        amount: The amount to refund, in dollars.
    """
    ISSUED.append({"order_id": order_id, "amount": amount})
    return f"Refunded ${amount:g} on order {order_id}"


def build_agent(model: str | Model) -> Agent[None]:
    """The refund agent, on `model` (a model name, or any `agents.Model`)."""
    return Agent(
        name="refunds",
        instructions=(
            "You handle refund requests for a web shop. Use the refund tool for the amount the customer asks for. "
            "Then tell the customer, in one sentence, exactly what was refunded, or why it was not."
        ),
        tools=[refund],
        model=model,
    )


async def main() -> None:
    message = " ".join(sys.argv[1:]) or "Order A-1042 arrived broken; please refund the $120."
    async with AsyncSignoff() as client:  # SIGNOFF_URL and SIGNOFF_KEY (an agent key)
        result = await run_with_approvals(
            build_agent("gpt-4.1-mini"), message, client=client, run_id=f"refund-{uuid.uuid4()}", timeout=900
        )
    if isinstance(result, Paused):  # nobody decided within 15 minutes: resume(agent, request_id, ...) later
        print("still waiting for", ", ".join(result.request_ids))
    else:
        print(result.final_output)


if __name__ == "__main__":
    asyncio.run(main())
