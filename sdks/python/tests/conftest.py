"""Test support: the real `signoff serve` on a fresh SQLite file and a free port, with a policy and keys made by the CLI.

The binary is `$SIGNOFF_BIN`, else `${CARGO_TARGET_DIR:-target}/debug/signoff` (scripts/test.sh builds it); nothing
is built here.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from signoff import Request, Signoff, webhooks

REPO = Path(__file__).resolve().parents[3]

POLICY = """\
version: 1
approvers:
  - { id: dana, name: Finance Director, email: dana@example.com, groups: [finance] }
  - { id: carl, name: Controller, email: carl@example.com, groups: [finance] }
groups:
  finance: { notify: [] }
defaults: { route: finance, timeout: 1h, on_timeout: reject }
rules:
  - name: auto-lookup
    when: action == "lookup"
    decide: approve
  - name: no-wires
    when: action == "wire_money"
    decide: deny
  - name: short-fuse
    when: action == "short_fuse"
    route: finance
    timeout: 1s
    on_timeout: fail
  - name: short-fuse-reject
    when: action == "short_fuse_reject"
    route: finance
    timeout: 1s
    on_timeout: reject
"""


def signoff_binary() -> Path:
    if os.environ.get("SIGNOFF_BIN"):
        return Path(os.environ["SIGNOFF_BIN"])
    return (REPO / os.environ.get("CARGO_TARGET_DIR", "target")).resolve() / "debug" / "signoff"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Key:
    key: str
    webhook_secret: str | None


class Server:
    """A running `signoff serve` and the CLI pointed at its database."""

    def __init__(self, directory: Path, policy: str, settings: dict[str, str]) -> None:
        binary = signoff_binary()
        if not binary.is_file():
            pytest.fail(f"no signoff binary at {binary}: run scripts/test.sh, or set SIGNOFF_BIN")
        self.binary = binary
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "SIGNOFF_DATABASE_URL": f"sqlite://{directory / 'signoff.db'}",
            "SIGNOFF_LISTEN": f"127.0.0.1:{port}",
            "SIGNOFF_PUBLIC_URL": self.url,
            "SIGNOFF_LOG": "warn",
            **settings,
        }
        (directory / "policy.yaml").write_text(policy)
        self.cli("policy", "apply", str(directory / "policy.yaml"))
        self.process = subprocess.Popen(
            [str(binary), "serve"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
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

    def key(self, role: str, name: str, *extra: str) -> Key:
        created = json.loads(self.cli("keys", "create", "--role", role, "--name", name, "--json", *extra))
        return Key(created["key"], created["webhook_secret"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with a given policy and settings (SIGNOFF_* variables); all are stopped after the test."""
    servers: list[Server] = []

    def start(policy: str = POLICY, **settings: str) -> Server:
        directory = tmp_path / f"server-{len(servers)}"
        directory.mkdir()
        servers.append(Server(directory, policy, settings))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server()


@pytest.fixture
def agent_key(server: Server) -> Key:
    return server.key("agent", "refund-bot")


@pytest.fixture
def agent(server: Server, agent_key: Key) -> Iterator[Signoff]:
    with Signoff(server.url, agent_key.key) as client:
        yield client
        join_deciders()


@pytest.fixture
def dana(server: Server) -> Iterator[Signoff]:
    with Signoff(server.url, server.key("approver", "dana-laptop", "--approver", "dana").key) as client:
        yield client
        join_deciders()


_deciders: list[threading.Thread] = []


def join_deciders() -> None:
    """Waits for the test's `decide_when_pending` threads, before the clients they use are closed: a decision the
    waiting agent already saw may still be reading its own answer."""
    while _deciders:
        _deciders.pop().join(10)


def decide_when_pending(
    approver: Signoff, action: str, decide: Callable[[Signoff, Request], object]
) -> threading.Thread:
    """In a thread: wait for the first pending request for `action`, then `decide(approver, request)`.

    Waiting is by the event stream (no sleeps): the thread reads events until a `routed` one for that action.
    """

    def work() -> None:
        events = approver.events()
        try:
            for event in events:
                if event.kind == "routed" and event.request_id:
                    request = approver.get(event.request_id)
                    if request.action == action and request.pending:
                        decide(approver, request)
                        return
        finally:
            # The test may already have closed the client the stream came from: ending the stream then is no error.
            with contextlib.suppress(Exception):
                events.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    _deciders.append(thread)
    return thread


class TcpProxy:
    """A TCP proxy in front of the server whose open connections the test can cut (`cut()`), to drop a stream."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self.accepted = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                self.connections += [client, upstream]
                self.accepted += 1
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Break every open connection, as a network failure would."""
        with self.lock:
            connections, self.connections = self.connections, []
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


class Receiver:
    """A local HTTP endpoint that keeps each callback's headers and raw body."""

    def __init__(self) -> None:
        received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/signoff/callback"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def message(self, secret: str) -> dict[str, Any]:
        """The next callback, verified."""
        headers, body = self.received.get(timeout=20)
        return webhooks.verify(headers, body, secret)

    def close(self) -> None:
        self.http.shutdown()
