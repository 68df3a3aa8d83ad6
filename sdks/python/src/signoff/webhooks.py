"""Verify Signoff's callbacks, signed per Standard Webhooks (https://www.standardwebhooks.com/).

A callback carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,<base64>`, possibly
several separated by spaces): the HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the bytes of the agent key's
`whsec_...` secret. Verify the raw body you received, before parsing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["verify", "sign", "WebhookVerificationError", "TOLERANCE_S"]

TOLERANCE_S = 300
"""How far (seconds) a callback's timestamp may be from the receiver's clock, either way."""


class Headers(Protocol):
    """Any collection of headers with `items()`: a dict, `http.server`'s headers, a framework's request headers."""

    def items(self) -> Iterable[tuple[str, str]]: ...


class WebhookVerificationError(Exception):
    """The callback is not authentic (wrong signature or secret) or not fresh (timestamp out of tolerance)."""


def _secret_bytes(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is `whsec_` followed by base64") from exc


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for a message (useful to test a receiver)."""
    mac = hmac.new(_secret_bytes(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(headers: Headers, body: bytes | str, secret: str, *, now: float | None = None) -> dict[str, Any]:
    """Check a callback's signature and freshness; return its parsed body (`{"type", "timestamp", "data"}`).

    `headers` may be any mapping or headers object (header names are matched case-insensitively). Raises
    `WebhookVerificationError` for a missing header, a timestamp more than 5 minutes away, or no matching signature.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        webhook_id = lowered["webhook-id"]
        timestamp_text = lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from None
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        raise WebhookVerificationError("webhook-timestamp is too far from now")
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, webhook_id, timestamp, raw).removeprefix("v1,")
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            message: dict[str, Any] = json.loads(raw)
            return message
    raise WebhookVerificationError("no matching signature")
