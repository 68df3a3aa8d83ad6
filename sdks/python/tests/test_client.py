"""The clients against the real server: every method, idempotency, errors the server really answers, the event stream."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

import signoff
from signoff import AsyncSignoff, Signoff

from conftest import Key, Server, TcpProxy, free_port


def test_create_get_list_and_idempotent_retries(agent: Signoff) -> None:
    created = agent.create(
        "refund",
        {"order": "1042", "amount": 120},
        summary="Refund order 1042",
        reasoning="Arrived broken",
        context={"ticket": "T-1"},
        confidence=0.8,
        tags=["refund"],
        idempotency_key="order-1042-refund",
    )
    assert created.pending and created.group == "finance" and created.args == {"order": "1042", "amount": 120}
    assert (
        agent.create(
            "refund",
            {"order": "1042", "amount": 120},
            summary="Refund order 1042",
            reasoning="Arrived broken",
            context={"ticket": "T-1"},
            confidence=0.8,
            tags=["refund"],
            idempotency_key="order-1042-refund",
        ).id
        == created.id
    )
    with pytest.raises(signoff.IdempotencyConflict) as conflict:
        agent.create("refund", {"order": "1042", "amount": 999}, idempotency_key="order-1042-refund")
    assert conflict.value.status == 409 and isinstance(conflict.value, signoff.Conflict)

    # Without a key of the caller's, each create is its own request; a (run_id, call_id) pair is a key.
    assert agent.create("refund", {"amount": 1}).id != agent.create("refund", {"amount": 1}).id
    first = agent.create("refund", {"amount": 2}, run_id="run-1", call_id="call-1")
    assert agent.create("refund", {"amount": 2}, run_id="run-1", call_id="call-1").id == first.id

    assert agent.get(created.id) == created
    assert [r.id for r in agent.list(run_id="run-1").items] == [first.id]
    page = agent.list(action="refund", limit=2)
    assert len(page.items) == 2 and page.next_cursor == page.items[-1].id
    rest = agent.list(action="refund", limit=50, cursor=page.next_cursor)
    assert len(rest.items) == 2 and rest.next_cursor is None
    assert {r.id for r in page.items + rest.items} == {r.id for r in agent.list(action="refund").items}


def test_policy_decides_at_create(agent: Signoff) -> None:
    request = agent.create("lookup", {"customer": "c_42"})
    assert request.status == "approved" and request.decision is not None
    assert request.decision.by.kind == "policy" and request.decision.by.rule == "auto-lookup"


def test_wait_decide_and_report_outcome(agent: Signoff, dana: Signoff) -> None:
    request = agent.create("refund", {"order": "1042", "amount": 120})
    started = time.monotonic()
    assert agent.wait(request.id, timeout=1).pending
    assert time.monotonic() - started >= 1

    with pytest.raises(signoff.NotDecided):
        agent.report_outcome(request.id, True)
    with pytest.raises(signoff.Forbidden):
        agent.approve(request.id)
    with pytest.raises(signoff.CommentRequired):
        dana.reject(request.id, " ")

    approver = threading.Timer(
        0.3, lambda: dana.approve(request.id, comment="not the shipping", args={"order": "1042", "amount": 100})
    )
    approver.start()
    decided = agent.wait(request.id, timeout=30)
    approver.join()
    assert decided.status == "approved" and decided.decision is not None
    assert decided.decision.args == {"order": "1042", "amount": 100} and decided.decision.edited
    assert decided.decision.by.approver_id == "dana" and decided.decision.by.channel == "api"
    assert decided.args == {"order": "1042", "amount": 120}
    with pytest.raises(signoff.AlreadyDecided):
        dana.reject(request.id, "too late")

    reported = agent.report_outcome(request.id, True, {"refund_id": "re_1"})
    assert reported.outcome is not None and reported.outcome.ok and reported.outcome.detail == {"refund_id": "re_1"}
    with pytest.raises(signoff.OutcomeAlreadyReported):
        agent.report_outcome(request.id, False)
    kinds = [event.kind for event in agent.request_events(request.id)]
    assert kinds == ["created", "routed", "decided", "outcome_reported"]


def test_reject_and_cancel(agent: Signoff, dana: Signoff) -> None:
    rejected = dana.reject(agent.create("refund", {"amount": 5}).id, "outside the refund window")
    assert (
        rejected.status == "rejected" and rejected.decision and rejected.decision.comment == "outside the refund window"
    )

    cancelled = agent.cancel(agent.create("refund", {"amount": 6}).id, "the customer withdrew")
    assert (
        cancelled.status == "cancelled" and cancelled.decision and cancelled.decision.reason == "the customer withdrew"
    )
    with pytest.raises(signoff.AlreadyDecided):
        agent.cancel(cancelled.id)


def test_errors_the_server_answers(server: Server, agent: Signoff) -> None:
    with Signoff(server.url, "so_agent_not-a-real-key") as stranger, pytest.raises(signoff.Unauthorized) as error:
        stranger.get("0196a3c4-5e2f-7a10-8b3c-4d5e6f708192")
    assert error.value.status == 401 and error.value.code == "unauthorized"
    with pytest.raises(signoff.NotFound):
        agent.get("0196a3c4-5e2f-7a10-8b3c-4d5e6f708192")
    with pytest.raises(signoff.InvalidRequest) as invalid:
        agent.create("refund", confidence=2)
    assert invalid.value.status == 400 and "confidence" in invalid.value.message
    with pytest.raises(signoff.BadRequest):
        agent.create("refund", mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(signoff.InvalidRequest):
        agent.list(status="maybe")


def test_another_agents_request_is_not_found(server: Server, agent: Signoff) -> None:
    theirs = agent.create("refund", {"amount": 1})
    with Signoff(server.url, server.key("agent", "other-bot").key) as other, pytest.raises(signoff.NotFound):
        other.get(theirs.id)


def test_configured_from_the_environment(server: Server, agent_key: Key, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_URL", server.url)
    monkeypatch.setenv("SIGNOFF_KEY", agent_key.key)
    with Signoff() as client:
        assert client.url == server.url and "so_agent_" in repr(client) and agent_key.key not in repr(client)
        assert client.create("refund").pending
    monkeypatch.delenv("SIGNOFF_KEY")
    with pytest.raises(ValueError, match="SIGNOFF_KEY"):
        Signoff(server.url)


def test_events_resume_after_a_dropped_connection(server: Server, agent: Signoff, agent_key: Key) -> None:
    proxy = TcpProxy(int(server.url.rsplit(":", 1)[1]))
    first = agent.create("refund", {"amount": 1})
    received: list[signoff.Event] = []
    with Signoff(proxy.url, agent_key.key) as streaming:
        stream = streaming.events()
        received += [next(stream), next(stream)]  # created, routed
        assert [e.kind for e in received] == ["created", "routed"] and proxy.accepted == 1
        proxy.cut()
        second = agent.create("refund", {"amount": 2})  # written while the stream is down
        received += [next(stream), next(stream)]
        assert proxy.accepted == 2  # it reconnected
        stream.close()
    proxy.close()
    assert [(e.request_id, e.kind) for e in received] == [
        (first.id, "created"),
        (first.id, "routed"),
        (second.id, "created"),
        (second.id, "routed"),
    ]
    seqs = [e.seq for e in received]
    assert seqs == sorted(set(seqs))
    assert seqs == [e.seq for e in agent.request_events(first.id) + agent.request_events(second.id)]


def test_events_from_a_given_seq(agent: Signoff) -> None:
    request = agent.create("refund")
    created, routed = agent.request_events(request.id)
    stream = agent.events(after=created.seq)
    assert next(stream) == routed
    stream.close()


def test_rate_limited_calls_are_retried_after_retry_after(start_server) -> None:
    server = start_server(SIGNOFF_RATE_LIMIT="1")
    key = server.key("agent", "busy-bot").key
    with Signoff(server.url, key, max_retries=0) as impatient:
        with pytest.raises(signoff.RateLimited) as limited:
            for _ in range(5):  # a key's first call counts against the address; then its bucket holds one call
                impatient.list()
        assert limited.value.status == 429 and limited.value.retry_after is not None and limited.value.retry_after >= 1
    with Signoff(server.url, key, max_retries=3) as patient:
        started = time.monotonic()
        ids = {patient.create("refund", {"n": n}).id for n in range(3)}  # creates: retried with the same key
        assert len(ids) == 3 and time.monotonic() - started >= 1
        assert len(patient.list(action="refund").items) == 3  # no duplicates from the retries


def test_a_server_that_is_not_there() -> None:
    with Signoff(f"http://127.0.0.1:{free_port()}", "so_agent_x", max_retries=1) as client:
        with pytest.raises(signoff.ConnectionFailed):
            client.get("0196a3c4-5e2f-7a10-8b3c-4d5e6f708192")


async def test_async_client(server: Server, agent_key: Key, dana: Signoff) -> None:
    async with AsyncSignoff(server.url, agent_key.key) as agent:
        request = await agent.create("refund", {"amount": 120}, run_id="run-a", call_id="c1")
        assert (await agent.create("refund", {"amount": 120}, run_id="run-a", call_id="c1")).id == request.id
        assert (await agent.get(request.id)).pending
        assert [r.id for r in (await agent.list(run_id="run-a")).items] == [request.id]
        assert (await agent.wait(request.id, timeout=0)).pending
        threading.Timer(0.3, lambda: dana.approve(request.id, args={"amount": 100})).start()
        decided = await agent.wait(request.id, timeout=30)
        assert decided.status == "approved" and decided.decision and decided.decision.args == {"amount": 100}
        assert (await agent.report_outcome(request.id, True)).outcome is not None
        with pytest.raises(signoff.OutcomeAlreadyReported):
            await agent.report_outcome(request.id, True)

        other = await agent.create("refund", {"amount": 3})
        assert (await agent.cancel(other.id)).status == "cancelled"
        with pytest.raises(signoff.Forbidden):
            await agent.reject(other.id, "no")
        events = [e async for e in _take(agent.events(), 3)]
        assert [e.kind for e in events] == ["created", "routed", "decided"]
        assert events == (await agent.request_events(request.id))[:3]


async def _take(stream, n: int):
    async for event in stream:
        yield event
        n -= 1
        if n == 0:
            await stream.aclose()
            return


def test_a_custom_http_client_is_used(server: Server, agent_key: Key) -> None:
    seen: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]})
    with Signoff(server.url, agent_key.key, http_client=http) as client:
        client.list()
    assert seen == ["/v1/requests"]


def test_which_calls_are_retried() -> None:
    from signoff.client import _calls, _Retry

    retry = _Retry(max_retries=3)
    never_sent, broken = httpx.ConnectError("refused"), httpx.ReadError("connection reset")
    busy = signoff.RateLimited("rate_limited", "slow down", 429, retry_after=2.0)
    crashed = signoff.Internal("internal", "oops", 500)
    decisions = [
        _calls.decide("id", {"outcome": "approve"}),
        _calls.cancel("id", None),
        _calls.report_outcome("id", True, None),
        _calls.confirm("id", None),
        _calls.flag("id", "wrong_amount", None, False),
    ]
    repeatable = [_calls.create({"action": "a"}, None), _calls.get("id"), _calls.list({}), _calls.wait("id", 30)]
    for call in decisions + repeatable:
        assert retry.after_exception(call, never_sent, 0) is not None
        delay = retry.after_error(call, busy, 0)
        assert delay is not None and delay >= 2.0
        assert retry.after_error(call, busy, 3) is None  # max_retries reached
    for call in decisions:
        assert retry.after_exception(call, broken, 0) is None and retry.after_error(call, crashed, 0) is None
    for call in repeatable:
        assert retry.after_exception(call, broken, 0) is not None and retry.after_error(call, crashed, 0) is not None
    assert retry.after_error(repeatable[0], signoff.InvalidRequest("invalid_request", "m", 400), 0) is None

    # A create always carries a key, so its retries are safe: the caller's, else the (run_id, call_id) pair, else a UUID.
    assert _calls.create({"action": "a"}, "mine").headers == {"Idempotency-Key": "mine"}
    assert _calls.create({"action": "a", "run_id": "r", "call_id": "c"}, None).headers == {}
    generated = _calls.create({"action": "a"}, None).headers["Idempotency-Key"]
    assert generated != _calls.create({"action": "a"}, None).headers["Idempotency-Key"]


def test_a_malformed_id_is_not_found(agent: Signoff) -> None:
    for bad in ("../requests", "not-a-uuid", "a/b?c"):
        with pytest.raises(signoff.NotFound):
            agent.get(bad)
