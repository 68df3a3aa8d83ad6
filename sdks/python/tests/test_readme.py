"""Every ```python block of the SDK's README runs, as its own process, against the real server, and prints what the
README says it does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from signoff import Signoff

from conftest import Key, Server, decide_when_pending

README = Path(__file__).parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL)


def run_block(code: str, server: Server, agent_key: Key) -> str:
    env = {**os.environ, "SIGNOFF_URL": server.url, "SIGNOFF_KEY": agent_key.key}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def lower_the_amount(approver: Signoff, request) -> None:
    approver.approve(request.id, comment="not the shipping", args={**request.args, "amount": 100})


def test_the_readme_examples_run(server: Server, agent_key: Key, dana: Signoff) -> None:
    decorator, question, client, errors = python_blocks()[:4]

    approver = decide_when_pending(dana, "refund", lower_the_amount)
    assert run_block(decorator, server, agent_key) == "Refunded 100 to c_42\n"
    approver.join()

    approver = decide_when_pending(dana, "refund", lower_the_amount)
    assert run_block(client, server, agent_key) == "executing {'amount': 100, 'order': '1042'}\n"
    approver.join()

    assert run_block(errors, server, agent_key) == "not_found 404 request not found\n"

    answerer = decide_when_pending(dana, "ask_human", lambda approver, request: approver.answer(request.id, "eu"))
    assert run_block(question, server, agent_key) == "replica in eu\n"
    answerer.join()

    with Signoff(server.url, agent_key.key) as agent:
        requests = agent.list(action="refund").items
    assert len(requests) == 2 and all(r.outcome is not None and r.outcome.ok for r in requests)
