"""Exactly once across crashes: a retried POST never does its effect twice (issue 12).

Deterministic fault points, over the real ASGI app on SQLite and PostgreSQL. The first try runs
in a second app over the same database (another worker, as it were) whose process "dies" at one
point; the retry goes to the normal app with the same Idempotency-Key and the same body:

- ``answer_lost``: the effect committed, then the process died before the answer was stored;
- ``answer_write_rolled_back``: it died while writing the answer (the write never committed);
- ``ledger_posted``: it died between the ledger post and the record's completion.

In every case the retry must answer with the one effect (201, the same id the database holds,
completed) and the money must have moved exactly once. Before effects were bound to keys, the
first two ran the route again after the lease and the third at once: two payments, two postings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from flashpay.api import idempotency as api_idempotency
from flashpay.api.idempotency import IDEMPOTENCY_LEASE_SECONDS, IdempotencyStore
from flashpay.api.models import idempotency_keys
from flashpay.app import create_platform_app
from flashpay.ledger import Transfer
from flashpay.payments.models import p2p_transfers, payment_refunds, payments

pytestmark = pytest.mark.anyio

FAULTS = ["answer_lost", "answer_write_rolled_back", "ledger_posted"]
OPERATIONS = ["scan", "collect", "transfer", "refund", "capture"]


class DiedError(RuntimeError):
    """The first try's process stops here."""


class PostThenDie:
    """The real ledger, except that the first purchase/P2P post dies right after it commits."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.armed = True

    def create_transfers(self, transfers: list[Transfer], **kwargs: Any) -> Any:
        results = self._real.create_transfers(transfers, **kwargs)
        if self.armed:
            self.armed = False
            raise DiedError("killed between the ledger post and the completion")
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@dataclasses.dataclass
class Operation:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    count: Callable[[], int]  # how many effects of this kind the database holds
    balance: Callable[[], Awaitable[str]]  # the payer's available balance


async def _operation(world: Any, name: str) -> Operation:
    person, card_id = await world.member_with_card("Payer")
    merchant = await world.merchant()

    def rows(table: sa.Table, *where: Any) -> Callable[[], int]:
        def count() -> int:
            with world.platform.engine.connect() as connection:
                query = sa.select(sa.func.count()).select_from(table).where(*where)
                return int(connection.execute(query).scalar_one())

        return count

    async def balance() -> str:
        return str((await world.balance(person, card_id))["available"])

    if name == "scan":
        payload = await world.static_code(merchant)
        body = {"payload": payload, "card_id": card_id, "amount": "12.34", "pin": "135790"}
        return Operation("/v1/payments/qr", body, person.headers, rows(payments), balance)
    if name in ("collect", "capture"):
        code = await world.payment_code(person, card_id)
        body = {"code": code["numeric"], "amount": "23.45"}
        if name == "collect":
            return Operation(
                "/v1/merchant/payments", body, merchant["headers"], rows(payments), balance
            )
        held = await world.collect(merchant, code["numeric"], "23.45", capture=False)
        assert held.status_code == 201, held.text
        path = f"/v1/merchant/payments/{held.json()['id']}/capture"
        completed = rows(payments, payments.c.status == "completed")
        return Operation(path, {"amount": "20.00"}, merchant["headers"], completed, balance)
    if name == "transfer":
        friend, _ = await world.member_with_card("Friend", bank="ICBC", prefix="622202")
        body = {"from_card_id": card_id, "amount": "34.56", "to_phone": friend.phone,
                "pin": "135790"}  # fmt: skip
        return Operation("/v1/transfers", body, person.headers, rows(p2p_transfers), balance)
    payload = await world.static_code(merchant)
    paid = await world.pay(person, payload, card_id, amount="45.67")
    assert paid.status_code == 201, paid.text
    path = f"/v1/merchant/payments/{paid.json()['id']}/refunds"
    return Operation(path, {"amount": "5.00"}, merchant["headers"], rows(payment_refunds), balance)


def _arm(fault: str, monkeypatch: pytest.MonkeyPatch, world: Any) -> dict[str, Any]:
    """The fault of the first try: the platform its app runs on, and the patch it dies by."""
    platform = world.platform
    if fault == "ledger_posted":
        return {"platform": dataclasses.replace(platform, ledger=PostThenDie(platform.ledger))}
    real_complete = IdempotencyStore.complete
    state = {"armed": True}

    def complete(self: IdempotencyStore, **kwargs: Any) -> None:
        if not state["armed"]:
            real_complete(self, **kwargs)
            return
        state["armed"] = False
        if fault == "answer_write_rolled_back":
            with platform.engine.begin() as connection:  # the write starts, and never commits
                connection.execute(
                    idempotency_keys.update()
                    .where(idempotency_keys.c.idempotency_key == kwargs["key"])
                    .values(status_code=kwargs["response"].status_code)
                )
                raise DiedError("killed while storing the answer")
        raise DiedError("killed after the effect committed, before the answer was stored")

    monkeypatch.setattr(api_idempotency.IdempotencyStore, "complete", complete)
    return {"platform": platform}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("fault", FAULTS)
async def test_a_retry_after_a_crash_answers_the_one_effect(
    world: Any, monkeypatch: pytest.MonkeyPatch, fault: str, operation: str
) -> None:
    op = await _operation(world, operation)
    before_count, before_balance = op.count(), await op.balance()
    armed = _arm(fault, monkeypatch, world)
    first_app = create_platform_app(
        armed["platform"], request_hash_key=b"k" * 32, chain_log=world.chain_log
    )
    headers = op.headers | {"Idempotency-Key": f"crash-{fault}-{operation}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first_app), base_url="http://first.test"
    ) as first:
        with pytest.raises(DiedError):
            await first.post(op.path, json=op.body, headers=headers)
    # The effect committed (or is recorded, half-way); a capture records only after its post.
    recorded_first = not (fault == "ledger_posted" and operation == "capture")
    assert op.count() == before_count + int(recorded_first)
    # The claim of the dead try is in progress until its lease ends (or released, for a 5xx).
    world.clock.advance(IDEMPOTENCY_LEASE_SECONDS + 1)
    retry = await world.client.post(op.path, json=op.body, headers=headers)
    assert retry.status_code in (200, 201), retry.text
    assert op.count() == before_count + 1, "the retry did the effect a second time"
    answer = retry.json()
    assert answer["status"] in ("completed", "partially_refunded"), answer
    expected = {
        "scan": "12.34",
        "collect": "23.45",
        "transfer": "34.56",
        "refund": "45.67",
        "capture": "23.45",
    }[operation]
    assert answer["amount"] == expected
    # A capture of 20.00 on a 23.45 hold: the hold goes, 20.00 is charged.
    moved = {"scan": 1234, "collect": 2345, "transfer": 3456, "refund": -500, "capture": -345}
    before_fen = int(before_balance.replace(".", ""))
    after_fen = int((await op.balance()).replace(".", ""))
    assert before_fen - after_fen == moved[operation], "the money moved other than once"
    # A third try replays the stored answer byte for byte.
    again = await world.client.post(op.path, json=op.body, headers=headers)
    assert again.status_code == retry.status_code
    assert again.content == retry.content
    assert again.headers.get("idempotent-replayed") == "true"
