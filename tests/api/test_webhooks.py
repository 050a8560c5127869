"""Merchant webhooks end to end, on SQLite and PostgreSQL: events derived from real payments
made through the API, delivered signed to a real receiver on 127.0.0.1 that verifies them,
retried with backoff on the fake clock, replayed, read back as a feed and a delivery log — and
nothing of one merchant visible to another."""

from __future__ import annotations

import random

import pytest
from webhook_receiver import Receiver
from world import code_of

from flashpay.clock import NS_PER_SECOND
from flashpay.payments.feeds import refunds_of
from flashpay.webhooks import event_id
from flashpay.webhooks.delivery import BACKOFF_BASE_SECONDS, Worker
from flashpay.webhooks.derive import HOLD_GRACE_SECONDS, Deriver
from flashpay.webhooks.events import EventType

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


async def _endpoint(world, shop, url, **body):
    response = await world.client.post(
        "/v1/webhooks/endpoints", json={"url": url, **body}, headers=shop["headers"]
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def _first_refund_seq(world, payment_id):
    with world.platform.engine.connect() as connection:
        return refunds_of(connection, [payment_id])[payment_id][0].seq


def _worker(world):
    return Worker(world.platform, rng=random.Random(7), concurrency=2)


async def test_payments_become_signed_deliveries_and_a_feed(world, receiver):
    shop = await world.merchant("Wumart")
    hook = await _endpoint(world, shop, receiver.url)
    receiver.secret = hook["secret"]
    receiver.now_seconds = lambda: world.clock.now_ns() // NS_PER_SECOND
    alice, card = await world.member_with_card("Alice")
    paid = await world.pay(alice, await world.static_code(shop), card, amount="100.00")
    order = await world.order(shop, "23.50", "POS-001")
    paid_order = await world.pay(alice, order["payload"], card, pin=None)
    refund = await world.client.post(
        f"/v1/merchant/payments/{paid.json()['id']}/refunds", json={"amount": "30.00"},
        headers=shop["headers"],
    )  # fmt: skip
    assert refund.status_code == 201, refund.text

    report = Deriver(world.platform).run_once()
    assert (report.events, report.deliveries) == (3, 3)
    worker = _worker(world)
    assert worker.run_once() == 3
    worker.close()

    first, second = int(paid.json()["id"]), int(paid_order.json()["id"])
    expected = [
        (event_id(EventType.PAYMENT_COMPLETED, first), "payment.completed", 10000),
        (event_id(EventType.PAYMENT_COMPLETED, second), "payment.completed", 2350),
        (
            event_id(EventType.PAYMENT_REFUNDED, first, _first_refund_seq(world, first)),
            "payment.refunded",
            3000,
        ),
    ]
    got = sorted((r.event["id"], r.event["type"], r.event["data"]["amount_minor"])
                 for r in receiver.received)  # fmt: skip
    assert got == sorted(expected)
    assert all(r.signature_ok for r in receiver.received)
    assert {r.headers["Flashpay-Event-Id"] for r in receiver.received} == {e[0] for e in expected}
    refund_event = next(r.event for r in receiver.received if r.event["id"] == expected[2][0])
    assert refund_event["data"]["refund_number"] == 1
    order_event = next(r.event for r in receiver.received if r.event["id"] == expected[1][0])
    assert order_event["merchant_id"] == shop["id"]
    assert order_event["data"]["bill_number"] == "POS-001"
    assert order_event["data"]["amount"] == "23.50"
    assert order_event["data"]["currency"] == "CNY"

    feed = await world.client.get("/v1/webhooks/events", headers=shop["headers"])
    assert [(e["id"], e["type"], e["data"]["amount_minor"]) for e in feed.json()["items"]] == (
        expected
    )
    page = await world.client.get(
        f"/v1/webhooks/events?after={expected[0][0]}&limit=1", headers=shop["headers"]
    )
    assert [e["id"] for e in page.json()["items"]] == [expected[1][0]]
    assert page.json()["next_cursor"] == expected[1][0]

    # a second deriver (a restart: nothing remembered) re-reads everything: no new event, no
    # second id for a fact, nothing delivered twice
    assert Deriver(world.platform).run_once().events == 0
    deliveries = await world.client.get("/v1/webhooks/deliveries", headers=shop["headers"])
    items = deliveries.json()["items"]
    assert len(items) == 3
    assert all(d["state"] == "succeeded" and len(d["attempts"]) == 1 for d in items)
    attempt = items[0]["attempts"][0]
    assert (attempt["outcome"], attempt["status_code"]) == ("succeeded", 200)
    assert attempt["latency_ms"] >= 0


async def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(world, receiver):
    receiver.statuses = [500, 503, 200]
    shop = await world.merchant("Hema")
    hook = await _endpoint(world, shop, receiver.url, event_types=["payment.completed"])
    receiver.secret = hook["secret"]
    receiver.now_seconds = lambda: world.clock.now_ns() // NS_PER_SECOND
    alice, card = await world.member_with_card("Alice")
    paid = await world.pay(alice, await world.static_code(shop), card, amount="8.00", pin=None)
    assert paid.json()["status"] == "completed", paid.text
    assert Deriver(world.platform).run_once().deliveries == 1
    worker = _worker(world)
    waits = []
    for _ in range(3):
        assert worker.run_once() == 1
        log = (await world.client.get("/v1/webhooks/deliveries", headers=shop["headers"])).json()
        delivery = log["items"][0]
        if delivery["state"] == "succeeded":
            break
        assert worker.run_once() == 0  # not due yet: no hammering
        due = world.platform.clock.now_ns()
        delivery_row = await world.client.get(
            f"/v1/webhooks/deliveries/{delivery['id']}", headers=shop["headers"]
        )
        next_at = delivery_row.json()["next_attempt_at"]
        assert next_at is not None
        wait_ns = _ns(next_at) - due
        waits.append(wait_ns / NS_PER_SECOND)
        world.clock.advance(ns=wait_ns + 1000)  # the answer shows microseconds
    worker.close()
    # failed attempt n waits in [0.5, 1] × BASE × 2^(n-1)
    assert len(waits) == 2
    for n, wait in enumerate(waits, start=1):
        ceiling = BACKOFF_BASE_SECONDS * 2 ** (n - 1)
        assert 0.5 * ceiling - 0.001 <= wait <= ceiling + 0.001, (n, wait)
    assert delivery["state"] == "succeeded"
    assert [(a["n"], a["outcome"], a["status_code"]) for a in delivery["attempts"]] == [
        (1, "failed", 500), (2, "failed", 503), (3, "succeeded", 200),
    ]  # fmt: skip
    assert len({r.headers["Flashpay-Event-Id"] for r in receiver.received}) == 1
    assert all(r.signature_ok for r in receiver.received)


def _ns(text: str) -> int:
    from datetime import datetime

    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(parsed.timestamp()) * NS_PER_SECOND + parsed.microsecond * 1000


async def test_replay_sends_the_same_event_again(world, receiver):
    shop = await world.merchant("Yonghui")
    hook = await _endpoint(world, shop, receiver.url)
    receiver.secret = hook["secret"]
    receiver.now_seconds = lambda: world.clock.now_ns() // NS_PER_SECOND
    alice, card = await world.member_with_card("Alice")
    await world.pay(alice, await world.static_code(shop), card, amount="5.00", pin=None)
    Deriver(world.platform).run_once()
    worker = _worker(world)
    worker.run_once()
    event = (await world.client.get("/v1/webhooks/events", headers=shop["headers"])).json()
    evt = event["items"][0]["id"]
    replayed = await world.client.post(
        f"/v1/webhooks/events/{evt}/replay", headers={**shop["headers"], "Idempotency-Key": "r1"}
    )
    assert replayed.status_code == 201, replayed.text
    assert [(d["round"], d["state"]) for d in replayed.json()["deliveries"]] == [(1, "pending")]
    again = await world.client.post(
        f"/v1/webhooks/events/{evt}/replay", headers={**shop["headers"], "Idempotency-Key": "r1"}
    )
    assert again.json()["deliveries"][0]["id"] == replayed.json()["deliveries"][0]["id"]
    assert worker.run_once() == 1
    worker.close()
    assert [r.event["id"] for r in receiver.received] == [evt, evt]
    assert all(r.signature_ok for r in receiver.received)
    log = await world.client.get(f"/v1/webhooks/deliveries?event_id={evt}", headers=shop["headers"])
    assert sorted((d["round"], d["state"]) for d in log.json()["items"]) == [
        (0, "succeeded"), (1, "succeeded"),
    ]  # fmt: skip


async def test_another_merchant_sees_nothing_of_the_first(world, receiver):
    shop = await world.merchant("Wumart")
    rival = await world.merchant("Carrefour")
    hook = await _endpoint(world, shop, receiver.url)
    alice, card = await world.member_with_card("Alice")
    await world.pay(alice, await world.static_code(shop), card, amount="5.00", pin=None)
    Deriver(world.platform).run_once()
    evt = (await world.client.get("/v1/webhooks/events", headers=shop["headers"])).json()["items"][
        0
    ]["id"]
    delivery = (await world.client.get("/v1/webhooks/deliveries", headers=shop["headers"])).json()[
        "items"
    ][0]["id"]
    h = rival["headers"]
    assert (await world.client.get("/v1/webhooks/events", headers=h)).json()["items"] == []
    assert (await world.client.get("/v1/webhooks/deliveries", headers=h)).json()["items"] == []
    assert (await world.client.get("/v1/webhooks/endpoints", headers=h)).json()["items"] == []
    for response in (
        await world.client.get(f"/v1/webhooks/events/{evt}", headers=h),
        await world.client.get(f"/v1/webhooks/events?after={evt}", headers=h),
        await world.client.get(f"/v1/webhooks/events/stream?after={evt}", headers=h),
        await world.client.post(f"/v1/webhooks/events/{evt}/replay", headers=h),
        await world.client.get(f"/v1/webhooks/deliveries/{delivery}", headers=h),
        await world.client.get(f"/v1/webhooks/endpoints/{hook['id']}", headers=h),
        await world.client.patch(
            f"/v1/webhooks/endpoints/{hook['id']}", json={"enabled": False}, headers=h
        ),
        await world.client.post(f"/v1/webhooks/endpoints/{hook['id']}/rotate-secret", headers=h),
        await world.client.delete(f"/v1/webhooks/endpoints/{hook['id']}", headers=h),
    ):
        assert (response.status_code, code_of(response)) == (404, "not_found"), response.text
    replay_to_theirs = await world.client.post(
        f"/v1/webhooks/events/{evt}/replay", json={"endpoint_id": hook["id"]}, headers=h
    )
    assert replay_to_theirs.status_code == 404
    # a user or an institution is not a merchant
    user = await world.client.get("/v1/webhooks/events", headers=alice.headers)
    assert (user.status_code, code_of(user)) == (403, "forbidden")
    anonymous = await world.client.get("/v1/webhooks/events")
    assert anonymous.status_code == 401
    still = await world.client.get(f"/v1/webhooks/endpoints/{hook['id']}", headers=shop["headers"])
    assert still.json()["status"] == "enabled"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/hook", "invalid_endpoint_url"),
        ("javascript:alert(1)", "invalid_endpoint_url"),
        ("file:///etc/passwd", "invalid_endpoint_url"),
        ("https://", "invalid_endpoint_url"),
        ("example.com/hook", "invalid_endpoint_url"),
        ("https://user:pw@example.com/hook", "invalid_endpoint_url"),
        ("https://example.com:99999/hook", "invalid_endpoint_url"),
        ("https://example.com/a b", "invalid_endpoint_url"),
        ("https://example.com/" + "a" * 2100, "endpoint_url_too_long"),
    ],
)
async def test_bad_endpoint_urls_are_named_refusals(world, url, code):
    shop = await world.merchant("Wumart")
    response = await world.client.post(
        "/v1/webhooks/endpoints", json={"url": url}, headers=shop["headers"]
    )
    assert (response.status_code, code_of(response)) == (422, code)
    listed = await world.client.get("/v1/webhooks/endpoints", headers=shop["headers"])
    assert listed.json()["items"] == []


async def test_endpoints_register_idempotently_rotate_disable_delete(world, receiver):
    shop = await world.merchant("Wumart")
    headers = {**shop["headers"], "Idempotency-Key": "hook-1"}
    body = {"url": receiver.url, "event_types": ["payment.completed", "hold.expired"]}
    first = await world.client.post("/v1/webhooks/endpoints", json=body, headers=headers)
    again = await world.client.post("/v1/webhooks/endpoints", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["secret"].startswith("whsec_")
    assert again.json()["secret"] != first.json()["secret"]  # the first answer was not kept
    assert first.json()["event_types"] == ["hold.expired", "payment.completed"]
    bad = await world.client.post(
        "/v1/webhooks/endpoints", json={"url": receiver.url, "event_types": ["payment.paid"]},
        headers=shop["headers"],
    )  # fmt: skip
    assert (bad.status_code, code_of(bad)) == (422, "invalid_event_types")
    hook_id = first.json()["id"]
    listed = (await world.client.get("/v1/webhooks/endpoints", headers=shop["headers"])).json()
    assert [e["id"] for e in listed["items"]] == [hook_id]
    assert "secret" not in listed["items"][0]
    rotated = await world.client.post(
        f"/v1/webhooks/endpoints/{hook_id}/rotate-secret", headers=shop["headers"]
    )
    assert rotated.json()["secret"] not in (first.json()["secret"], again.json()["secret"])
    assert rotated.json()["secret_hint"] == rotated.json()["secret"][:10]

    # a disabled endpoint is not sent the events of its time off; a replay sends one to it
    receiver.secret = rotated.json()["secret"]
    receiver.now_seconds = lambda: world.clock.now_ns() // NS_PER_SECOND
    disabled = await world.client.patch(
        f"/v1/webhooks/endpoints/{hook_id}", json={"enabled": False}, headers=shop["headers"]
    )
    assert disabled.json()["status"] == "disabled"
    alice, card = await world.member_with_card("Alice")
    await world.pay(alice, await world.static_code(shop), card, amount="5.00", pin=None)
    Deriver(world.platform).run_once()
    worker = _worker(world)
    assert worker.run_once() == 0
    await world.client.patch(
        f"/v1/webhooks/endpoints/{hook_id}", json={"enabled": True}, headers=shop["headers"]
    )
    assert worker.run_once() == 0
    evt = (await world.client.get("/v1/webhooks/events", headers=shop["headers"])).json()
    replayed = await world.client.post(
        f"/v1/webhooks/events/{evt['items'][0]['id']}/replay", json={"endpoint_id": hook_id},
        headers=shop["headers"],
    )  # fmt: skip
    assert [d["round"] for d in replayed.json()["deliveries"]] == [1]
    assert worker.run_once() == 1
    worker.close()
    assert [r.signature_ok for r in receiver.received] == [True]
    deleted = await world.client.delete(
        f"/v1/webhooks/endpoints/{hook_id}", headers=shop["headers"]
    )
    assert deleted.status_code == 204
    gone = await world.client.get(f"/v1/webhooks/endpoints/{hook_id}", headers=shop["headers"])
    assert gone.status_code == 404
    # its delivery log stays readable
    log = await world.client.get("/v1/webhooks/deliveries", headers=shop["headers"])
    assert [d["state"] for d in log.json()["items"]] == ["succeeded"]


async def test_holds_authorized_captured_voided_and_expired(world):
    parking = await world.merchant("Chaoyang Parking", scene="parking", mcc="7523")
    alice, card = await world.member_with_card("Alice", balance="500.00")

    async def hold(amount, seconds):
        code = await world.payment_code(alice, card)
        held = await world.collect(parking, code["qr_payload"], amount, capture=False,
                                   hold_seconds=seconds)  # fmt: skip
        assert held.json()["status"] == "authorized", held.text
        return int(held.json()["id"])

    captured = await hold("50.00", 3600)
    await world.client.post(
        f"/v1/merchant/payments/{captured}/capture", json={"amount": "32.00"},
        headers=parking["headers"],
    )  # fmt: skip
    voided = await hold("20.00", 3600)
    await world.client.post(f"/v1/merchant/payments/{voided}/void", headers=parking["headers"])
    lapsing = await hold("20.00", 60)
    deriver = Deriver(world.platform)
    deriver.run_once()
    world.clock.advance(61 + HOLD_GRACE_SECONDS)
    deriver.run_once()
    feed = await world.client.get("/v1/webhooks/events?limit=100", headers=parking["headers"])
    got = [(e["type"], int(e["data"]["payment_id"]), e["data"]["amount_minor"])
           for e in feed.json()["items"]]  # fmt: skip
    assert got == [
        ("payment.authorized", captured, 5000),
        ("payment.completed", captured, 3200),
        ("payment.authorized", voided, 2000),
        ("payment.voided", voided, 0),
        ("payment.authorized", lapsing, 2000),
        ("hold.expired", lapsing, 2000),
    ]
    assert deriver.run_once().events == 0
