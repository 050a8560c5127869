"""The one refusal table and the one refusal handler (``flashpay.api.errors``).

Every refusal enum of every domain is found the way the handler meets it — as the ``reason`` a
``RefusedError`` subclass declares — so a new code without a status, or a new refusal class
without its enum, fails here rather than answering a silent 422.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing
from enum import StrEnum

import httpx
import pytest
from fastapi import FastAPI

import flashpay
from flashpay.api.errors import REFUSAL_STATUS, install_error_handlers, refusal_status
from flashpay.errors import InvariantError, RefusedError, invariant
from flashpay.notify import DeliveryError

pytestmark = pytest.mark.anyio


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def _refusal_classes() -> set[type[RefusedError]]:
    for module in pkgutil.walk_packages(flashpay.__path__, "flashpay."):
        if not module.name.endswith(".__main__"):  # running a CLI is not importing a module
            importlib.import_module(module.name)
    return {c for c in _all_subclasses(RefusedError) if c.__module__.startswith("flashpay.")}


def test_every_refusal_class_declares_its_domain_enum() -> None:
    classes = _refusal_classes()
    assert classes, "no RefusedError subclass found"
    for cls in classes:
        reason = typing.get_type_hints(cls).get("reason")
        assert isinstance(reason, type), cls
        assert issubclass(reason, StrEnum), cls


# Refusals the API never answers with their own code: a card number that does not parse is
# answered as the field's ``invalid_card_number`` by every router that parses one (the reason
# stays in the message), and a card file is read by the ``flashpay issuer enrol`` command only.
NOT_ANSWERED_BY_THE_API = {"CardNumberError", "CardFileError"}


def test_the_table_covers_every_refusal_code() -> None:
    enums = {
        typing.get_type_hints(cls)["reason"]
        for cls in _refusal_classes()
        if cls.__name__ not in NOT_ANSWERED_BY_THE_API
    }
    missing = sorted(
        f"{enum.__module__}.{enum.__name__}.{member.name}"
        for enum in enums
        for member in enum
        if member.value not in REFUSAL_STATUS
    )
    assert missing == []


def test_the_table_holds_only_error_statuses() -> None:
    assert all(400 <= status < 500 for status in REFUSAL_STATUS.values())
    assert refusal_status("a_code_no_domain_has") == 422


class _Refusal(StrEnum):
    THROTTLED = "too_many_attempts"
    CONFLICT = "card_exists"


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/throttled")
    def throttled() -> None:
        raise RefusedError(_Refusal.THROTTLED, "wait", details={"n": 1}, retry_after_seconds=30)

    @app.get("/conflict")
    def conflict() -> None:
        raise RefusedError(_Refusal.CONFLICT, "exists")

    @app.get("/plain-value-error")
    def plain_value_error() -> None:
        raise ValueError("a bug, not a refusal")

    @app.get("/invariant")
    def broken() -> None:
        invariant(False, "the secret internals")

    @app.get("/delivery")
    def delivery() -> None:
        raise DeliveryError("gateway at 10.0.0.1 did not answer")

    return app


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


async def test_a_refusal_takes_its_status_from_the_table_and_says_when_to_retry() -> None:
    response = await _get("/throttled")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    assert response.json() == {
        "error": {
            "code": "too_many_attempts",
            "message": "wait",
            "details": {"n": 1, "retry_after_seconds": 30},
        }
    }
    response = await _get("/conflict")
    assert response.status_code == 409
    assert "Retry-After" not in response.headers


async def test_a_plain_value_error_is_a_bug_not_a_refusal() -> None:
    response = await _get("/plain-value-error")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [("/invariant", 500, "internal_error"), ("/delivery", 503, "notification_failed")],
)
async def test_other_branches_are_mapped_by_type_without_internals(
    path: str, status: int, code: str
) -> None:
    response = await _get(path)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert "secret" not in response.text
    assert "10.0.0.1" not in response.text
    if status == 503:
        assert response.headers["Retry-After"] == "5"


def test_invariant_error_is_a_flashpay_error() -> None:
    with pytest.raises(InvariantError, match="broken"):
        invariant(False, "broken")


def test_invariant_formats_its_message_only_when_it_fails() -> None:
    class Loud:
        def __str__(self) -> str:
            raise AssertionError("formatted although the invariant held")

    invariant(True, "never %s", Loud())  # holds: the value is never turned into text
    with pytest.raises(InvariantError, match=r"^a QR payment is in CNY, not USD$"):
        invariant(False, "a QR payment is in CNY, not %s", "USD")
    with pytest.raises(InvariantError, match=r"^100% sure$"):
        invariant(False, "100% sure")  # no values: the message is taken as it is
