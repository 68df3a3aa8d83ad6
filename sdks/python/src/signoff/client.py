"""`Signoff` and `AsyncSignoff`: the HTTP API as typed methods, with idempotent creates and careful retries.

Both clients describe each call the same way (`_Call`, built by `_calls`) and differ only in how they send it.

Retries (up to `max_retries`, exponential backoff with jitter, at least the server's `Retry-After`):

- every call is retried when it never reached the server: a connection that could not be opened, `429 rate_limited`
  and `503 too_many_connections` (both answered before the server looks at the call);
- calls that are safe to repeat are also retried after a broken connection, a read timeout, and `500`, `502`, `503`
  and `504`: every GET (`get`, `list`, `wait`, `request_events`, `events`) and `create`, which always carries an
  idempotency key, so a repeat returns the request the first attempt made;
- `decide`, `answer`, `confirm`, `flag`, `cancel` and `report_outcome` are not repeated after the server may have
  acted on them: a second attempt could only answer `409`, hiding the first one's result. Their errors reach you as they are.
"""

from __future__ import annotations

import asyncio
import builtins
import math
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from .errors import ConnectionFailed, RateLimited, SignoffError, TooManyConnections, error_from_response
from .models import JSON, Event, Page, Request

if TYPE_CHECKING:
    from .approval import OnReject

__all__ = ["Signoff", "AsyncSignoff", "DEFAULT_URL"]

DEFAULT_URL = "http://127.0.0.1:8700"
USER_AGENT = "signoff-python/0.1.0"
MAX_WAIT_S = 300
"""The longest single long-poll the server accepts; `wait` loops over calls of at most this long."""

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Call:
    """One API call, described independently of the transport that sends it."""

    method: Literal["GET", "POST"]
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    repeatable: bool = False
    """Safe to send again after the server may have seen it (see the module's docstring)."""
    timeout: float | None = None


def _segment(request_id: str) -> str:
    """A request id as one path segment, whatever it holds (a malformed id is then the server's `404`)."""
    return quote(str(request_id), safe="")


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class _calls:
    """Builders of every call, shared by both clients."""

    @staticmethod
    def create(body: dict[str, Any], idempotency_key: str | None) -> _Call:
        headers = {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        elif not (body.get("run_id") and body.get("call_id")):
            # No key of the caller's: one per call, reused by this call's retries, so a retry never duplicates.
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return _Call("POST", "/v1/requests", body=_drop_none(body), headers=headers, repeatable=True)

    @staticmethod
    def get(request_id: str) -> _Call:
        return _Call("GET", f"/v1/requests/{_segment(request_id)}", repeatable=True)

    @staticmethod
    def list(params: dict[str, Any]) -> _Call:
        return _Call("GET", "/v1/requests", params=_drop_none(params), repeatable=True)

    @staticmethod
    def wait(request_id: str, timeout_s: int) -> _Call:
        return _Call(
            "GET",
            f"/v1/requests/{_segment(request_id)}/wait",
            params={"timeout_s": timeout_s},
            repeatable=True,
            timeout=timeout_s + 30,
        )

    @staticmethod
    def decide(request_id: str, body: dict[str, Any]) -> _Call:
        return _Call("POST", f"/v1/requests/{_segment(request_id)}/decision", body=_drop_none(body))

    @staticmethod
    def answer(request_id: str, text: str) -> _Call:
        return _Call("POST", f"/v1/requests/{_segment(request_id)}/answer", body={"text": text})

    @staticmethod
    def confirm(request_id: str, comment: str | None) -> _Call:
        return _Call("POST", f"/v1/requests/{_segment(request_id)}/confirm", body=_drop_none({"comment": comment}))

    @staticmethod
    def flag(request_id: str, reason: str, comment: str | None, undo: bool) -> _Call:
        body = _drop_none({"reason": reason, "comment": comment, "undo": undo})
        return _Call("POST", f"/v1/requests/{_segment(request_id)}/flag", body=body)

    @staticmethod
    def cancel(request_id: str, reason: str | None) -> _Call:
        return _Call("POST", f"/v1/requests/{_segment(request_id)}/cancel", body=_drop_none({"reason": reason}))

    @staticmethod
    def report_outcome(request_id: str, ok: bool, detail: JSON) -> _Call:
        return _Call(
            "POST", f"/v1/requests/{_segment(request_id)}/outcome", body=_drop_none({"ok": ok, "detail": detail})
        )

    @staticmethod
    def request_events(request_id: str) -> _Call:
        return _Call("GET", f"/v1/requests/{_segment(request_id)}/events", repeatable=True)


@dataclass
class _Retry:
    """When to try a call again, and after how long."""

    max_retries: int
    base_delay: float = 0.25
    max_delay: float = 8.0

    def _backoff(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2.0**attempt) * random.uniform(0.5, 1.0)

    def after_exception(self, call: _Call, exc: httpx.TransportError, attempt: int) -> float | None:
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if attempt >= self.max_retries or not (never_sent or call.repeatable):
            return None
        return self._backoff(attempt)

    def after_error(self, call: _Call, error: SignoffError, attempt: int) -> float | None:
        if attempt >= self.max_retries:
            return None
        if isinstance(error, RateLimited | TooManyConnections):
            return max(error.retry_after or 0.0, self._backoff(attempt))
        if call.repeatable and error.status in (500, 502, 503, 504):
            return self._backoff(attempt)
        return None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _error(response: httpx.Response) -> SignoffError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_from_response(response.status_code, body, _retry_after(response))


class _SSEDecoder:
    """Turns the lines of a `text/event-stream` into events, remembering the last event id."""

    def __init__(self, last_id: str | None) -> None:
        self.last_id = last_id
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> Event | None:
        if line == "":
            data, self._data = self._data, []
            if self._id is not None:
                self.last_id, self._id = self._id, None
            return Event.model_validate_json("\n".join(data)) if data else None
        if line.startswith(":"):
            return None  # a comment: the server's heartbeat
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None


def _stream_headers(last_id: str | None) -> dict[str, str]:
    return {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id is not None else {})}


_STREAM_TIMEOUT = httpx.Timeout(10.0, read=45.0)  # the server sends a heartbeat every 15 s


class _Base:
    def __init__(self, url: str | None, key: str | None, max_retries: int) -> None:
        url = url or os.environ.get("SIGNOFF_URL") or DEFAULT_URL
        key = key or os.environ.get("SIGNOFF_KEY")
        if not key:
            raise ValueError("no API key: pass key=... or set SIGNOFF_KEY")
        self.url = url.rstrip("/")
        self._key = key
        self._retry = _Retry(max_retries)
        self._headers = {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, key='{self._key[:9]}...')"

    @staticmethod
    def _create_body(action: str, args: dict[str, JSON] | None, fields: dict[str, Any]) -> dict[str, Any]:
        return {"action": action, "args": args, **fields}

    @staticmethod
    def _question_body(question: str, options: builtins.list[str] | None, fields: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "question", "question": question, "options": options, **fields}

    @staticmethod
    def _wait_chunk(deadline: float | None) -> int:
        if deadline is None:
            return MAX_WAIT_S
        return max(0, min(MAX_WAIT_S, math.ceil(deadline - time.monotonic())))


class Signoff(_Base):
    """A blocking client. Configured by arguments, else `SIGNOFF_URL` (default `http://127.0.0.1:8700`) and `SIGNOFF_KEY`.

    `timeout` bounds each call in seconds (`wait` and `events` set their own); `max_retries` is how often a call is
    tried again (see the module's docstring for which calls, and when). Use it as a context manager, or call
    `close()`, to release its connections. It may be shared between threads.
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(url, key, max_retries)
        self._http = http_client or httpx.Client(timeout=timeout)

    def __enter__(self) -> Signoff:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method,
                    self.url + call.path,
                    params=call.params,
                    json=call.body,
                    headers={**self._headers, **call.headers},
                    timeout=call.timeout if call.timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as exc:
                delay = self._retry.after_exception(call, exc, attempt)
                if delay is None:
                    raise ConnectionFailed(f"{call.method} {call.path}: {exc!r}") from exc
            else:
                if response.is_success:
                    return response.json()
                error = _error(response)
                delay = self._retry.after_error(call, error, attempt)
                if delay is None:
                    raise error
            time.sleep(delay)
            attempt += 1

    def create(
        self,
        action: str,
        args: dict[str, JSON] | None = None,
        *,
        summary: str | None = None,
        reasoning: str | None = None,
        context: dict[str, JSON] | None = None,
        confidence: float | None = None,
        tags: list[str] | None = None,
        mode: Literal["pre", "post"] | None = None,
        run_id: str | None = None,
        call_id: str | None = None,
        callback_url: str | None = None,
        state: dict[str, JSON] | None = None,
        timeout_s: int | None = None,
        revises: str | None = None,
        idempotency_key: str | None = None,
    ) -> Request:
        """Ask for approval. Policy places the request at once, so check `status`: it may already be decided.

        The call is idempotent: with `idempotency_key`, that key; else with `run_id` and `call_id`, that pair;
        else a fresh UUID per call, reused by this call's own retries.
        """
        body = self._create_body(
            action,
            args,
            dict(
                summary=summary,
                reasoning=reasoning,
                context=context,
                confidence=confidence,
                tags=tags,
                mode=mode,
                run_id=run_id,
                call_id=call_id,
                callback_url=callback_url,
                state=state,
                timeout_s=timeout_s,
                revises=revises,
            ),
        )
        return Request.model_validate(self._send(_calls.create(body, idempotency_key)))

    def get(self, request_id: str) -> Request:
        return Request.model_validate(self._send(_calls.get(request_id)))

    def list(
        self,
        *,
        status: str | None = None,
        action: str | None = None,
        group: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Request]:
        """One page of requests, newest first; pass `next_cursor` as `cursor` for the next page."""
        params = dict(status=status, action=action, group=group, run_id=run_id, limit=limit, cursor=cursor)
        return Page[Request].model_validate(self._send(_calls.list(params)))

    def wait(self, request_id: str, timeout: float | None = None) -> Request:
        """Block until the request is decided, or `timeout` seconds pass (then it is returned still pending).

        With no timeout, waits until the request's deadline decides it at the latest.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            request = Request.model_validate(self._send(_calls.wait(request_id, self._wait_chunk(deadline))))
            if not request.pending or (deadline is not None and time.monotonic() >= deadline):
                return request

    def decide(
        self,
        request_id: str,
        outcome: Literal["approve", "reject"],
        *,
        comment: str | None = None,
        reason: str | None = None,
        args: dict[str, JSON] | None = None,
    ) -> Request:
        """Approve (optionally with edited `args`) or reject (a `comment` is required), as the key's person."""
        body = {"outcome": outcome, "comment": comment, "reason": reason, "args": args}
        return Request.model_validate(self._send(_calls.decide(request_id, body)))

    def approve(self, request_id: str, *, comment: str | None = None, args: dict[str, JSON] | None = None) -> Request:
        return self.decide(request_id, "approve", comment=comment, args=args)

    def reject(self, request_id: str, comment: str, *, reason: str | None = None) -> Request:
        return self.decide(request_id, "reject", comment=comment, reason=reason)

    def ask(
        self,
        question: str,
        options: builtins.list[str] | None = None,
        *,
        action: str = "ask_human",
        summary: str | None = None,
        context: dict[str, JSON] | None = None,
        tags: builtins.list[str] | None = None,
        run_id: str | None = None,
        call_id: str | None = None,
        callback_url: str | None = None,
        state: dict[str, JSON] | None = None,
        timeout_s: int | None = None,
        idempotency_key: str | None = None,
    ) -> Request:
        """Ask a person a question (a `kind: question` request); `options`, if given, are the only answers accepted.

        Idempotent like `create`. Policy routes it like any request, but only a person answers it: see `answer`.
        """
        body = self._question_body(
            question,
            options,
            dict(
                action=action,
                summary=summary,
                context=context,
                tags=tags,
                run_id=run_id,
                call_id=call_id,
                callback_url=callback_url,
                state=state,
                timeout_s=timeout_s,
            ),
        )
        return Request.model_validate(self._send(_calls.create(body, idempotency_key)))

    def answer(self, request_id: str, text: str) -> Request:
        """Answer a question, as the key's person (a member of its group); the first answer ends it."""
        return Request.model_validate(self._send(_calls.answer(request_id, text)))

    def ask_human(
        self,
        question: str,
        options: builtins.list[str] | None = None,
        *,
        timeout: float | None = None,
        action: str = "ask_human",
        run_id: str | None = None,
        call_id: str | None = None,
        context: dict[str, JSON] | None = None,
    ) -> str:
        """`signoff.ask_human` with this client: ask, wait, and return the answer's text."""
        from .questions import ask_human

        return ask_human(
            question,
            options,
            timeout=timeout,
            client=self,
            action=action,
            run_id=run_id,
            call_id=call_id,
            context=context,
        )

    def confirm(self, request_id: str, *, comment: str | None = None) -> Request:
        """Confirm a pending sampled review, as the key's person: it is approved, with `review.verdict` `confirmed`."""
        return Request.model_validate(self._send(_calls.confirm(request_id, comment)))

    def flag(self, request_id: str, reason: str, *, comment: str | None = None, undo: bool = False) -> Request:
        """Flag what the agent did, as the key's person: a pending sampled review is rejected; a request policy let
        through keeps its decision and records a miss. The agent gets a signed `request.flagged` callback."""
        return Request.model_validate(self._send(_calls.flag(request_id, reason, comment, undo)))

    def cancel(self, request_id: str, reason: str | None = None) -> Request:
        return Request.model_validate(self._send(_calls.cancel(request_id, reason)))

    def report_outcome(self, request_id: str, ok: bool, detail: JSON = None) -> Request:
        """Record what happened after executing (or failing to); once per request."""
        return Request.model_validate(self._send(_calls.report_outcome(request_id, ok, detail)))

    def request_events(self, request_id: str) -> builtins.list[Event]:
        """The request's timeline: its audit events, oldest first."""
        return [Event.model_validate(e) for e in self._send(_calls.request_events(request_id))]

    def events(self, after: int | None = None) -> Iterator[Event]:
        """Every event this key may see, live, from after `after` (default: the start of the log).

        A dropped connection is resumed with `Last-Event-ID`, so no event is lost or repeated. The iterator ends
        only by an error (after `max_retries` failed reconnections in a row) or when you stop iterating.
        """
        decoder = _SSEDecoder(None if after is None else str(after))
        call = _Call("GET", "/v1/events", repeatable=True)
        attempt = 0
        while True:
            try:
                with self._http.stream(
                    "GET",
                    self.url + call.path,
                    headers={**self._headers, **_stream_headers(decoder.last_id)},
                    timeout=_STREAM_TIMEOUT,
                ) as response:
                    if not response.is_success:
                        response.read()
                        raise _error(response)
                    for line in response.iter_lines():
                        event = decoder.feed(line)
                        if event is not None:
                            attempt = 0
                            yield event
                delay = self._retry.after_exception(call, httpx.RemoteProtocolError("stream ended"), attempt)
            except httpx.TransportError as exc:
                delay = self._retry.after_exception(call, exc, attempt)
                if delay is None:
                    raise ConnectionFailed(f"GET /v1/events: {exc!r}") from exc
            except SignoffError as error:
                delay = self._retry.after_error(call, error, attempt)
                if delay is None:
                    raise
            if delay is None:
                raise ConnectionFailed("GET /v1/events: the stream kept ending")
            time.sleep(delay)
            attempt += 1

    def require_approval(
        self,
        action: str | None = None,
        *,
        summary: str | Callable[..., str] | None = None,
        timeout: float | None = None,
        on_reject: OnReject = "return",
    ) -> Callable[[F], F]:
        """`signoff.require_approval` bound to this client (for plain, not async, functions)."""
        from .approval import require_approval

        return require_approval(action, summary=summary, timeout=timeout, on_reject=on_reject, client=self)


class AsyncSignoff(_Base):
    """The asyncio client: the same methods as `Signoff`, awaited; `events` is an async iterator."""

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(url, key, max_retries)
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> AsyncSignoff:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call) -> Any:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    self.url + call.path,
                    params=call.params,
                    json=call.body,
                    headers={**self._headers, **call.headers},
                    timeout=call.timeout if call.timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as exc:
                delay = self._retry.after_exception(call, exc, attempt)
                if delay is None:
                    raise ConnectionFailed(f"{call.method} {call.path}: {exc!r}") from exc
            else:
                if response.is_success:
                    return response.json()
                error = _error(response)
                delay = self._retry.after_error(call, error, attempt)
                if delay is None:
                    raise error
            await asyncio.sleep(delay)
            attempt += 1

    async def create(
        self,
        action: str,
        args: dict[str, JSON] | None = None,
        *,
        summary: str | None = None,
        reasoning: str | None = None,
        context: dict[str, JSON] | None = None,
        confidence: float | None = None,
        tags: list[str] | None = None,
        mode: Literal["pre", "post"] | None = None,
        run_id: str | None = None,
        call_id: str | None = None,
        callback_url: str | None = None,
        state: dict[str, JSON] | None = None,
        timeout_s: int | None = None,
        revises: str | None = None,
        idempotency_key: str | None = None,
    ) -> Request:
        """See `Signoff.create`."""
        body = self._create_body(
            action,
            args,
            dict(
                summary=summary,
                reasoning=reasoning,
                context=context,
                confidence=confidence,
                tags=tags,
                mode=mode,
                run_id=run_id,
                call_id=call_id,
                callback_url=callback_url,
                state=state,
                timeout_s=timeout_s,
                revises=revises,
            ),
        )
        return Request.model_validate(await self._send(_calls.create(body, idempotency_key)))

    async def get(self, request_id: str) -> Request:
        return Request.model_validate(await self._send(_calls.get(request_id)))

    async def list(
        self,
        *,
        status: str | None = None,
        action: str | None = None,
        group: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Request]:
        params = dict(status=status, action=action, group=group, run_id=run_id, limit=limit, cursor=cursor)
        return Page[Request].model_validate(await self._send(_calls.list(params)))

    async def wait(self, request_id: str, timeout: float | None = None) -> Request:
        """See `Signoff.wait`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            request = Request.model_validate(await self._send(_calls.wait(request_id, self._wait_chunk(deadline))))
            if not request.pending or (deadline is not None and time.monotonic() >= deadline):
                return request

    async def decide(
        self,
        request_id: str,
        outcome: Literal["approve", "reject"],
        *,
        comment: str | None = None,
        reason: str | None = None,
        args: dict[str, JSON] | None = None,
    ) -> Request:
        body = {"outcome": outcome, "comment": comment, "reason": reason, "args": args}
        return Request.model_validate(await self._send(_calls.decide(request_id, body)))

    async def approve(
        self, request_id: str, *, comment: str | None = None, args: dict[str, JSON] | None = None
    ) -> Request:
        return await self.decide(request_id, "approve", comment=comment, args=args)

    async def reject(self, request_id: str, comment: str, *, reason: str | None = None) -> Request:
        return await self.decide(request_id, "reject", comment=comment, reason=reason)

    async def ask(
        self,
        question: str,
        options: builtins.list[str] | None = None,
        *,
        action: str = "ask_human",
        summary: str | None = None,
        context: dict[str, JSON] | None = None,
        tags: builtins.list[str] | None = None,
        run_id: str | None = None,
        call_id: str | None = None,
        callback_url: str | None = None,
        state: dict[str, JSON] | None = None,
        timeout_s: int | None = None,
        idempotency_key: str | None = None,
    ) -> Request:
        """Ask a person a question (a `kind: question` request); `options`, if given, are the only answers accepted.

        Idempotent like `create`. Policy routes it like any request, but only a person answers it: see `answer`.
        """
        body = self._question_body(
            question,
            options,
            dict(
                action=action,
                summary=summary,
                context=context,
                tags=tags,
                run_id=run_id,
                call_id=call_id,
                callback_url=callback_url,
                state=state,
                timeout_s=timeout_s,
            ),
        )
        return Request.model_validate(await self._send(_calls.create(body, idempotency_key)))

    async def answer(self, request_id: str, text: str) -> Request:
        """Answer a question, as the key's person (a member of its group); the first answer ends it."""
        return Request.model_validate(await self._send(_calls.answer(request_id, text)))

    async def ask_human(
        self,
        question: str,
        options: builtins.list[str] | None = None,
        *,
        timeout: float | None = None,
        action: str = "ask_human",
        run_id: str | None = None,
        call_id: str | None = None,
        context: dict[str, JSON] | None = None,
    ) -> str:
        """`signoff.ask_human_async` with this client: ask, wait, and return the answer's text."""
        from .questions import ask_human_async

        return await ask_human_async(
            question,
            options,
            timeout=timeout,
            client=self,
            action=action,
            run_id=run_id,
            call_id=call_id,
            context=context,
        )

    async def confirm(self, request_id: str, *, comment: str | None = None) -> Request:
        """Confirm a pending sampled review, as the key's person: it is approved, with `review.verdict` `confirmed`."""
        return Request.model_validate(await self._send(_calls.confirm(request_id, comment)))

    async def flag(self, request_id: str, reason: str, *, comment: str | None = None, undo: bool = False) -> Request:
        """Flag what the agent did, as the key's person (see `Signoff.flag`)."""
        return Request.model_validate(await self._send(_calls.flag(request_id, reason, comment, undo)))

    async def cancel(self, request_id: str, reason: str | None = None) -> Request:
        return Request.model_validate(await self._send(_calls.cancel(request_id, reason)))

    async def report_outcome(self, request_id: str, ok: bool, detail: JSON = None) -> Request:
        return Request.model_validate(await self._send(_calls.report_outcome(request_id, ok, detail)))

    async def request_events(self, request_id: str) -> builtins.list[Event]:
        return [Event.model_validate(e) for e in await self._send(_calls.request_events(request_id))]

    async def events(self, after: int | None = None) -> AsyncIterator[Event]:
        """See `Signoff.events`."""
        decoder = _SSEDecoder(None if after is None else str(after))
        call = _Call("GET", "/v1/events", repeatable=True)
        attempt = 0
        while True:
            try:
                async with self._http.stream(
                    "GET",
                    self.url + call.path,
                    headers={**self._headers, **_stream_headers(decoder.last_id)},
                    timeout=_STREAM_TIMEOUT,
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        raise _error(response)
                    async for line in response.aiter_lines():
                        event = decoder.feed(line)
                        if event is not None:
                            attempt = 0
                            yield event
                delay = self._retry.after_exception(call, httpx.RemoteProtocolError("stream ended"), attempt)
            except httpx.TransportError as exc:
                delay = self._retry.after_exception(call, exc, attempt)
                if delay is None:
                    raise ConnectionFailed(f"GET /v1/events: {exc!r}") from exc
            except SignoffError as error:
                delay = self._retry.after_error(call, error, attempt)
                if delay is None:
                    raise
            if delay is None:
                raise ConnectionFailed("GET /v1/events: the stream kept ending")
            await asyncio.sleep(delay)
            attempt += 1

    def require_approval(
        self,
        action: str | None = None,
        *,
        summary: str | Callable[..., str] | None = None,
        timeout: float | None = None,
        on_reject: OnReject = "return",
    ) -> Callable[[F], F]:
        """`signoff.require_approval` bound to this client (for async functions)."""
        from .approval import require_approval

        return require_approval(action, summary=summary, timeout=timeout, on_reject=on_reject, client=self)
