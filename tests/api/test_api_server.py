"""Against a real ``flashpay serve`` over TCP: readiness, API keys, idempotency, no leaked secrets.

The idempotency case is the issue's: the same request sent 10 times concurrently with one
``Idempotency-Key`` (threads against two uvicorn workers) executes once and all 10 responses are
identical. The request is a key revocation — executed twice it would answer 200 then 409.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from api_testkit import TEST_CARD_NUMBERS, dump_database, start_server

from flashpay.auth import PrincipalKind, create_api_key, get_api_key
from flashpay.clock import SystemClock
from flashpay.db import create_engine
from flashpay.wallet.throttle import ACCOUNT_FAILURES_MAX

CARD_NUMBER = TEST_CARD_NUMBERS[1]  # sent in a request body; must be nowhere afterwards


class _Runtime:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.clock = SystemClock()


@pytest.fixture
def runtime(database_url):
    runtime = _Runtime(database_url)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def server(database_url, tmp_path):
    server = start_server(database_url, tmp_path, workers=2)
    yield server
    server.stop()


def test_real_server_end_to_end(runtime, server, database_url):
    admin = create_api_key(
        platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=1, network_admin=True
    )
    victim = create_api_key(platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=7)
    secrets = [admin.key, victim.key, CARD_NUMBER]
    headers = {"X-Api-Key": admin.key}
    responses: list[httpx.Response] = []

    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        responses.append(client.get("/v1/ready"))
        assert responses[-1].status_code == 200

        responses.append(client.get("/v1/admin/api-keys", headers={"X-Api-Key": victim.key}))
        assert responses[-1].status_code == 403

        def revoke(_: int) -> httpx.Response:
            with httpx.Client(base_url=server.base_url, timeout=30) as own:
                return own.post(
                    f"/v1/admin/api-keys/{victim.key_id}/revoke",
                    json={"note": CARD_NUMBER},
                    headers=headers | {"Idempotency-Key": "revoke-7"},
                )

        with ThreadPoolExecutor(max_workers=10) as pool:
            concurrent = list(pool.map(revoke, range(10)))
        responses += concurrent
        assert {(r.status_code, r.content) for r in concurrent} == {(200, concurrent[0].content)}
        assert concurrent[0].json()["revoked_at"] is not None
        record = get_api_key(platform=runtime, key_id=victim.key_id)
        assert record is not None
        assert record.revoked_at_ns is not None

        again = client.post(f"/v1/admin/api-keys/{victim.key_id}/revoke", headers=headers)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "api_key_already_revoked"
        reused = client.post(
            f"/v1/admin/api-keys/{victim.key_id}/revoke",
            json={"note": "other"},
            headers=headers | {"Idempotency-Key": "revoke-7"},
        )
        assert reused.status_code == 422
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        revoked_key_use = client.get("/v1/admin/api-keys", headers={"X-Api-Key": victim.key})
        assert revoked_key_use.status_code == 401
        listed = client.get("/v1/admin/api-keys", headers=headers, params={"limit": 1})
        assert listed.status_code == 200
        assert listed.json()["next_cursor"] is not None
        responses += [again, reused, revoked_key_use, listed]

    server.stop()
    everything = b"\n".join(
        [dump_database(runtime.engine), server.log().encode()]
        + [r.content + repr(r.headers).encode() for r in responses]
    )
    for secret in secrets:
        assert secret.encode() not in everything
    assert b"/v1/admin/api-keys" in everything  # the log and responses were really searched


def test_credentials_in_query_strings_are_redacted_from_the_access_log(server):
    token = "fps_" + "Q" * 43  # the shape of a session token
    api_key = "fpk_live_" + "Z" * 32
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        refused = client.get("/v1/me", params={"access_token": token})
        assert refused.status_code == 401  # a token in the query string is not a credential
        client.get("/v1/health", params={"api_key": api_key, "verbose": "1"})
        client.get("/v1/health", params={"Token": token, "X-Api-Key": api_key})
    server.stop()
    log = server.log()
    assert token not in log
    assert api_key not in log
    assert "GET /v1/me?access_token=REDACTED HTTP/1.1" in log  # the request is still logged
    assert "GET /v1/health?api_key=REDACTED&verbose=1 HTTP/1.1" in log


def test_concurrent_login_guesses_across_two_workers_cannot_pass_the_count(server):
    phone = "13800001234"
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        signup = client.post(
            "/v1/users",
            json={"phone": phone, "name": "Li Wei", "id_number": "110101199001011234",
                  "password": "correct horse battery"},
        )  # fmt: skip
        assert signup.status_code == 201, signup.text

    def guess(n: int) -> int:
        with httpx.Client(base_url=server.base_url, timeout=30) as own:
            body = {"phone": phone, "password": f"guess number {n}"}
            return own.post("/v1/sessions", json=body).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(guess, range(20)))
    assert set(statuses) <= {401, 429}, statuses
    # One free failure, back-off 1, 2, 4 s, then a lock: far fewer than 20 guesses were checked.
    assert 1 <= statuses.count(401) <= ACCOUNT_FAILURES_MAX, statuses
