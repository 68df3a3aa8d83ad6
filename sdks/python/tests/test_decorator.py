"""`@require_approval` against the real server: approve (with edits), reject, crash and resume, timeout, expiry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import signoff
from signoff import AsyncSignoff, Signoff, require_approval

import agent_tools
from conftest import Key, Server, decide_when_pending


@pytest.fixture
def env_agent(server: Server, agent_key: Key, monkeypatch: pytest.MonkeyPatch) -> Signoff:
    """The agent configured by the environment, as `agent_tools` (decorated without a client) needs it."""
    monkeypatch.setenv("SIGNOFF_URL", server.url)
    monkeypatch.setenv("SIGNOFF_KEY", agent_key.key)
    agent_tools.calls.clear()
    return Signoff()


def only_request(agent: Signoff, run_id: str) -> signoff.Request:
    (request,) = agent.list(run_id=run_id).items
    return request


def test_approval_runs_the_function_once_with_the_edited_args(env_agent: Signoff, dana: Signoff) -> None:
    approver = decide_when_pending(
        dana, "refund", lambda api, r: api.approve(r.id, comment="not the shipping", args={**r.args, "amount": 100})
    )
    with signoff.run("ticket-1"):
        assert agent_tools.refund("c_42", 120) == "refunded 100 to c_42"
    approver.join()
    assert agent_tools.calls == [{"customer": "c_42", "amount": 100}]

    request = only_request(env_agent, "ticket-1")
    assert request.summary == "Refund 120 to c_42" and request.args == {"customer": "c_42", "amount": 120}
    assert request.outcome is not None and request.outcome.ok
    assert request.outcome.detail == {"result": "refunded 100 to c_42"}


def test_rejection_returns_a_message_for_the_model(env_agent: Signoff, dana: Signoff) -> None:
    decide_when_pending(dana, "refund", lambda api, r: api.reject(r.id, "outside the refund window"))
    with signoff.run("ticket-2"):
        assert agent_tools.refund("c_42", 120) == "Rejected by dana: outside the refund window"
        # Asked again in the same run, the same call gets the same answer: a person is never asked twice.
        assert agent_tools.refund("c_42", 120) == "Rejected by dana: outside the refund window"
    assert agent_tools.calls == []
    assert only_request(env_agent, "ticket-2").outcome is None


def test_rejection_raises_when_asked_to(agent: Signoff, dana: Signoff) -> None:
    @require_approval(action="delete_rows", on_reject="raise", client=agent)
    def delete_rows(table: str, where: str) -> int:
        raise AssertionError("must not run")

    decide_when_pending(dana, "delete_rows", lambda api, r: api.reject(r.id, "that is production"))
    with pytest.raises(signoff.Rejected) as rejected:
        delete_rows("orders", "1=1")
    assert str(rejected.value) == "Rejected by dana: that is production"
    assert rejected.value.request.status == "rejected" and rejected.value.request.args == {
        "table": "orders",
        "where": "1=1",
    }


def test_a_crashed_agent_resumes_the_same_request(env_agent: Signoff, dana: Signoff) -> None:
    tests = Path(__file__).parent
    agent_process = subprocess.Popen(
        [sys.executable, "-m", "agent_tools", "ticket-3"],
        cwd=tests,
        env={**os.environ, "PYTHONPATH": str(tests)},
        stdout=subprocess.PIPE,
        text=True,
    )
    request = next(env_agent.get(e.request_id) for e in env_agent.events() if e.kind == "routed" and e.request_id)
    assert request.run_id == "ticket-3" and request.pending
    agent_process.kill()  # the agent dies while it waits
    agent_process.wait()
    dana.approve(request.id, args={"customer": "c_42", "amount": 110})

    with signoff.run("ticket-3"):  # the agent comes back and makes the same call
        assert agent_tools.refund("c_42", 120) == "refunded 110 to c_42"
    assert only_request(env_agent, "ticket-3").id == request.id
    assert agent_tools.calls == [{"customer": "c_42", "amount": 110}]


def test_a_call_that_ran_asks_again_when_repeated(env_agent: Signoff, dana: Signoff) -> None:
    with signoff.run("ticket-4"):
        decide_when_pending(dana, "refund", lambda api, r: api.approve(r.id))
        assert agent_tools.refund("c_42", 5) == "refunded 5 to c_42"
        decide_when_pending(dana, "refund", lambda api, r: api.reject(r.id, "once is enough"))
        assert agent_tools.refund("c_42", 5) == "Rejected by dana: once is enough"
    first, second = sorted(env_agent.list(run_id="ticket-4").items, key=lambda r: r.created_at)
    assert second.call_id == f"{first.call_id}#2"
    assert agent_tools.calls == [{"customer": "c_42", "amount": 5}]


def test_timeout_raises_and_a_later_call_picks_the_request_up(agent: Signoff, dana: Signoff) -> None:
    ran: list[str] = []

    @require_approval(timeout=0.5, on_reject="raise", client=agent)
    def send_email(to: str, run_id: str) -> None:
        ran.append(to)

    started = time.monotonic()
    with pytest.raises(signoff.ApprovalTimeout) as timed_out:
        send_email("jo@example.com", run_id="run-5")  # the function's own run_id argument names the run
    assert 0.5 <= time.monotonic() - started < 5
    request = timed_out.value.request
    assert request.pending and request.action == "send_email" and request.run_id == "run-5"
    assert request.args == {"to": "jo@example.com"}

    dana.approve(request.id)
    send_email("jo@example.com", run_id="run-5")
    assert ran == ["jo@example.com"] and only_request(agent, "run-5").id == request.id


def test_an_expired_or_timed_out_request_ends_the_call(agent: Signoff) -> None:
    @require_approval(action="short_fuse", client=agent)
    def returning(n: int) -> None: ...

    @require_approval(action="short_fuse", on_reject="raise", client=agent)
    def raising(n: int) -> None: ...

    assert returning(1) == "Expired: no decision before the deadline"  # policy: 1 s, then on_timeout: fail
    with pytest.raises(signoff.Expired) as expired:
        raising(2)
    assert expired.value.request.status == "expired" and expired.value.request.decision.by.kind == "timeout"

    @require_approval(action="short_fuse_reject", client=agent)
    def timed_out(n: int) -> None: ...

    assert timed_out(3) == "Rejected: no decision before the deadline"  # policy: 1 s, then on_timeout: reject


def test_a_failing_function_reports_the_failure(agent: Signoff) -> None:
    @require_approval(action="lookup", summary=lambda customer: f"Look up {customer.upper()}", client=agent)
    def lookup(customer: str) -> str:
        raise LookupError(f"no customer {customer}")

    with signoff.run("run-6"), pytest.raises(LookupError):
        lookup("c_404")  # policy approves lookups at once: nobody is asked
    request = only_request(agent, "run-6")
    assert request.summary == "Look up C_404" and request.outcome is not None and not request.outcome.ok
    assert request.outcome.detail == {"error": "LookupError", "message": "no customer c_404"}


def test_arguments_must_be_json(agent: Signoff) -> None:
    @require_approval(client=agent)
    def upload(data: object) -> None: ...

    with pytest.raises(TypeError, match="must be JSON"):
        upload(object())
    assert agent.list().items == []


def test_wrong_client_kind_is_refused_at_decoration(agent: Signoff) -> None:
    with pytest.raises(TypeError, match="AsyncSignoff"):

        @require_approval(client=agent)
        async def tool() -> None: ...


async def test_async_approval_with_edit(server: Server, agent_key: Key, dana: Signoff) -> None:
    async with AsyncSignoff(server.url, agent_key.key) as agent:
        ran: list[int] = []

        @agent.require_approval(action="refund", summary="Refund {amount}")
        async def refund(amount: int) -> int:
            ran.append(amount)
            return amount

        decide_when_pending(dana, "refund", lambda api, r: api.approve(r.id, args={"amount": 7}))
        with signoff.run("async-1"):
            assert await refund(70) == 7
        assert ran == [7]
        (request,) = (await agent.list(run_id="async-1")).items
        assert request.outcome is not None and request.outcome.detail == {"result": 7}


async def test_async_rejection_timeout_and_expiry(server: Server, agent_key: Key, dana: Signoff) -> None:
    async with AsyncSignoff(server.url, agent_key.key) as agent:

        @require_approval(action="refund", on_reject="raise", client=agent)
        async def refund(amount: int) -> None:
            raise AssertionError("must not run")

        @require_approval(action="refund", timeout=0.3, client=agent)
        async def impatient_refund(amount: int) -> None: ...

        @require_approval(action="short_fuse", client=agent)
        async def fuse() -> None: ...

        decide_when_pending(dana, "refund", lambda api, r: api.reject(r.id, "no"))
        with pytest.raises(signoff.Rejected, match="Rejected by dana: no"):
            await refund(1)
        with pytest.raises(signoff.ApprovalTimeout):
            await impatient_refund(2)
        assert await fuse() == "Expired: no decision before the deadline"


def test_client_bound_and_environment_configured_gates(env_agent: Signoff, agent: Signoff) -> None:
    @agent.require_approval(action="lookup")
    def bound(customer: str) -> str:
        return f"found {customer}"

    with signoff.run("run-7"):
        assert bound("c_1") == "found c_1"  # policy approves lookups at once
    assert only_request(agent, "run-7").outcome is not None


async def test_an_async_gate_configured_from_the_environment(env_agent: Signoff) -> None:
    @require_approval(action="lookup")
    async def lookup(customer: str) -> str:
        return f"found {customer}"

    with signoff.run("run-8"):
        assert await lookup("c_2") == "found c_2"
    request = only_request(env_agent, "run-8")
    assert request.outcome is not None and request.outcome.detail == {"result": "found c_2"}


def test_a_policy_denial_and_a_cancel_are_told_to_the_model(agent: Signoff) -> None:
    @require_approval(client=agent)
    def wire_money(iban: str) -> None:
        raise AssertionError("must not run")

    assert wire_money("DE89") == "Rejected by policy: denied by policy rule `no-wires`"

    @require_approval(action="refund", on_reject="raise", client=agent)
    def refund(amount: int) -> None:
        raise AssertionError("must not run")

    canceller = decide_when_pending(agent, "refund", lambda api, r: api.cancel(r.id, "a duplicate"))  # it withdraws
    with pytest.raises(signoff.Cancelled, match="^Cancelled: a duplicate$"):
        refund(9)
    canceller.join(10)  # before the fixture closes the client the thread streams events with
