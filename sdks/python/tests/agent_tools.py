"""Gated tools shared by the decorator tests and the agent process they crash (`python -m agent_tools RUN_ID`)."""

from __future__ import annotations

import sys

import signoff

calls: list[dict[str, object]] = []
"""Every time a tool body really ran, with the arguments it ran with."""


@signoff.require_approval(action="refund", summary="Refund {amount} to {customer}")
def refund(customer: str, amount: int) -> str:
    calls.append({"customer": customer, "amount": amount})
    return f"refunded {amount} to {customer}"


if __name__ == "__main__":
    with signoff.run(sys.argv[1]):
        print(refund("c_42", 120), flush=True)
