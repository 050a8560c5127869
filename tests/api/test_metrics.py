"""``GET /metrics`` against a real ``flashpay serve --workers 2``: the figures of both workers
merged in every scrape, route templates (not raw paths), batch sizes, refusals by reason, the
pools and the audit log, and only the network operator's key may read them."""

from __future__ import annotations

import re

import api_testkit
import httpx
import pytest
from api_testkit import start_server

from flashpay.auth import PrincipalKind, create_api_key
from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import issue_card
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.notify import RecordingNotifier
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import register
from flashpay.wallet.sessions import login

PASSWORD = "metrics password 1"
PIN = "135790"
HEALTH_REQUESTS = 30


def _users(url: str, data_dir) -> list[tuple[str, int, str]]:
    """Two wallet users with a bound debit card each: (bearer token, card id, phone)."""
    notifier = RecordingNotifier()
    platform = Platform.open(url, data_directory=data_dir, notifier=notifier)
    try:
        load_network(platform=platform, definition=default_definition())
        out = []
        for n, (bank, prefix) in enumerate((("BOC", "621661"), ("ICBC", "622202"))):
            issuer = get_institution(platform=platform, code=bank)
            assert issuer is not None
            phone, id_number = f"1390000{n:04d}", f"1101011990010{n:04d}X"
            user = register(platform=platform, phone=phone, name=f"User {n}",
                            id_number=id_number, password=PASSWORD)  # fmt: skip
            set_pin(platform=platform, user_id=user.id, pin=PIN, password=PASSWORD)
            pan = generate_card_number(prefix, 16)
            issue_card(platform=platform, issuer=issuer, card=pan, expiry="3012",
                       holder_name=f"User {n}", holder_id_number=id_number, phone=phone,
                       opening_balance=1_000_000)  # fmt: skip
            binding = start_binding(platform=platform, user_id=user.id, card_number=pan,
                                    expiry="12/30")  # fmt: skip
            otp = notifier.last_code("card_binding", str(binding.id))
            card = confirm_binding(platform=platform, user_id=user.id, binding_id=binding.id,
                                   otp=otp)  # fmt: skip
            session = login(platform=platform, phone=phone, password=PASSWORD)
            out.append((session.token, card.id, phone))
        return out
    finally:
        platform.close()


def _value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` of an exposition (labels in any order), 0 when absent."""
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


@pytest.fixture
def world(database_url, tmp_path, monkeypatch):
    users = _users(database_url, tmp_path)
    platform = Platform.open(database_url, data_directory=tmp_path)
    try:
        admin = create_api_key(platform=platform, kind=PrincipalKind.INSTITUTION,
                               principal_id=1, network_admin=True).key  # fmt: skip
        merchant = create_api_key(platform=platform, kind=PrincipalKind.MERCHANT,
                                  principal_id=1).key  # fmt: skip
    finally:
        platform.close()
    # Two workers start slowly on a loaded 2-core machine: more than the kit's 30 s at times.
    monkeypatch.setattr(api_testkit, "STARTUP_SECONDS_MAX", 120.0)
    server = start_server(database_url, tmp_path, workers=2)
    yield server, users, admin, merchant
    server.stop()


def _scrape(base_url: str, admin: str) -> str:
    # A new connection per scrape: the two workers share the listening socket, so scrapes land
    # on either; every one must show the same merged figures.
    response = httpx.get(f"{base_url}/metrics", headers={"X-Api-Key": admin}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_metrics_over_two_workers(world):
    server, users, admin, _merchant = world
    base = server.base_url
    for _ in range(HEALTH_REQUESTS):  # a connection each, spread over both workers
        assert httpx.get(f"{base}/v1/health", timeout=10).status_code == 200
    (token, card_id, _phone), (_t, _c, to_phone) = users
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/v1/transfers/987654", headers=bearer).status_code == 404
        assert client.get("/v1/no-such-thing").status_code == 404
        # Two transfers, one declined (recorded: a wrong PIN), one refused (nothing recorded: a
        # card that is not the caller's).
        for n, (pin, card) in enumerate(((PIN, card_id), (PIN, card_id), ("000000", card_id),
                                         (PIN, 987654))):  # fmt: skip
            response = client.post(
                "/v1/transfers",
                json={"from_card_id": card, "amount": "0.01", "to_phone": to_phone, "pin": pin},
                headers=bearer | {"Idempotency-Key": f"metrics-{n}"},
            )
            assert (response.status_code < 300) == (n < 3), response.text
        assert response.status_code >= 400
        refusal = response.json()["error"]["code"]

    texts = [_scrape(base, admin) for _ in range(6)]
    for text in texts:
        # Both workers' value files are merged: each has its own worker gauge.
        assert _value(text, "flashpay_workers") == 2
        assert _value(text, "flashpay_http_requests_total", method="GET", route="/v1/health",
                      status="200") == HEALTH_REQUESTS + 1  # + start_server's probe  # fmt: skip
        assert _value(text, "flashpay_http_request_duration_seconds_count", method="GET",
                      route="/v1/health") == HEALTH_REQUESTS + 1  # fmt: skip
        assert _value(text, "flashpay_http_requests_total", method="GET",
                      route="/v1/transfers/{transfer_id}", status="404") == 1  # fmt: skip
        assert "/v1/transfers/987654" not in text
        assert _value(text, "flashpay_http_requests_total", method="GET", route="unmatched",
                      status="404") == 1  # fmt: skip
        assert _value(text, "flashpay_http_requests_total", method="POST",
                      route="/v1/transfers", status="201") == 3  # fmt: skip
        assert _value(text, "flashpay_batch_size_count", switch="transfers") >= 1
        assert _value(text, "flashpay_batch_size_sum", switch="transfers") >= 3
        assert _value(text, "flashpay_declines_total", outcome="declined",
                      reason="wrong_pin") == 1  # fmt: skip
        assert _value(text, "flashpay_declines_total", outcome="refused", reason=refusal) == 1
        assert _value(text, "flashpay_db_pool_connections", pool="domain", state="size") > 0
        assert _value(text, "flashpay_audit_log_lag_chains") >= 2  # no publisher runs here
    # The scrapes themselves are counted too, under their route.
    last = _scrape(base, admin)
    assert _value(last, "flashpay_http_requests_total", method="GET", route="/metrics",
                  status="200") >= 6  # fmt: skip


def test_only_the_operator_reads_metrics(world):
    server, _users, _admin, merchant = world
    assert httpx.get(f"{server.base_url}/metrics", timeout=10).status_code == 401
    forbidden = httpx.get(f"{server.base_url}/metrics", headers={"X-Api-Key": merchant}, timeout=10)
    assert forbidden.status_code == 403
