"""Webhooks with real processes and real sockets, on SQLite and PostgreSQL:

- the delivery worker (``flashpay webhooks deliver``, its own process) is killed with SIGKILL
  while its request is in the receiver's hands; started again, it takes the lapsed lease and
  delivers the same event (same id, valid signature) — at least once, nothing lost;
- the live feed over TCP (the app served by uvicorn on 127.0.0.1, the deriver thread that
  ``flashpay serve`` runs): a payment made over HTTP arrives on the merchant's Server-Sent
  Events stream within a second, and a stream resumed with ``Last-Event-ID`` goes on after it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn
from api_testkit import free_port
from webhook_receiver import Receiver

from flashpay.webhooks.derive import Deriver
from flashpay.webhooks.feed import list_deliveries
from flashpay.webhooks.runner import start_deriver

pytestmark = pytest.mark.anyio
LAG_SECONDS_MAX = 1.0


def _start_worker(database_url: str, log_path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flashpay.cli", "webhooks", "deliver", "--db", database_url,
             "--lease-seconds", "2", "--no-derive", "--concurrency", "2"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


async def test_worker_killed_mid_delivery_redelivers_after_restart(world, database_url, tmp_path):
    hold = threading.Event()
    receiver = Receiver(hold=hold).start()
    try:
        shop = await world.merchant("Wumart")
        hook = await world.client.post(
            "/v1/webhooks/endpoints", json={"url": receiver.url}, headers=shop["headers"]
        )
        receiver.secret = hook.json()["secret"]  # checked against this machine's clock
        alice, card = await world.member_with_card("Alice")
        paid = await world.pay(alice, await world.static_code(shop), card, amount="9.00", pin=None)
        assert paid.json()["status"] == "completed"
        assert Deriver(world.platform).run_once().deliveries == 1

        log_path = tmp_path / "worker.log"
        worker = _start_worker(database_url, log_path)
        try:
            assert receiver.arrived.wait(30), log_path.read_text()
            os.killpg(worker.pid, signal.SIGKILL)  # mid-delivery: the receiver holds the request
            worker.wait(10)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
        receiver.hold = None
        hold.set()
        assert len(receiver.received) == 1
        restarted = _start_worker(database_url, log_path)
        try:
            assert _wait(lambda: len(receiver.received) >= 2, 30), log_path.read_text()
            assert _wait(lambda: _delivered(world, shop), 15)
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(15)
        first, second = receiver.received[:2]
        assert first.headers["Flashpay-Event-Id"] == second.headers["Flashpay-Event-Id"]
        assert first.body == second.body
        assert first.signature_ok
        assert second.signature_ok
        log = await world.client.get("/v1/webhooks/deliveries", headers=shop["headers"])
        (delivery,) = log.json()["items"]
        assert delivery["state"] == "succeeded"
        assert [(a["n"], a["outcome"], a["status_code"]) for a in delivery["attempts"]] == [
            (1, "interrupted", None), (2, "succeeded", 200),
        ]  # fmt: skip
    finally:
        hold.set()
        receiver.stop()


def _delivered(world, shop) -> bool:
    found = list_deliveries(platform=world.platform, merchant_id=shop["id"])
    return bool(found) and found[0].state == "succeeded"


class _Served:
    """The world's app served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                           lifespan="off")
        )  # fmt: skip
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        assert _wait(lambda: self.server.started, 15)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


class _StreamReader:
    """Reads an SSE stream in a thread; records each event with its arrival time."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: list[tuple[float, str, str, dict]] = []
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self.thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with httpx.Client(timeout=30) as client, client.stream("GET", url, headers=headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            self.opened.set()
            fields: dict[str, str] = {}
            for line in r.iter_lines():
                if line == "":
                    if "data" in fields:
                        self.events.append(
                            (
                                time.monotonic(),
                                fields.get("id", ""),
                                fields.get("event", ""),
                                json.loads(fields["data"]),
                            )
                        )
                    fields = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    fields[key] = value.removeprefix(" ")


async def test_live_stream_within_a_second_and_resumes_after_last_event_id(world):
    shop = await world.merchant("Campus Canteen", scene="canteen", mcc="5814")
    alice, card = await world.member_with_card("Alice")
    stop_deriver = start_deriver(world.platform)  # as every `flashpay serve` worker runs it
    try:
        with _Served(world.app) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                stream = f"{base}/v1/webhooks/events/stream?max_seconds=8"
                reader = _StreamReader(stream, shop["headers"])
                assert reader.opened.wait(10)
                lags = []
                ids = []
                for n in range(3):
                    order = await world.order(shop, f"1{n}.50", f"LIVE-{n}")
                    paid = await client.post(
                        "/v1/payments/qr", json={"payload": order["payload"], "card_id": card},
                        headers=alice.headers,
                    )  # fmt: skip
                    committed = time.monotonic()  # the answer comes after the commit
                    assert paid.json()["status"] == "completed", paid.text
                    assert _wait(lambda n=n: len(reader.events) > n, 5), reader.events
                    arrived, evt, kind, body = reader.events[n]
                    assert (kind, body["data"]["bill_number"]) == ("payment.completed", f"LIVE-{n}")
                    assert body["data"]["payment_id"] == paid.json()["id"]
                    lags.append(arrived - committed)
                    ids.append(evt)
                print(f"commit-to-event lag (s): {[round(x, 3) for x in lags]}")
                assert max(lags) <= LAG_SECONDS_MAX, lags

                # two payments while no one listens; a stream resumed after the first event gets
                # the rest in order, and nothing twice
                reader.thread.join(15)
                for n in (3, 4):
                    order = await world.order(shop, "2.00", f"LIVE-{n}")
                    await client.post(
                        "/v1/payments/qr", json={"payload": order["payload"], "card_id": card},
                        headers=alice.headers,
                    )  # fmt: skip
                resumed = _StreamReader(
                    f"{base}/v1/webhooks/events/stream?max_seconds=3",
                    {**shop["headers"], "Last-Event-ID": ids[0]},
                )
                resumed.thread.join(15)
                bills = [body["data"]["bill_number"] for _, _, _, body in resumed.events]
                assert bills == ["LIVE-1", "LIVE-2", "LIVE-3", "LIVE-4"]
                rival = await world.merchant("Rival")
                other = await client.get(
                    "/v1/webhooks/events/stream?max_seconds=1",
                    headers={**rival["headers"], "Last-Event-ID": ids[0]},
                )
                assert other.status_code == 404
    finally:
        stop_deriver()
