"""The MCP server through the official `mcp` Python client, over stdio (`signoff mcp`) and streamable HTTP (`/mcp`):
approvals with edits, rejections, questions, Claude Code's permission prompts, and failures as tool errors that carry
the API's codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx2
from mcp import Client
from mcp.types import CallToolResult, TextContent

from conftest import Server

Connect = Callable[[str], AbstractAsyncContextManager[Client]]

TOOLS = [
    "approval_prompt",
    "ask_human",
    "cancel_approval",
    "get_approval",
    "report_outcome",
    "request_approval",
]


def structured(result: CallToolResult) -> Any:
    """A success's structured content; its text is the sentence for the model, then the same JSON."""
    assert not result.is_error, result
    sentence, serialized = result.content
    assert isinstance(sentence, TextContent) and isinstance(serialized, TextContent)
    assert sentence.text == result.structured_content["message"]
    assert json.loads(serialized.text) == result.structured_content
    return result.structured_content


def error_of(result: CallToolResult) -> dict[str, Any]:
    """A tool error's body, which is the API's: `{"error": {"code", "message"}}`."""
    assert result.is_error, result
    assert isinstance(result.content[0], TextContent)
    assert json.loads(result.content[0].text) == result.structured_content
    error: dict[str, Any] = result.structured_content["error"]
    assert isinstance(error["message"], str)
    return error


async def prompt_answer(client: Client, arguments: dict[str, Any]) -> Any:
    """Calls `approval_prompt` as Claude Code does, and reads its answer: JSON in a text block."""
    result = await client.call_tool("approval_prompt", arguments)
    assert not result.is_error, result
    assert isinstance(result.content[0], TextContent)
    return json.loads(result.content[0].text)


async def test_the_tools_are_listed(server: Server, connect: Connect) -> None:
    async with connect(server.agent_key) as client:
        listed = await client.list_tools()
        assert sorted(tool.name for tool in listed.tools) == TOOLS
        schemas = {tool.name: tool.input_schema for tool in listed.tools}
        assert schemas["request_approval"]["required"] == ["action"]
        assert schemas["approval_prompt"]["required"] == ["tool_name"]


async def test_an_edited_approval_is_run_with_the_approved_arguments(server: Server, connect: Connect) -> None:
    async with connect(server.agent_key) as client:
        asked = structured(
            await client.call_tool(
                "request_approval",
                {"action": "refund", "args": {"order": "1042", "amount": 120}, "summary": "Refund 1042", "wait_s": 1},
            )
        )
        # The wait bound passed with nobody deciding: a pending id to check later.
        assert asked["status"] == "pending"
        assert "get_approval" in asked["message"]
        assert structured(await client.call_tool("get_approval", {"request_id": asked["request_id"]}))["status"] == (
            "pending"
        )
        waiting = asyncio.create_task(
            client.call_tool("get_approval", {"request_id": asked["request_id"], "wait_s": 60})
        )
        server.decide(asked["request_id"], {"outcome": "approve", "args": {"order": "1042", "amount": 100}})
        approved = structured(await waiting)
        assert approved["status"] == "approved"
        assert approved["message"].startswith("Approved by dana (api) with edited arguments: ")
        assert approved["decision"]["args"] == {"order": "1042", "amount": 100}
        assert approved["decision"]["edited"] is True
        reported = structured(
            await client.call_tool("report_outcome", {"request_id": asked["request_id"], "ok": True, "detail": "done"})
        )
        assert reported["outcome"]["ok"] is True


async def test_a_rejection_reaches_the_waiting_agent_with_its_comment(server: Server, connect: Connect) -> None:
    async with connect(server.agent_key) as client:
        stream_open = asyncio.Event()
        created = asyncio.create_task(server.created(stream_open.set, action="delete_rows"))
        await stream_open.wait()
        waiting = asyncio.create_task(
            client.call_tool("request_approval", {"action": "delete_rows", "args": {"table": "users"}, "wait_s": 30})
        )
        server.decide(await created, {"outcome": "reject", "comment": "Not the users table"})
        rejected = structured(await waiting)
        assert rejected["status"] == "rejected"
        assert "Not the users table" in rejected["message"]
        assert "Do not run it" in rejected["message"]


async def test_an_approval_reaches_the_waiting_agent_with_its_arguments(server: Server, connect: Connect) -> None:
    async with connect(server.agent_key) as client:
        stream_open = asyncio.Event()
        created = asyncio.create_task(server.created(stream_open.set, action="send_email"))
        await stream_open.wait()
        waiting = asyncio.create_task(
            client.call_tool(
                "request_approval", {"action": "send_email", "args": {"to": "c@example.com"}, "wait_s": 30}
            )
        )
        server.decide(await created, {"outcome": "approve", "comment": "Fine"})
        approved = structured(await waiting)
        assert approved["status"] == "approved"
        assert approved["decision"]["args"] == {"to": "c@example.com"}
        assert approved["message"] == "Approved by dana (api). Proceed with the arguments as proposed. Comment: Fine"


async def test_a_question_is_answered(server: Server, connect: Connect) -> None:
    async with connect(server.agent_key) as client:
        asked = structured(
            await client.call_tool("ask_human", {"question": "Which region?", "options": ["eu", "us"], "wait_s": 0})
        )
        status, body = server.api(
            "POST", f"/v1/requests/{asked['request_id']}/answer", server.approver_key, {"text": "us"}
        )
        assert status == 200, body
        answered = structured(await client.call_tool("get_approval", {"request_id": asked["request_id"], "wait_s": 60}))
        assert (answered["status"], answered["decision"]["answer"]) == ("answered", "us")


async def test_permission_prompts_are_allowed_with_edits_and_denied_with_reasons(
    server: Server, connect: Connect
) -> None:
    async with connect(server.agent_key) as client:
        for tool_use_id, verdict in [
            ("toolu_allow", {"outcome": "approve", "args": {"command": "rm -rf build"}}),
            ("toolu_deny", {"outcome": "reject", "comment": "Keep the dist folder"}),
        ]:
            stream_open = asyncio.Event()
            created = asyncio.create_task(server.created(stream_open.set, call_id=tool_use_id))
            await stream_open.wait()
            prompt = {"tool_name": "Bash", "input": {"command": "rm -rf build dist"}, "tool_use_id": tool_use_id}
            answering = asyncio.create_task(prompt_answer(client, prompt))
            request_id = await created
            status, asked = server.api("GET", f"/v1/requests/{request_id}", server.approver_key)
            assert (asked["action"], asked["args"], asked["call_id"]) == ("Bash", prompt["input"], tool_use_id)
            server.decide(request_id, verdict)
            answer = await answering
            if verdict["outcome"] == "approve":
                assert answer == {"behavior": "allow", "updatedInput": {"command": "rm -rf build"}}
            else:
                assert answer["behavior"] == "deny"
                assert "Keep the dist folder" in answer["message"]
        assert await prompt_answer(client, {"tool_name": "ping", "input": {}}) == {
            "behavior": "allow",
            "updatedInput": {},
        }


async def test_failures_are_tool_errors_with_the_api_codes(server: Server, connect: Connect) -> None:
    async with connect(server.agent_key) as client:
        missing = await client.call_tool("get_approval", {"request_id": "0196a3c4-5e2f-7a10-8b3c-4d5e6f708192"})
        assert error_of(missing)["code"] == "not_found"
        assert error_of(await client.call_tool("request_approval", {"summary": "no action"}))["code"] == "bad_request"
        too_long = await client.call_tool("request_approval", {"action": "ping", "wait_s": 301})
        assert error_of(too_long)["code"] == "invalid_request"
    async with connect(server.approver_key) as client:
        refused = await client.call_tool("request_approval", {"action": "ping"})
        assert error_of(refused)["code"] == "forbidden"


async def test_http_needs_an_api_key(server: Server) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={"Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
