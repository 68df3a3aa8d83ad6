"""`signoff.integrations.langgraph` against the real server and the real LangChain and LangGraph.

Agents are `create_agent` with `HumanInTheLoopMiddleware` (the example's own, `examples/langgraph_agent.py`, where it
fits) and a scripted chat model; people decide through the API with the fixtures' approver keys while the driver waits.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from langgraph_support import ScriptedChatModel, load_example, refund_script, tool_calls

import signoff
from signoff import AsyncSignoff, Request, Signoff
from signoff.integrations.langgraph import (
    arun_with_approvals,
    ask_signoff,
    decisions_for,
    request_signoff,
    run_with_approvals,
)

from conftest import POLICY, Key, Server, decide_when_pending

WAIT = 30.0
"""Seconds a test waits for a person: a broken driver fails the test instead of hanging it."""
README = Path(__file__).parents[1] / "README.md"
example = load_example()
START_MESSAGE = {"messages": [{"role": "user", "content": "Order 1042 arrived broken."}]}


def thread(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


def tool_message(result: dict[str, Any], tool_call_id: str) -> ToolMessage:
    (message,) = [m for m in result["messages"] if isinstance(m, ToolMessage) and m.tool_call_id == tool_call_id]
    return message


def only_request(agent: Signoff, run_id: str, action: str = "refund") -> Request:
    (request,) = [r for r in agent.list(run_id=run_id).items if r.action == action]
    return request


def test_an_approved_refund_runs_and_reports_its_result(agent: Signoff, dana: Signoff) -> None:
    graph = example.build_agent(refund_script(), InMemorySaver())
    person = decide_when_pending(dana, "refund", lambda api, r: api.approve(r.id, comment="fine"))
    result = run_with_approvals(graph, START_MESSAGE, config=thread("ticket-1"), client=agent, timeout=WAIT)
    person.join()

    assert tool_message(result, "call_refund_1").content == "refunded 120 to c_42"
    assert result["messages"][-1].content == "All done."
    request = only_request(agent, "ticket-1")
    assert request.call_id == "call_refund_1" and request.args == {"customer": "c_42", "amount": 120}
    assert request.summary == "Refund 120 to c_42"  # the review's description, from the example's describe_refund
    assert request.context["thread_id"] == "ticket-1" and request.context["tool_call_id"] == "call_refund_1"
    assert request.context["allowed_decisions"] == ["approve", "edit", "reject"] and request.tags == ["langgraph"]
    assert request.outcome is not None and request.outcome.ok
    assert request.outcome.detail == {"result": "refunded 120 to c_42"}
    assert [r.action for r in agent.list(run_id="ticket-1").items] == ["refund"]  # lookup_order is not reviewed


def test_an_edited_approval_runs_the_tool_with_the_edited_args(agent: Signoff, dana: Signoff) -> None:
    graph = example.build_agent(refund_script(), InMemorySaver())
    person = decide_when_pending(dana, "refund", lambda api, r: api.approve(r.id, args={**r.args, "amount": 100}))
    result = run_with_approvals(graph, START_MESSAGE, config=thread("ticket-2"), client=agent, timeout=WAIT)
    person.join()

    ran = tool_message(result, "call_refund_1")
    assert ran.text.endswith("refunded 100 to c_42") and "a human reviewer replaced this tool call" in ran.text
    request = only_request(agent, "ticket-2")
    assert request.decision is not None and request.decision.edited
    assert request.outcome is not None and request.outcome.ok and "refunded 100" in request.outcome.detail["result"]


def test_a_rejection_skips_the_tool_and_tells_the_model_who_and_why(agent: Signoff, dana: Signoff) -> None:
    graph = example.build_agent(refund_script(), InMemorySaver())
    person = decide_when_pending(dana, "refund", lambda api, r: api.reject(r.id, "outside the refund window"))
    result = run_with_approvals(graph, START_MESSAGE, config=thread("ticket-3"), client=agent, timeout=WAIT)
    person.join()

    refused = tool_message(result, "call_refund_1")
    assert refused.status == "error"
    assert refused.content == (
        "User rejected the tool call for `refund` with reason: Rejected by dana: outside the refund window"
    )
    assert "refunded" not in str([m.content for m in result["messages"]])
    assert only_request(agent, "ticket-3").outcome is None


def test_a_thread_resumes_after_the_agent_process_dies(
    server: Server, agent_key: Key, agent: Signoff, dana: Signoff, tmp_path: Path
) -> None:
    database = tmp_path / "threads.db"
    tests = Path(__file__).parent
    process = subprocess.Popen(
        [sys.executable, "-m", "langgraph_support", str(database), "ticket-4"],
        cwd=tests,
        env={**os.environ, "PYTHONPATH": str(tests), "SIGNOFF_URL": server.url, "SIGNOFF_KEY": agent_key.key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    routed = next(e for e in agent.events() if e.kind == "routed" and e.request_id)
    asked = agent.get(routed.request_id or "")
    assert asked.action == "refund" and asked.run_id == "ticket-4" and asked.pending
    process.kill()  # the agent dies while it waits for the decision
    process.communicate()
    dana.approve(asked.id, args={"customer": "c_42", "amount": 110})

    with SqliteSaver.from_conn_string(str(database)) as checkpointer:
        graph = example.build_agent(refund_script(), checkpointer)
        result = run_with_approvals(graph, None, config=thread("ticket-4"), client=agent, timeout=WAIT)
    assert tool_message(result, "call_refund_1").text.endswith("refunded 110 to c_42")
    assert result["messages"][-1].content == "All done."
    request = only_request(agent, "ticket-4")
    assert request.id == asked.id and request.outcome is not None and request.outcome.ok


def test_a_timeout_leaves_the_thread_paused_for_a_later_run(agent: Signoff, dana: Signoff) -> None:
    graph = example.build_agent(refund_script(), InMemorySaver())
    with pytest.raises(signoff.ApprovalTimeout) as timed_out:
        run_with_approvals(graph, START_MESSAGE, config=thread("ticket-5"), client=agent, timeout=0.3)
    pending = timed_out.value.request
    assert pending.pending and pending.call_id == "call_refund_1"

    # Without waiting, the pause's decisions are not there yet; once decided, they are the resume command.
    paused = graph.get_state(thread("ticket-5"))
    assert decisions_for(agent, paused.interrupts, thread_id="ticket-5", state=paused.values, wait=False) is None
    dana.reject(pending.id, "a duplicate of ticket 4")
    command = decisions_for(agent, paused.interrupts, thread_id="ticket-5", state=paused.values, wait=False)
    assert command is not None
    (decision,) = command.resume[paused.interrupts[0].id]["decisions"]
    assert decision == {"type": "reject", "message": "Rejected by dana: a duplicate of ticket 4"}

    result = run_with_approvals(graph, None, config=thread("ticket-5"), client=agent, timeout=WAIT)
    assert tool_message(result, "call_refund_1").status == "error"
    assert [r.id for r in agent.list(run_id="ticket-5").items] == [pending.id]


def refund_agent(model: ScriptedChatModel, allowed: list[str], **options: Any) -> Any:
    @tool
    def refund(customer: str, amount: int) -> str:
        """Refund a customer."""
        return f"refunded {amount} to {customer}"

    middleware = HumanInTheLoopMiddleware(interrupt_on={"refund": {"allowed_decisions": allowed}}, **options)
    return create_agent(model, tools=[refund], middleware=[middleware], checkpointer=InMemorySaver())


def two_refunds() -> ScriptedChatModel:
    return ScriptedChatModel(
        script=[
            tool_calls(
                ("refund", {"customer": "c_1", "amount": 10}, "call_a"),
                ("refund", {"customer": "c_2", "amount": 20}, "call_b"),
            ),
            AIMessage(content="Done."),
        ]
    )


def decide_both(dana: Signoff) -> threading.Thread:
    """Approve c_1's refund and reject c_2's, whichever is routed first."""

    def work() -> None:
        decided = 0
        for event in dana.events():
            if event.kind == "routed" and event.request_id:
                request = dana.get(event.request_id)
                if request.args["customer"] == "c_1":
                    dana.approve(request.id)
                else:
                    dana.reject(request.id, "already refunded")
                decided += 1
                if decided == 2:
                    return

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("mode", ["batched", "per_call"])
def test_each_reviewed_call_of_a_turn_is_its_own_request(agent: Signoff, dana: Signoff, mode: str) -> None:
    graph = refund_agent(two_refunds(), ["approve", "reject"], interrupt_mode=mode)
    person = decide_both(dana)
    result = run_with_approvals(graph, START_MESSAGE, config=thread(f"both-{mode}"), client=agent, timeout=WAIT)
    person.join()

    assert tool_message(result, "call_a").content == "refunded 10 to c_1"
    assert tool_message(result, "call_b").content.endswith("Rejected by dana: already refunded")
    requests = {r.call_id: r for r in agent.list(run_id=f"both-{mode}").items}
    assert requests.keys() == {"call_a", "call_b"}
    assert requests["call_a"].tags == ["langgraph", "no-edit"]
    assert requests["call_a"].outcome is not None and requests["call_b"].outcome is None


def test_an_edit_a_review_does_not_allow_is_refused(agent: Signoff, dana: Signoff) -> None:
    model = ScriptedChatModel(
        script=[tool_calls(("refund", {"customer": "c_1", "amount": 10}, "call_e")), AIMessage("ok")]
    )
    graph = refund_agent(model, ["approve", "reject"])
    person = decide_when_pending(
        dana, "refund", lambda api, r: api.approve(r.id, args={"customer": "c_1", "amount": 5})
    )
    result = run_with_approvals(graph, START_MESSAGE, config=thread("no-edit"), client=agent, timeout=WAIT)
    person.join()

    refused = tool_message(result, "call_e")
    assert refused.status == "error" and "refunded" not in refused.text
    assert (
        'Not run: dana approved `refund` only with changed arguments {"amount": 5, "customer": "c_1"}' in refused.text
    )
    assert only_request(agent, "no-edit").outcome is None


def test_a_policy_rule_can_forbid_edits_for_reviews_without_edit(start_server: Any) -> None:
    rule = "rules:\n  - name: langgraph-no-edit\n    when: '\"no-edit\" in tags'\n    route: finance\n    allow_edit: false\n"
    server = start_server(POLICY.replace("rules:\n", rule, 1))
    model = ScriptedChatModel(
        script=[tool_calls(("refund", {"customer": "c_1", "amount": 10}, "call_p")), AIMessage("ok")]
    )
    graph = refund_agent(model, ["approve", "reject"])
    with (
        Signoff(server.url, server.key("agent", "bot").key) as bot,
        Signoff(server.url, server.key("approver", "dana", "--approver", "dana").key) as dana,
    ):
        refusals: list[str] = []

        def edit_then_approve(api: Signoff, request: Request) -> None:
            assert not request.allow_edit
            try:
                api.approve(request.id, args={"customer": "c_1", "amount": 5})
            except signoff.EditNotAllowed as error:
                refusals.append(error.code)
            api.approve(request.id)

        person = decide_when_pending(dana, "refund", edit_then_approve)
        result = run_with_approvals(graph, START_MESSAGE, config=thread("policy"), client=bot, timeout=WAIT)
        person.join()
    assert refusals == ["edit_not_allowed"]
    assert tool_message(result, "call_p").content == "refunded 10 to c_1"


def test_a_respond_only_tool_becomes_a_question(agent: Signoff, dana: Signoff) -> None:
    @tool
    def ask_user(question: str) -> str:
        """Ask the user."""
        raise AssertionError("answered by a person, never run")

    model = ScriptedChatModel(
        script=[tool_calls(("ask_user", {"question": "Which carrier?"}, "call_q")), AIMessage(content="Thanks.")]
    )
    graph = create_agent(
        model,
        tools=[ask_user],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"ask_user": {"allowed_decisions": ["respond"]}})],
        checkpointer=InMemorySaver(),
    )
    person = decide_when_pending(dana, "ask_user", lambda api, r: api.answer(r.id, "DHL"))
    result = run_with_approvals(graph, START_MESSAGE, config=thread("respond"), client=agent, timeout=WAIT)
    person.join()

    assert tool_message(result, "call_q").content == "DHL"
    question = only_request(agent, "respond", "ask_user")
    assert question.kind == "question" and question.question == "Which carrier?" and question.call_id == "call_q"


class ReplicaState(TypedDict, total=False):
    region: str
    deployed: str


def replica_graph() -> Any:
    def choose(state: ReplicaState) -> ReplicaState:
        return {"region": ask_signoff("Which region should the replica go to?", ["eu", "us"])}

    def deploy(state: ReplicaState) -> ReplicaState:
        request = request_signoff("deploy_replica", {"region": state["region"]}, summary="Deploy a replica")
        if request.status != "approved" or request.decision is None:
            return {"deployed": signoff.not_approved_message(request)}
        return {"deployed": f"deployed to {request.decision.args['region']}"}

    builder = StateGraph(ReplicaState)
    builder.add_node("choose", choose)
    builder.add_node("deploy", deploy)
    builder.add_edge(START, "choose")
    builder.add_edge("choose", "deploy")
    builder.add_edge("deploy", END)
    return builder.compile(checkpointer=InMemorySaver())


def test_a_node_asks_a_question_and_gets_the_answer(agent: Signoff, dana: Signoff) -> None:
    person = decide_when_pending(dana, "ask_human", lambda api, r: api.answer(r.id, "eu"))
    person2 = decide_when_pending(dana, "deploy_replica", lambda api, r: api.approve(r.id, args={"region": "eu-west"}))
    result = run_with_approvals(replica_graph(), {}, config=thread("replica-1"), client=agent, timeout=WAIT)
    person.join()
    person2.join()

    assert result == {"region": "eu", "deployed": "deployed to eu-west"}
    question = only_request(agent, "replica-1", "ask_human")
    assert question.kind == "question" and question.options == ["eu", "us"] and question.answer == "eu"
    assert only_request(agent, "replica-1", "deploy_replica").args == {"region": "eu"}


def test_an_unanswered_question_raises_in_the_node(agent: Signoff) -> None:
    graph = replica_graph()
    person = decide_when_pending(agent, "ask_human", lambda api, r: api.cancel(r.id, "not needed"))
    with pytest.raises(signoff.Unanswered, match="cancelled"):
        run_with_approvals(graph, {}, config=thread("replica-2"), client=agent, timeout=WAIT)
    person.join()


def test_an_interrupt_of_another_kind_is_refused(agent: Signoff) -> None:
    def pick(state: ReplicaState) -> ReplicaState:
        return {"region": interrupt("Which region?")}

    builder = StateGraph(ReplicaState)
    builder.add_node("pick", pick)
    builder.add_edge(START, "pick")
    graph = builder.compile(checkpointer=InMemorySaver())
    with pytest.raises(ValueError, match="Signoff cannot answer it: 'Which region\\?'"):
        run_with_approvals(graph, {}, config=thread("plain"), client=agent, timeout=WAIT)
    assert agent.list(run_id="plain").items == []


async def test_the_async_driver(server: Server, agent_key: Key, dana: Signoff) -> None:
    graph = refund_agent(two_refunds(), ["approve", "edit", "reject"], interrupt_mode="per_call")
    person = decide_both(dana)
    async with AsyncSignoff(server.url, agent_key.key) as agent:
        result = await arun_with_approvals(graph, START_MESSAGE, config=thread("async-1"), client=agent, timeout=WAIT)
        person.join()
        requests = {r.call_id: r for r in (await agent.list(run_id="async-1")).items}
    assert tool_message(result, "call_a").content == "refunded 10 to c_1"
    assert tool_message(result, "call_b").status == "error"
    assert requests["call_a"].outcome is not None and requests["call_a"].outcome.ok


def test_the_example_agent_asks_the_manager(agent: Signoff, dana: Signoff) -> None:
    model = ScriptedChatModel(
        script=[
            tool_calls(("ask_manager", {"question": "May I refund shipping too?"}, "call_ask")),
            AIMessage(content="The manager says no."),
        ]
    )
    graph = example.build_agent(model, InMemorySaver())
    person = decide_when_pending(dana, "ask_manager", lambda api, r: api.answer(r.id, "No, only the item."))
    result = run_with_approvals(graph, START_MESSAGE, config=thread("manager"), client=agent, timeout=WAIT)
    person.join()

    assert tool_message(result, "call_ask").content == "No, only the item."
    question = only_request(agent, "manager", "ask_manager")
    assert question.question == "May I refund shipping too?" and question.tags == ["langgraph"]


def readme_block() -> str:
    """The python block of the README's LangChain section, with the scripted model in place of OpenAI's."""
    section = README.read_text().split("## LangChain / LangGraph\n", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)[0]
    swaps = {
        "from langchain_openai import ChatOpenAI\n": "from langgraph_support import readme_script\n",
        'model = ChatOpenAI(model="gpt-4o-mini")\n': "model = readme_script()\n",
    }
    for real, scripted in swaps.items():
        assert real in code
        code = code.replace(real, scripted)
    return code


def test_the_readme_example_runs(server: Server, agent_key: Key, agent: Signoff, dana: Signoff, tmp_path: Path) -> None:
    person = decide_when_pending(dana, "refund", lambda api, r: api.approve(r.id, args={**r.args, "amount": 100}))
    tests = Path(__file__).parent
    done = subprocess.run(
        [sys.executable, "-c", readme_block()],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tests), "SIGNOFF_URL": server.url, "SIGNOFF_KEY": agent_key.key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    person.join()
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Refunded.\n"
    request = only_request(agent, "ticket-7781")
    assert request.outcome is not None and request.outcome.detail["result"].endswith("Refunded 100 to c_42")
