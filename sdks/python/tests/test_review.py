"""The review loop through the SDK, against the real binary: confirm and flag (sync and async), the signed
`request.flagged` callback the agent receives, and the remediation it reports."""

from __future__ import annotations

import pytest

import signoff
from signoff import AsyncSignoff, Signoff

from conftest import Receiver

REVIEW_POLICY = """\
version: 1
approvers:
  - { id: dana, name: Moderator, email: dana@example.com, groups: [moderators] }
  - { id: carl, name: Moderator, email: carl@example.com, groups: [moderators] }
groups:
  moderators: { notify: [] }
defaults: { route: moderators, timeout: 1h, on_timeout: reject }
rules:
  - name: every-removal
    when: action == "remove_comment"
    review: { sample: 1, group: moderators }
  - name: auto-lookup
    when: action == "lookup"
    decide: approve
"""


def test_flag_reaches_the_agent_and_remediation_is_reported(start_server) -> None:
    server = start_server(REVIEW_POLICY, SIGNOFF_ALLOW_PRIVATE_CALLBACKS="true")
    agent_key = server.key("agent", "mod-bot")
    receiver = Receiver()
    with (
        Signoff(server.url, agent_key.key) as agent,
        Signoff(server.url, server.key("approver", "dana-laptop", "--approver", "dana").key) as dana,
    ):
        report = agent.create("remove_comment", {"comment": "c-1"}, mode="post", callback_url=receiver.url)
        assert report.pending and report.sampled
        agent.report_outcome(report.id, True, {"removed": "c-1"})

        flagged = dana.flag(report.id, "not_spam", comment="a real review", undo=True)
        assert flagged.status == "rejected" and flagged.flagged
        assert flagged.review is not None and flagged.review.undo and not flagged.review.miss
        assert flagged.review.by == "dana" and flagged.review.reason == "not_spam"
        with pytest.raises(signoff.AlreadyReviewed):
            dana.confirm(report.id)

        assert agent_key.webhook_secret is not None
        message = receiver.message(agent_key.webhook_secret)
        assert message["type"] == "request.flagged"
        request = signoff.Request.model_validate(message["data"])
        assert request.id == report.id and request.flagged and request.review and request.review.undo

        remedied = agent.report_outcome(report.id, True, {"restored": "c-1"})
        assert remedied.remediation is not None and remedied.remediation.detail == {"restored": "c-1"}
        assert remedied.outcome is not None and remedied.outcome.detail == {"removed": "c-1"}
        kinds = [e.kind for e in agent.request_events(report.id) if e.kind != "callback_attempted"]
        assert kinds[-3:] == ["decided", "flagged", "outcome_reported"]

        # A flag on what policy approved at once is a miss, and the decision stays.
        lookup = agent.create("lookup", {"customer": "c_42"})
        missed = dana.flag(lookup.id, "wrong_customer")
        assert missed.status == "approved" and missed.review is not None and missed.review.miss
        with pytest.raises(signoff.NotReviewable):
            dana.confirm(agent.create("lookup", {"customer": "c_43"}).id)
        with pytest.raises(signoff.Forbidden):
            agent.flag(lookup.id, "self")
    receiver.close()


async def test_async_confirm_and_flag(start_server) -> None:
    server = start_server(REVIEW_POLICY)
    agent_key = server.key("agent", "mod-bot")
    carl_key = server.key("approver", "carl-laptop", "--approver", "carl").key
    async with AsyncSignoff(server.url, agent_key.key) as agent, AsyncSignoff(server.url, carl_key) as carl:
        first = await agent.create("remove_comment", {"comment": "c-2"}, mode="post")
        confirmed = await carl.confirm(first.id, comment="right call")
        assert confirmed.status == "approved" and confirmed.review and confirmed.review.verdict == "confirmed"
        assert confirmed.review.comment == "right call" and not confirmed.flagged

        second = await agent.create("remove_comment", {"comment": "c-3"}, mode="post")
        flagged = await carl.flag(second.id, "wrong_comment")
        assert flagged.status == "rejected" and flagged.flagged and flagged.review and not flagged.review.undo
        with pytest.raises(signoff.AlreadyReviewed):
            await carl.flag(second.id, "again")
        with pytest.raises(signoff.InvalidRequest):
            await carl.flag((await agent.create("remove_comment", {}, mode="post")).id, "  ")


async def test_a_flag_never_resumes_an_openai_agents_run() -> None:
    from signoff.integrations import openai_agents

    message = {"type": "request.flagged", "timestamp": "2025-05-01T09:41:03Z", "data": {"id": "not-read"}}
    # Nothing is read or resumed: the agent handles the flag itself.
    assert await openai_agents.resume_from_callback(None, message, client=None) is None  # type: ignore[arg-type]
