"""Test support: the real `signoff serve` on a fresh SQLite file and a free port, keys and a policy made by the CLI,
and MCP clients (the official `mcp` package) reaching it over stdio (`signoff mcp`) and streamable HTTP (`/mcp`).

The binary is `$SIGNOFF_BIN`, else `${CARGO_TARGET_DIR:-target}/debug/signoff` (scripts/test.sh builds it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parents[2]

POLICY = """\
version: 1
approvers:
  - { id: dana, name: Dana, email: dana@example.com, groups: [ops] }
groups:
  ops: { notify: [dashboard] }
defaults: { route: ops, timeout: 1h, on_timeout: reject }
rules:
  - { name: pings-pass, when: 'action == "ping"', decide: approve }
"""


def signoff_binary() -> Path:
    if os.environ.get("SIGNOFF_BIN"):
        return Path(os.environ["SIGNOFF_BIN"])
    return (REPO / os.environ.get("CARGO_TARGET_DIR", "target")).resolve() / "debug" / "signoff"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A running `signoff serve`, the CLI pointed at its database, and its API for an approver."""

    def __init__(self, directory: Path) -> None:
        self.binary = signoff_binary()
        if not self.binary.is_file():
            pytest.fail(f"no signoff binary at {self.binary}: run scripts/test.sh, or set SIGNOFF_BIN")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "SIGNOFF_DATABASE_URL": f"sqlite://{directory / 'signoff.db'}",
            "SIGNOFF_LISTEN": f"127.0.0.1:{port}",
            "SIGNOFF_PUBLIC_URL": self.url,
            "SIGNOFF_LOG": "warn",
        }
        (directory / "policy.yaml").write_text(POLICY)
        self.cli("policy", "apply", str(directory / "policy.yaml"))
        self.agent_key = self.key("agent", "claude")
        self.approver_key = self.key("approver", "dana", "--approver", "dana")
        self.process = subprocess.Popen(
            [str(self.binary), "serve"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "listening on" in line:
                break
        else:
            pytest.fail(f"signoff serve exited with {self.process.wait()}")
        # Keep reading its output so the pipe never fills.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [str(self.binary), *args], env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def key(self, role: str, name: str, *extra: str) -> str:
        created = json.loads(self.cli("keys", "create", "--role", role, "--name", name, "--json", *extra))
        return str(created["key"])

    def api(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
        """Calls the HTTP API; returns the status and the JSON body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {key}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def decide(self, request_id: str, body: dict[str, Any]) -> Any:
        status, decided = self.api("POST", f"/v1/requests/{request_id}/decision", self.approver_key, body)
        assert status == 200, decided
        return decided

    async def created(self, ready: Callable[[], Any], **fields: Any) -> str:
        """Calls `ready()` once the approver's event stream is open, then returns the id of the request created with
        these `fields` (the one a blocking tool call waits on). The stream replays earlier events first."""
        headers = {"Authorization": f"Bearer {self.approver_key}"}
        async with httpx2.AsyncClient(timeout=30) as http:
            async with http.stream("GET", f"{self.url}/v1/events", headers=headers) as stream:
                assert stream.status_code == 200
                ready()
                kind = None
                async for line in stream.aiter_lines():
                    if line.startswith("event:"):
                        kind = line.removeprefix("event:").strip()
                    elif line.startswith("data:") and kind == "created":
                        event = json.loads(line.removeprefix("data:"))
                        if all(event["data"].get(name) == value for name, value in fields.items()):
                            return str(event["request_id"])
        raise AssertionError(f"the event stream ended before a request with {fields} was created")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    yield running
    running.stop()


def stdio(server: Server, key: str) -> Client:
    """`signoff mcp`, started by the client, calling `server` with `key`."""
    environment = {"SIGNOFF_URL": server.url, "SIGNOFF_KEY": key, "PATH": os.environ.get("PATH", "")}
    return Client(StdioServerParameters(command=str(server.binary), args=["mcp"], env=environment))


def http(server: Server, key: str) -> Client:
    """The server's own `/mcp`, with `key` as the bearer token."""

    @asynccontextmanager
    async def transport() -> AsyncIterator[Any]:
        async with httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30, read=330)
        ) as client:
            async with streamable_http_client(f"{server.url}/mcp", http_client=client) as streams:
                yield streams

    return Client(transport())


TRANSPORTS: dict[str, Callable[[Server, str], Client]] = {"stdio": stdio, "http": http}


@pytest.fixture(params=sorted(TRANSPORTS))
def connect(request: pytest.FixtureRequest, server: Server) -> Callable[[str], AbstractAsyncContextManager[Client]]:
    """Opens an MCP client over this test's transport (stdio, then streamable HTTP) with a key."""
    return lambda key: TRANSPORTS[request.param](server, key)
