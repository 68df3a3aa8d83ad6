"""Questions (human-as-tool) against the real server: `ask_human` answered through the API and the dashboard, options,
expiry, timeouts and resumption, and `human_as_tool` for sync and async clients."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable

import httpx
import pytest

import signoff
from signoff import AsyncSignoff, Signoff

from conftest import Key, Server, decide_when_pending


def answer_with(text: str) -> Callable[[Signoff, signoff.Request], object]:
    def answer(approver: Signoff, request: signoff.Request) -> object:
        return approver.answer(request.id, text)

    return answer


def test_ask_human_returns_the_answer_given_through_the_api(agent: Signoff, dana: Signoff) -> None:
    answering = decide_when_pending(dana, "ask_human", answer_with("Ship to the EU warehouse"))
    with signoff.run("ticket-1"):
        answer = agent.ask_human("Which warehouse should order 8812 ship from?")
    answering.join(10)
    assert answer == "Ship to the EU warehouse"

    (request,) = agent.list(run_id="ticket-1").items
    assert (request.kind, request.status, request.question) == (
        "question",
        "answered",
        "Which warehouse should order 8812 ship from?",
    )
    assert request.answer == "Ship to the EU warehouse"
    assert request.decision is not None and request.decision.by.approver_id == "dana"
    decided = [e for e in agent.request_events(request.id) if e.kind == "decided"]
    assert len(decided) == 1 and isinstance(decided[0].data, dict) and decided[0].data.get("answer") == request.answer


def test_options_limit_the_answers(agent: Signoff, dana: Signoff) -> None:
    question = agent.ask("Which region should the replica go to?", ["eu", "us"], run_id="r", call_id="region")
    assert question.options == ["eu", "us"] and question.pending
    with pytest.raises(signoff.InvalidAnswer) as refused:
        dana.answer(question.id, "asia")
    assert refused.value.code == "invalid_answer"
    assert dana.answer(question.id, "us").answer == "us"
    # The same question in the same run is the same request, answered.
    assert (
        signoff.ask_human(
            "Which region should the replica go to?", ["eu", "us"], client=agent, call_id="region", run_id="r"
        )
        == "us"
    )
    with pytest.raises(signoff.AlreadyDecided):
        dana.answer(question.id, "eu")


def test_a_question_cannot_be_approved_nor_an_approval_answered(agent: Signoff, dana: Signoff) -> None:
    question = agent.ask("Proceed?")
    with pytest.raises(signoff.WrongKind):
        dana.approve(question.id)
    approval = agent.create("refund", {"amount": 10})
    with pytest.raises(signoff.WrongKind):
        dana.answer(approval.id, "yes")


def test_ask_human_returns_the_answer_given_in_the_dashboard(server: Server, agent: Signoff) -> None:
    dana_key = server.key("approver", "dana-browser", "--approver", "dana").key
    answers: list[str] = []
    asking = threading.Thread(
        target=lambda: answers.append(agent.ask_human("Is the customer a reseller?", ["yes", "no"]))
    )
    asking.start()

    with httpx.Client(base_url=server.url, headers={"Origin": server.url}, follow_redirects=True) as browser:
        signed_in = browser.post("/sign-in", data={"key": dana_key})
        assert signed_in.status_code == 200, signed_in.text
        with Signoff(server.url, dana_key) as dana:
            request_id = next(e.request_id for e in dana.events() if e.kind == "routed" and e.request_id)
        page = browser.get(f"/requests/{request_id}")
        assert "Is the customer a reseller?" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        answered = browser.post(f"/requests/{request_id}/answer", data={"csrf": html.unescape(csrf[1]), "text": "no"})
        assert answered.status_code == 200, answered.text

    asking.join(10)
    assert answers == ["no"]
    decision = agent.get(request_id).decision
    assert decision is not None and (decision.by.approver_id, decision.by.channel) == ("dana", "dashboard")


def test_expiry_and_timeout_end_ask_human(agent: Signoff, dana: Signoff) -> None:
    # `short_fuse` routes with a 1 s deadline: a question nobody answers expires.
    with pytest.raises(signoff.Unanswered) as unanswered:
        agent.ask_human("Still there?", action="short_fuse")
    assert unanswered.value.request.status == "expired"
    assert str(unanswered.value) == "No answer: nobody answered the question before its deadline"

    with signoff.run("run-timeout"), pytest.raises(signoff.ApprovalTimeout) as timed_out:
        agent.ask_human("Which courier?", timeout=0.5)
    pending = timed_out.value.request
    assert pending.pending
    dana.answer(pending.id, "DHL")
    with signoff.run("run-timeout"):
        assert agent.ask_human("Which courier?") == "DHL"
    assert len(agent.list(run_id="run-timeout").items) == 1


def test_a_cancelled_question_is_unanswered(agent: Signoff) -> None:
    question = agent.ask("Refund in cash?", run_id="run-cancel", call_id="cash")
    agent.cancel(question.id, "customer withdrew")
    with pytest.raises(signoff.Unanswered, match="cancelled"):
        agent.ask_human("Refund in cash?", run_id="run-cancel", call_id="cash")


def test_human_as_tool_is_a_plain_function_with_a_docstring(agent: Signoff, dana: Signoff) -> None:
    tool = signoff.human_as_tool(agent, timeout=30)
    assert tool.__name__ == "ask_human"
    assert tool.__doc__ and "Ask a person" in tool.__doc__
    answering = decide_when_pending(dana, "ask_human", answer_with("Yes, go ahead"))
    assert tool("May I email the customer?") == "Yes, go ahead"
    answering.join(10)

    expiring = signoff.human_as_tool(agent, timeout=0.2)
    assert expiring("Anyone?").startswith("no answer yet")


async def test_async_ask_human_and_tool(server: Server, agent_key: Key, dana: Signoff) -> None:
    answering = decide_when_pending(dana, "ask_human", answer_with("42"))
    async with AsyncSignoff(server.url, agent_key.key) as agent:
        tool = signoff.human_as_tool(agent)
        assert await tool("How many units are left?") == "42"
        answering.join(10)
        question = await agent.ask("Approve the discount?", ["yes", "no"], run_id="run-async", call_id="discount")
        assert dana.answer(question.id, "yes").status == "answered"
        again = await agent.ask_human("Approve the discount?", ["yes", "no"], run_id="run-async", call_id="discount")
        assert again == "yes"
