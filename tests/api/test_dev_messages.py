"""Where a one-time code goes on a real ``flashpay serve``, and who can read it.

Development (the default): a person binds a card over HTTP by reading the code from the page
``/dev/messages`` (and from ``flashpay dev messages``). Production: ``/dev`` does not exist, the
CLI says so, the server refuses to start without an SMS gateway, and with one the code reaches
the gateway (a real HTTP server on 127.0.0.1 started by the test). Both databases.
"""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from api_testkit import (
    TEST_CARD_NUMBERS,
    dump_database,
    server_environment,
    start_server,
)
from sms_server import sms_server

from flashpay.auth import PrincipalKind, create_api_key
from flashpay.clock import to_datetime
from flashpay.db import create_engine
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.keys import KeyRing
from flashpay.notify.outbox import OutboxMessage
from flashpay.notify.router import render_page
from flashpay.platform import Platform

CARD_NUMBER = TEST_CARD_NUMBERS[0]  # a Bank of China number
PHONE = "13800005678"
PASSWORD = "correct horse battery"
HOLDER = {"name": "Wang Fang", "id_number": "110101199003071234"}
_CODE_CELL = re.compile(r'<td class="code">([0-9]{6})</td>')


def _boc_key(database_url: str) -> dict[str, str]:
    """The default network loaded, and an API key of the Bank of China."""
    platform = Platform.open(database_url, keys=KeyRing.generate())
    try:
        load_network(platform=platform, definition=default_definition())
        boc = get_institution(platform=platform, code="BOC")
        assert boc is not None
        key = create_api_key(platform=platform, kind=PrincipalKind.INSTITUTION, principal_id=boc.id)
    finally:
        platform.close()
    return {"X-Api-Key": key.key}


def _start_binding(client: httpx.Client, boc: dict[str, str]) -> tuple[dict[str, str], int]:
    """The bank records the card, the person signs up and starts binding it: (their headers,
    the binding id)."""
    issued = client.post(
        "/v1/issuer/cards",
        json={"card_number": CARD_NUMBER, "expiry": "12/30", "holder_name": HOLDER["name"],
              "holder_id_number": HOLDER["id_number"], "phone": PHONE,
              "opening_balance": "100.00"},
        headers=boc,
    )  # fmt: skip
    assert issued.status_code == 201, issued.text
    signed_up = client.post("/v1/users", json={"phone": PHONE, "password": PASSWORD, **HOLDER})
    assert signed_up.status_code == 201, signed_up.text
    session = client.post("/v1/sessions", json={"phone": PHONE, "password": PASSWORD})
    assert session.status_code == 201, session.text
    person = {"Authorization": f"Bearer {session.json()['token']}"}
    started = client.post(
        "/v1/cards/bindings",
        json={"card_number": CARD_NUMBER, "expiry": "12/30"},
        headers=person,
    )
    assert started.status_code == 201, started.text
    return person, int(started.json()["binding_id"])


def _cli(database_url: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "dev", "messages", "--db", database_url, *args],
        capture_output=True, text=True, timeout=120, env=server_environment(**settings),
    )  # fmt: skip


def test_a_person_binds_a_card_on_a_plain_server_by_reading_the_code(database_url, tmp_path):
    boc = _boc_key(database_url)
    server = start_server(database_url, tmp_path, workers=2, settings={})
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            person, binding_id = _start_binding(client, boc)
            page = client.get("/dev/messages", params={"phone": PHONE})
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["cache-control"] == "no-store"
            assert "DEVELOPMENT ONLY — not an SMS gateway" in page.text
            assert "<link" not in page.text  # nothing loaded from elsewhere (no CDN)
            assert "<script" not in page.text
            [code] = _CODE_CELL.findall(page.text)
            assert f"card_binding {binding_id}" in page.text
            as_json = client.get("/dev/messages.json", params={"phone": PHONE}).json()
            assert as_json["development_only"] is True
            assert [m["code"] for m in as_json["messages"]] == [code]
            assert as_json["messages"][0]["text"].endswith("ending 6585. Valid 5 minutes.")

            wrong = client.post(f"/v1/cards/bindings/{binding_id}/confirm",
                                json={"otp": "000000" if code != "000000" else "111111"},
                                headers=person)  # fmt: skip
            assert wrong.json()["error"]["code"] == "wrong_otp"
            confirmed = client.post(
                f"/v1/cards/bindings/{binding_id}/confirm", json={"otp": code}, headers=person
            )
            assert confirmed.status_code == 201, confirmed.text
            assert confirmed.json()["masked_number"] == "621661******6585"
            cards = client.get("/v1/cards", headers=person).json()
            assert [c["id"] for c in cards["items"]] == [confirmed.json()["id"]]
            nobody = client.get("/dev/messages", params={"phone": "13900000000"})
            assert _CODE_CELL.findall(nobody.text) == []
            assert "no messages yet" in nobody.text
            pages = [page.text, nobody.text, str(as_json)]
    finally:
        server.stop()
    shown = _cli(database_url, "--phone", PHONE)
    assert shown.returncode == 0, shown.stderr
    assert "DEVELOPMENT ONLY" in shown.stdout
    assert code in shown.stdout
    assert "http://127.0.0.1" in server.log()  # serve said where to read the codes
    engine = create_engine(database_url)
    everything = dump_database(engine) + server.log().encode() + "".join(pages).encode()
    engine.dispose()
    assert CARD_NUMBER.encode() not in everything


def test_production_has_no_dev_pages_and_the_code_goes_to_the_gateway(database_url, tmp_path):
    boc = _boc_key(database_url)
    with sms_server() as gateway:
        gateway.statuses.append(503)  # the first try fails: the server retries
        server = start_server(
            database_url,
            tmp_path,
            settings={"FLASHPAY_ENV": "production", "FLASHPAY_SMS_GATEWAY_URL": gateway.url},
        )
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                for path in ("/dev/messages", "/dev/messages.json"):
                    hidden = client.get(path)
                    assert hidden.status_code == 404
                    assert hidden.json()["error"]["code"] == "not_found"
                person, binding_id = _start_binding(client, boc)
                assert len(gateway.received) == 2
                [code] = set(gateway.codes())
                assert gateway.received[-1].body["to"] == PHONE
                assert gateway.received[-1].body["message_id"] == f"card_binding:{binding_id}"
                confirmed = client.post(
                    f"/v1/cards/bindings/{binding_id}/confirm", json={"otp": code}, headers=person
                )
                assert confirmed.status_code == 201, confirmed.text
        finally:
            server.stop()
    assert "138****5678" in server.log()
    assert PHONE not in server.log()
    assert "binds your card" not in server.log()  # the text (and its code) is never logged
    refused = _cli(database_url, FLASHPAY_ENV="production")
    assert refused.returncode == 2
    assert "off in production" in refused.stderr
    assert code not in refused.stdout


def test_production_refuses_to_start_without_a_gateway(tmp_path, sqlite_url):
    started = subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "serve", "--db", sqlite_url,
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
        env=server_environment(FLASHPAY_ENV="production"),
    )  # fmt: skip
    assert started.returncode == 2
    assert "needs a real SMS gateway" in started.stderr
    assert "FLASHPAY_SMS_GATEWAY_URL" in started.stderr


@pytest.mark.parametrize(
    ("client", "status"),
    [
        pytest.param(("127.0.0.1", 50000), 200, id="IPv4 loopback"),
        pytest.param(("::1", 50000), 200, id="IPv6 loopback"),
        pytest.param(("192.168.1.20", 50000), 404, id="the local network"),
        pytest.param(("203.0.113.7", 50000), 404, id="the internet"),
    ],
)
async def test_the_page_answers_only_loopback_clients(sqlite_url, tmp_path, monkeypatch,
                                                      client, status):  # fmt: skip
    from flashpay.app import create_app_from_environment

    for name, value in server_environment(
        FLASHPAY_DATABASE_URL=sqlite_url, FLASHPAY_DATA_DIR=str(tmp_path),
        FLASHPAY_API_HASH_KEY="ab" * 32,
    ).items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FLASHPAY_ENV", raising=False)
    monkeypatch.delenv("FLASHPAY_SMS_GATEWAY_URL", raising=False)
    app = create_app_from_environment()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://flashpay.test") as c:
            for path in ("/dev/messages", "/dev/messages.json"):
                assert (await c.get(path)).status_code == status
            assert "/dev/messages" not in (await c.get("/openapi.json")).text


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytestmark = pytest.mark.anyio


def test_the_page_escapes_what_it_shows():
    message = OutboxMessage(id=1, sent_at_ns=1_795_000_000 * 10**9, phone="13800000001",
                            purpose="card_binding", reference="<b>1</b>", code="123456",
                            text="<script>alert(1)</script>")  # fmt: skip
    page = render_page([message], phone="13800000001", limit=20)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;1&lt;/b&gt;" in page
    assert to_datetime(message.sent_at_ns).strftime("%Y-%m-%d %H:%M:%S") in page
