"""The OpenAI Agents SDK adapter against the real server and the real `agents` package, with a scripted model.

The refund agent is the example's (`examples/openai_agents_refund.py`); `openai_agents_process.py` runs it as a
process of its own, to show a run that exits while it waits and is resumed by another process from the callback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Runner, RunResult, function_tool
from agents.exceptions import UserError
from openai_agents_process import ScriptedModel, call, example, report_tool_outputs, tool_outputs

from signoff import AsyncSignoff, Signoff
from signoff.integrations.openai_agents import (
    STATE_KEY,
    Paused,
    RunStateTooLarge,
    gate,
    resume,
    resume_from_callback,
    run_with_approvals,
    signoff_tool,
)

from conftest import POLICY, Key, Receiver, Server, decide_when_pending

PROCESS = Path(__file__).parent / "openai_agents_process.py"

SMALL_REFUNDS = """\
  - name: small-refunds
    when: action == "refund" && args.amount <= 50
    decide: approve
"""


@pytest.fixture(autouse=True)
def no_refunds_yet() -> None:
    example.ISSUED.clear()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def callbacks_server(start_server: Callable[..., Server]) -> Server:
    """A server that posts callbacks to local addresses and approves refunds up to $50 at once."""
    return start_server(POLICY + SMALL_REFUNDS, SIGNOFF_ALLOW_PRIVATE_CALLBACKS="true")


@pytest.fixture
def bot(callbacks_server: Server) -> Key:
    return callbacks_server.key("agent", "refund-bot")


@pytest.fixture
async def client(callbacks_server: Server, bot: Key) -> AsyncIterator[AsyncSignoff]:
    async with AsyncSignoff(callbacks_server.url, bot.key) as client:
        yield client


@pytest.fixture
def approver(callbacks_server: Server) -> Iterator[Signoff]:
    key = callbacks_server.key("approver", "dana-laptop", "--approver", "dana")
    with Signoff(callbacks_server.url, key.key) as approver:
        yield approver


def finishing_agent() -> Any:
    """The example's agent on a model whose one answer repeats what the tools said."""
    return example.build_agent(ScriptedModel([report_tool_outputs]))


def test_a_run_exits_while_it_waits_and_a_new_process_resumes_it_from_the_callback(
    callbacks_server: Server, bot: Key, approver: Signoff, receiver: Receiver
) -> None:
    env = {
        **os.environ,
        "SIGNOFF_URL": callbacks_server.url,
        "SIGNOFF_KEY": bot.key,
        "OPENAI_API_KEY": "sk-test-never-used",
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }
    started = subprocess.run(
        [sys.executable, str(PROCESS), "start", "ticket-7781", receiver.url, "A-1042", "120"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    (request_id,) = json.loads(started.stdout)["paused"]

    request = approver.get(request_id)
    assert request.status == "pending"
    assert (request.action, request.args) == ("refund", {"order_id": "A-1042", "amount": 120})
    assert request.summary == "Refund $120 on order A-1042"
    assert (request.run_id, request.call_id) == ("ticket-7781", "call_refund_1")
    assert request.state is not None and list(request.state) == [STATE_KEY]
    approver.approve(request_id, comment="not the shipping", args={"order_id": "A-1042", "amount": 100})

    assert bot.webhook_secret is not None
    message = receiver.message(bot.webhook_secret)
    assert message["type"] == "request.decided" and message["data"]["id"] == request_id
    assert message["data"]["decision"]["args"] == {"order_id": "A-1042", "amount": 100}
    resumed = subprocess.run(
        [sys.executable, str(PROCESS), "resume"],
        input=json.dumps(message),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {
        "final_output": "Done: Refunded $100 on order A-1042",
        "issued": [{"order_id": "A-1042", "amount": 100.0}],
    }
    with Signoff(callbacks_server.url, bot.key) as agent:
        (done,) = agent.list(run_id="ticket-7781").items
    assert done.id == request_id and done.outcome is not None and done.outcome.ok
    assert done.outcome.detail == {"result": "Refunded $100 on order A-1042"}


async def test_a_rejected_call_does_not_run_and_the_model_reads_who_rejected_it_and_why(
    client: AsyncSignoff, approver: Signoff
) -> None:
    model = ScriptedModel([[call("refund", "call_r1", order_id="A-1042", amount=120)], report_tool_outputs])
    decider = decide_when_pending(approver, "refund", lambda a, r: a.reject(r.id, "outside the refund window"))
    result = await run_with_approvals(
        example.build_agent(model), "Refund A-1042, $120", client=client, run_id="ticket-1"
    )
    decider.join()
    assert example.ISSUED == []
    assert tool_outputs(model.inputs[-1]) == ["Rejected by dana: outside the refund window"]
    assert isinstance(result, RunResult) and result.final_output == "Done: Rejected by dana: outside the refund window"
    (request,) = (await client.list(run_id="ticket-1")).items
    assert request.status == "rejected" and request.outcome is None


async def test_a_call_policy_approves_never_pauses_the_run(client: AsyncSignoff, bot: Key, receiver: Receiver) -> None:
    model = ScriptedModel([[call("refund", "call_s1", order_id="A-7", amount=30)], report_tool_outputs])
    result = await run_with_approvals(
        example.build_agent(model),
        "Refund A-7, $30",
        client=client,
        run_id="ticket-2",
        callback_url=receiver.url,
        wait=False,
    )
    assert isinstance(result, RunResult) and result.interruptions == []
    assert result.final_output == "Done: Refunded $30 on order A-7"
    assert example.ISSUED == [{"order_id": "A-7", "amount": 30.0}] and len(model.inputs) == 2
    (request,) = (await client.list(run_id="ticket-2")).items
    assert request.status == "approved" and request.decision is not None
    assert request.decision.by.kind == "policy" and request.decision.by.rule == "small-refunds"
    assert request.outcome is not None and request.outcome.ok

    # Its callback comes too; the run it names was continued by the process that asked, so nothing resumes it.
    assert bot.webhook_secret is not None
    message = receiver.message(bot.webhook_secret)
    assert message["data"]["id"] == request.id
    assert await resume_from_callback(finishing_agent(), message, client=client) is None
    assert example.ISSUED == [{"order_id": "A-7", "amount": 30.0}]


async def test_a_tool_that_fails_reports_the_failure_and_the_model_reads_the_sdk_error_message(
    client: AsyncSignoff,
) -> None:
    @signoff_tool(action="refund")
    def flaky_refund(order_id: str, amount: int) -> str:
        """Refund an order through a payment provider that is down."""
        raise RuntimeError("payment provider down")

    model = ScriptedModel([[call("flaky_refund", "call_f1", order_id="A-8", amount=20)], report_tool_outputs])
    agent = example.build_agent(model)
    agent.tools = [flaky_refund]
    result = await run_with_approvals(agent, "Refund A-8, $20", client=client, run_id="t-8")
    assert isinstance(result, RunResult)
    assert result.final_output == "Done: An error occurred while running the tool. Please try again."
    (request,) = (await client.list(run_id="t-8")).items
    assert request.status == "approved" and request.outcome is not None and not request.outcome.ok
    assert request.outcome.detail == {"error": "RuntimeError", "message": "payment provider down"}


async def test_asking_and_resuming_again_for_a_call_reuses_its_request_and_runs_it_once(
    client: AsyncSignoff, approver: Signoff
) -> None:
    def refund_a9() -> Any:
        return example.build_agent(ScriptedModel([[call("refund", "call_i1", order_id="A-9", amount=80)]]))

    first = await run_with_approvals(refund_a9(), "Refund A-9, $80", client=client, run_id="t-3", wait=False)
    # Another process makes the same call of the same run (its state differs: the input was worded otherwise).
    again = await run_with_approvals(refund_a9(), "Refund A-9: $80", client=client, run_id="t-3", timeout=1)
    assert isinstance(first, Paused) and isinstance(again, Paused)
    assert first.request_ids == again.request_ids and len(first.pending) == 1
    assert len((await client.list(run_id="t-3")).items) == 1

    approver.approve(first.request_ids[0])
    once = await resume(finishing_agent(), first.request_ids[0], client=client)
    twice = await resume(finishing_agent(), first.requests[0], client=client)
    assert isinstance(once, RunResult) and isinstance(twice, RunResult)
    assert once.final_output == twice.final_output == "Done: Refunded $80 on order A-9"
    assert example.ISSUED == [{"order_id": "A-9", "amount": 80.0}]
    (request,) = (await client.list(run_id="t-3")).items
    assert request.outcome is not None and request.outcome.detail == {"result": "Refunded $80 on order A-9"}


async def test_a_run_with_several_stopped_calls_resumes_once_all_are_decided_from_the_last_callback(
    client: AsyncSignoff, bot: Key, approver: Signoff, receiver: Receiver
) -> None:
    model = ScriptedModel(
        [[call("refund", "call_m1", order_id="A-1", amount=70), call("refund", "call_m2", order_id="A-2", amount=90)]]
    )
    paused = await run_with_approvals(
        example.build_agent(model),
        "Refund A-1 and A-2",
        client=client,
        run_id="t-4",
        callback_url=receiver.url,
        wait=False,
    )
    assert isinstance(paused, Paused) and len(paused.pending) == 2
    assert bot.webhook_secret is not None
    approved_id, rejected_id = paused.request_ids

    approver.approve(approved_id)
    approved = receiver.message(bot.webhook_secret)
    assert approved["data"]["id"] == approved_id
    assert await resume_from_callback(finishing_agent(), approved, client=client) is None  # A-2 is still pending

    approver.reject(rejected_id, "duplicate of A-1")
    rejected = receiver.message(bot.webhook_secret)
    assert await resume_from_callback(finishing_agent(), approved, client=client) is None  # not the last decided
    assert example.ISSUED == []
    result = await resume_from_callback(finishing_agent(), rejected, client=client)
    assert isinstance(result, RunResult)
    assert result.final_output == "Done: Refunded $70 on order A-1 | Rejected by dana: duplicate of A-1"
    assert example.ISSUED == [{"order_id": "A-1", "amount": 70.0}]


async def test_a_deadline_rejects_the_call_for_the_model(client: AsyncSignoff) -> None:
    @function_tool
    def close_account(customer: str) -> str:
        """Close a customer's account."""
        raise AssertionError("a call nobody approved ran")

    model = ScriptedModel([[call("close_account", "call_d1", customer="c_42")], report_tool_outputs])
    agent = example.build_agent(model)
    agent.tools = [gate(close_account, action="short_fuse_reject")]  # the policy's 1 s deadline, then reject
    result = await run_with_approvals(agent, "Close c_42", client=client, run_id="t-5")
    assert isinstance(result, RunResult)
    assert result.final_output == "Done: Rejected: no decision before the deadline"


async def test_a_state_over_64_kib_fails_before_anything_is_asked(client: AsyncSignoff) -> None:
    model = ScriptedModel([[call("refund", "call_b1", order_id="A-3", amount=10)]])
    with pytest.raises(RunStateTooLarge, match="at most 65536"):
        await run_with_approvals(example.build_agent(model), "x" * 70_000, client=client, run_id="t-6")
    assert (await client.list(run_id="t-6")).items == []


async def test_a_gated_tool_never_runs_on_an_approval_signoff_did_not_give() -> None:
    model = ScriptedModel([[call("refund", "call_n1", order_id="A-5", amount=10)]])
    agent = example.build_agent(model)
    stopped = await Runner.run(agent, "Refund A-5")
    state = stopped.to_state()
    state.approve(state.get_interruptions()[0])
    with pytest.raises(UserError, match="no approved Signoff request"):
        await Runner.run(agent, state)
    assert example.ISSUED == []


async def test_a_tool_that_needs_approval_but_is_not_gated_is_refused(client: AsyncSignoff) -> None:
    @function_tool(needs_approval=True)
    def wipe(disk: str) -> str:
        """Wipe a disk."""
        return "wiped"

    agent = example.build_agent(ScriptedModel([[call("wipe", "call_w1", disk="sda")]]))
    agent.tools = [wipe]
    with pytest.raises(UserError, match="not a Signoff-gated tool"):
        await run_with_approvals(agent, "Wipe sda", client=client, run_id="t-7", wait=False)
