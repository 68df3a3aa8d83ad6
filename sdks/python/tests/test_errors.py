"""The SDK has an exception class for every error code the API documents (docs/api.md) and the server defines
(`ErrorCode` in crates/signoff-wire), so a new code without a class fails here."""

from __future__ import annotations

import re

import pytest

import signoff
from signoff.errors import ERROR_CLASSES, error_from_response

from conftest import REPO


def documented_codes() -> dict[str, int]:
    """`code -> status` from the error table of docs/api.md."""
    text = (REPO / "docs" / "api.md").read_text()
    table = text[text.index("| code | status | when |") :]
    table = table[: table.index("\n\n")]
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", table, re.MULTILINE)
    assert len(rows) == table.count("\n") - 1, "every row of the table is read"
    return {code: int(status) for code, status in rows}


def server_codes() -> set[str]:
    """The variants of `ErrorCode`, in the snake_case the server sends."""
    source = (REPO / "crates" / "signoff-wire" / "src" / "lib.rs").read_text()
    body = re.search(r"pub enum ErrorCode \{(.*?)\n\}", source, re.DOTALL)
    assert body is not None
    variants = re.findall(r"^\s+([A-Z][A-Za-z]+),", body.group(1), re.MULTILINE)
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", v).lower() for v in variants}


def test_the_documented_table_and_the_server_agree() -> None:
    assert len(documented_codes()) >= 27
    assert set(documented_codes()) == server_codes()


@pytest.mark.parametrize("code,status", sorted(documented_codes().items()))
def test_every_documented_code_has_its_class(code: str, status: int) -> None:
    assert code in ERROR_CLASSES, f"no SDK class for the API error code {code!r}"
    cls = ERROR_CLASSES[code]
    assert cls.__name__ == "".join(part.capitalize() for part in code.split("_"))
    assert getattr(signoff, cls.__name__) is cls
    error = error_from_response(status, {"error": {"code": code, "message": "m"}})
    assert type(error) is cls and error.code == code and error.status == status and error.message == "m"
    assert isinstance(error, signoff.SignoffError)
    assert isinstance(error, signoff.Conflict) == (status == 409)


def test_details_and_retry_after_are_kept() -> None:
    details = [{"message": "expected number, found string", "path": "$.amount"}]
    error = error_from_response(400, {"error": {"code": "invalid_args", "message": "m", "details": details}})
    assert isinstance(error, signoff.InvalidArgs) and error.details == details
    limited = error_from_response(429, {"error": {"code": "rate_limited", "message": "slow down"}}, retry_after=3)
    assert isinstance(limited, signoff.RateLimited) and limited.retry_after == 3


def test_unknown_codes_and_bodies_still_raise_signoff_errors() -> None:
    newer = error_from_response(409, {"error": {"code": "some_new_conflict", "message": "m"}})
    assert type(newer) is signoff.Conflict and newer.code == "some_new_conflict"
    assert type(error_from_response(418, {"error": {"code": "teapot", "message": "m"}})) is signoff.SignoffError
    assert error_from_response(502, "<html>bad gateway</html>").code == "http_error"
