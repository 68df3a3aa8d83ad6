"""`signoff.webhooks.verify` accepts a real callback from the server and refuses forgeries, old messages, wrong secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from signoff import Signoff, webhooks
from signoff.webhooks import WebhookVerificationError

from conftest import Receiver, free_port


@pytest.fixture
def callback(start_server):
    server = start_server(SIGNOFF_ALLOW_PRIVATE_CALLBACKS="true")
    agent_key = server.key("agent", "refund-bot")
    receiver = Receiver()
    with Signoff(server.url, agent_key.key) as agent:
        # Policy approves lookups at once, so the callback is sent straight away.
        request = agent.create("lookup", {"customer": "c_42"}, callback_url=receiver.url, state={"step": 3})
    headers, body = receiver.received.get(timeout=20)
    receiver.close()
    return request, headers, body, agent_key.webhook_secret, server.key("agent", "other-bot").webhook_secret


def test_a_real_callback_verifies(callback) -> None:
    request, headers, body, secret, _ = callback
    message = webhooks.verify(headers, body, secret)
    assert message["type"] == "request.decided"
    assert message["data"]["id"] == request.id and message["data"]["status"] == "approved"
    assert message["data"]["state"] == {"step": 3}
    assert webhooks.verify({k.upper(): v for k, v in headers.items()}, body.decode(), secret) == message


def test_forgeries_old_messages_and_wrong_secrets_are_refused(callback) -> None:
    _, headers, body, secret, other_secret = callback
    timestamp = int(headers["webhook-timestamp"])
    with pytest.raises(WebhookVerificationError, match="signature"):
        webhooks.verify(headers, body.replace(b'"approved"', b'"rejected"'), secret)
    forged = webhooks.sign(other_secret, headers["webhook-id"], timestamp, body)
    with pytest.raises(WebhookVerificationError, match="signature"):
        webhooks.verify({**headers, "webhook-signature": forged}, body, secret)
    with pytest.raises(WebhookVerificationError, match="signature"):
        webhooks.verify(headers, body, other_secret)
    with pytest.raises(WebhookVerificationError, match="too far"):
        webhooks.verify(headers, body, secret, now=timestamp + webhooks.TOLERANCE_S + 1)
    assert webhooks.verify(headers, body, secret, now=timestamp + webhooks.TOLERANCE_S - 1)["type"] == "request.decided"
    without_id = {k: v for k, v in headers.items() if k.lower() != "webhook-id"}
    with pytest.raises(WebhookVerificationError, match="webhook-id"):
        webhooks.verify(without_id, body, secret)


def test_a_signature_matches_among_several() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"type":"request.decided"}'
    good = webhooks.sign(secret, "msg_1", 1_746_092_463, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1746092463", "webhook-signature": f"v1,AAAA {good}"}
    assert webhooks.verify(headers, body, secret, now=1_746_092_463) == {"type": "request.decided"}


def test_the_example_receiver_handles_a_real_callback(start_server) -> None:
    server = start_server(SIGNOFF_ALLOW_PRIVATE_CALLBACKS="true")
    agent_key = server.key("agent", "refund-bot")
    port = free_port()
    example = Path(__file__).parents[1] / "examples" / "webhook_receiver.py"
    receiver = subprocess.Popen(
        [sys.executable, str(example)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SIGNOFF_WEBHOOK_SECRET": agent_key.webhook_secret, "PORT": str(port)},
    )
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().startswith("listening")
        with Signoff(server.url, agent_key.key) as agent:
            request = agent.create(
                "lookup",
                {"customer": "c_7"},
                callback_url=f"http://127.0.0.1:{port}/signoff/callback",
                state={"conversation": "c-5521"},
            )
        handled = json.loads(receiver.stdout.readline())
        assert handled == {
            "id": request.id,
            "status": "approved",
            "args": {"customer": "c_7"},
            "state": {"conversation": "c-5521"},
        }
    finally:
        receiver.terminate()
        receiver.wait()
