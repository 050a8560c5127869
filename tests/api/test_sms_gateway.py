"""``HttpSmsGateway`` against a real HTTP server on 127.0.0.1: the JSON it sends, retries on a
5xx, a 429 and a timeout, no retry on a 4xx, a bounded number of attempts, and nothing secret in
its logs; and over the HTTP API, a gateway that is down is a 503 the client can retry."""

from __future__ import annotations

import logging

import httpx
import pytest
from sms_server import sms_server

from flashpay.app import create_platform_app
from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import issue_card
from flashpay.chain.service import ChainLog
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.keys import KeyRing
from flashpay.notify import DeliveryError, Message
from flashpay.notify.gateway import SEND_ATTEMPTS_MAX, HttpSmsGateway
from flashpay.platform import Platform

PHONE = "13800001234"
CODE = "402917"


TEXT = f"flashpay: {CODE} binds your card ending 6585. Valid 5 minutes."


def _message(text: str = TEXT) -> Message:
    return Message(phone=PHONE, purpose="card_binding", reference="42", code=CODE, text=text)


def _gateway(url: str, **kwargs: object) -> HttpSmsGateway:
    pauses: list[float] = []
    gateway = HttpSmsGateway(url=url, sleep=pauses.append, **kwargs)  # type: ignore[arg-type]
    gateway.pauses = pauses  # type: ignore[attr-defined]
    return gateway


def test_the_gateway_receives_one_json_message_with_the_token():
    with sms_server() as server:
        gateway = _gateway(server.url, token="gw-secret")
        gateway.send(_message())
        gateway.close()
    [received] = server.received
    assert received.path == "/sms"
    assert received.headers["Authorization"] == "Bearer gw-secret"
    assert received.body == {
        "message_id": "card_binding:42",
        "to": PHONE,
        "text": TEXT,
    }


@pytest.mark.parametrize(
    ("statuses", "attempts"),
    [
        pytest.param([503], 2, id="a 503 then 200"),
        pytest.param([500, 502], 3, id="two 5xx then 200"),
        pytest.param([429], 2, id="a 429 (slow down) then 200"),
    ],
)
def test_a_5xx_is_retried_with_the_same_message_id(statuses, attempts):
    with sms_server() as server:
        server.statuses.extend(statuses)
        gateway = _gateway(server.url, retry_pause_seconds=0.25)
        gateway.send(_message())
        gateway.close()
    assert len(server.received) == attempts
    assert {r.body["message_id"] for r in server.received} == {"card_binding:42"}
    assert gateway.pauses == [0.25, 0.5][: attempts - 1]  # type: ignore[attr-defined]


def test_the_attempts_are_bounded_then_delivery_fails():
    with sms_server() as server:
        server.statuses.extend([503] * 10)
        gateway = _gateway(server.url)
        with pytest.raises(DeliveryError, match="HTTP 503"):
            gateway.send(_message())
        gateway.close()
    assert len(server.received) == SEND_ATTEMPTS_MAX


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_4xx_is_final(status):
    with sms_server() as server:
        server.statuses.append(status)
        gateway = _gateway(server.url)
        with pytest.raises(DeliveryError, match=f"HTTP {status}"):
            gateway.send(_message())
        gateway.close()
    assert len(server.received) == 1


def test_a_gateway_that_does_not_answer_in_time_is_tried_again():
    with sms_server() as server:
        server.pauses_seconds.append(1.0)  # the first answer comes after the timeout
        gateway = _gateway(server.url, timeout_seconds=0.2)
        gateway.send(_message())
        gateway.close()
    assert len(server.received) == 2


def test_an_unreachable_gateway_fails_after_the_attempts():
    with sms_server() as server:
        url = server.url
    gateway = _gateway(url)  # the server is gone: connection refused
    with pytest.raises(DeliveryError, match="ConnectError"):
        gateway.send(_message())
    gateway.close()
    assert len(gateway.pauses) == SEND_ATTEMPTS_MAX - 1  # type: ignore[attr-defined]


def test_a_text_that_looks_like_a_card_number_never_leaves():
    with sms_server() as server:
        gateway = _gateway(server.url)
        with pytest.raises(DeliveryError, match="card number"):
            gateway.send(_message("your card 6216610200016585 is bound"))
        gateway.close()
    assert server.received == []


def test_the_logs_mask_the_phone_and_hold_no_code_or_token(caplog):
    caplog.set_level(logging.DEBUG)
    with sms_server() as server:
        server.statuses.append(503)
        gateway = _gateway(server.url, token="gw-secret")
        gateway.send(_message())
        gateway.close()
    assert "138****1234" in caplog.text
    for secret in (PHONE, CODE, "gw-secret"):
        assert secret not in caplog.text


@pytest.mark.parametrize("url", ["ftp://gateway", "gateway.example", ""])
def test_a_gateway_url_is_http_or_https(url):
    with pytest.raises(ValueError, match="http"):
        HttpSmsGateway(url=url)


# -- through the HTTP API -------------------------------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_gateway_that_is_down_is_a_503_and_a_retry_sends_a_fresh_code(database_url):
    with sms_server() as server:
        server.statuses.extend([503, 503])  # the first binding's two attempts fail
        gateway = HttpSmsGateway(url=server.url, attempts_max=2, retry_pause_seconds=0.0)
        platform = Platform.open(database_url, keys=KeyRing.generate(), notifier=gateway)
        load_network(platform=platform, definition=default_definition())
        boc = get_institution(platform=platform, code="BOC")
        assert boc is not None
        number = generate_card_number("621661")
        issue_card(platform=platform, issuer=boc, card=number, expiry="3012",
                   holder_name="Li Wei", holder_id_number="110101199001011234", phone=PHONE,
                   opening_balance=100)  # fmt: skip
        log = ChainLog.open(database_url)
        app = create_platform_app(platform, request_hash_key=b"k" * 32, chain_log=log)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flashpay.test") as c:
            await c.post(
                "/v1/users",
                json={
                    "phone": PHONE,
                    "name": "Li Wei",
                    "id_number": "110101199001011234",
                    "password": "correct horse b",
                },
            )
            token = (await c.post("/v1/sessions", json={"phone": PHONE,
                                  "password": "correct horse b"})).json()["token"]  # fmt: skip
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "bind-1"}
            body = {"card_number": number.reveal(), "expiry": "12/30"}
            down = await c.post("/v1/cards/bindings", json=body, headers=headers)
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "notification_failed"
            assert down.headers["retry-after"] == "5"
            retried = await c.post("/v1/cards/bindings", json=body, headers=headers)
            assert retried.status_code == 201, retried.text  # a 5xx was not stored: run again
            binding_id = retried.json()["binding_id"]
            [code] = server.codes()[-1:]
            confirmed = await c.post(f"/v1/cards/bindings/{binding_id}/confirm",
                                     json={"otp": code}, headers={"Authorization":
                                                                  f"Bearer {token}"})  # fmt: skip
            assert confirmed.status_code == 201, confirmed.text
        log.close()
        platform.close()
        gateway.close()
    assert len(server.received) == 3
    # One binding: the retry found the binding its key started (decision 0013) and sent it a
    # fresh code, rather than starting a second one.
    assert len({r.body["message_id"] for r in server.received}) == 1
