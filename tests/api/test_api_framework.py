"""The HTTP framework through the real ASGI app: errors, auth, idempotency, pagination, health.

Routes under test are mounted on the app ``create_app`` returns (with its real middleware, error
handlers and database); they count their executions so the idempotency tests can assert that a
replayed request did not run again.
"""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
import sqlalchemy as sa
from api_testkit import TEST_CARD_NUMBERS
from fastapi import APIRouter, Response
from pydantic import BaseModel

from flashpay.api.deps import CurrentInstitution, CurrentMerchant, CurrentUser, OptionalPrincipal
from flashpay.api.errors import ApiError
from flashpay.api.idempotency import (
    IDEMPOTENCY_KEY_TTL_SECONDS,
    IDEMPOTENCY_LEASE_SECONDS,
    IdempotencyMiddleware,
)
from flashpay.api.pagination import CursorQuery, LimitQuery, Page, after_id, encode_cursor
from flashpay.app import create_app
from flashpay.auth import PrincipalKind, create_api_key, revoke_api_key
from flashpay.clock import FakeClock
from flashpay.db import create_engine

pytestmark = pytest.mark.anyio

CARD_NUMBER = TEST_CARD_NUMBERS[0]  # must never come back in a response, log or row


class _Runtime:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.clock = FakeClock()


class EchoIn(BaseModel):
    value: int
    card_number: str | None = None


class EchoOut(BaseModel):
    execution: int
    value: int
    caller: str


def _test_router(executions: list[int], release: asyncio.Event | None = None) -> APIRouter:
    router = APIRouter(prefix="/v1/test")
    counter = itertools.count(1)

    @router.post("/echo", status_code=201, response_model=EchoOut)
    async def echo(body: EchoIn, principal: OptionalPrincipal) -> EchoOut:
        execution = next(counter)
        executions.append(execution)
        if release is not None:
            await release.wait()
        caller = principal.scope if principal is not None else "anonymous"
        return EchoOut(execution=execution, value=body.value, caller=caller)

    @router.post("/boom")
    def boom() -> dict[str, int]:
        executions.append(next(counter))
        raise ApiError(status_code=503, code="try_later", message="temporarily unavailable")

    @router.get("/institution")
    def institution_only(principal: CurrentInstitution) -> dict[str, int]:
        return {"institution_id": principal.id}

    @router.post("/secret")
    def secret(response: Response) -> dict[str, str]:
        executions.append(next(counter))
        response.headers["Cache-Control"] = "no-store"
        return {"token": f"secret-token-{len(executions)}"}

    @router.post("/crash")
    def crash() -> None:
        executions.append(next(counter))
        raise RuntimeError("a bug")

    @router.get("/user")
    def user_only(principal: CurrentUser) -> dict[str, int]:
        return {"user_id": principal.id}

    @router.get("/merchant")
    def merchant_only(principal: CurrentMerchant) -> dict[str, int]:
        return {"merchant_id": principal.id}

    @router.get("/numbers", response_model=Page[int])
    def numbers(limit: LimitQuery = 3, cursor: CursorQuery = None) -> Page[int]:
        start = after_id(cursor)
        items = list(range(start + 1, 11))[:limit]
        more = items and items[-1] < 10
        return Page[int](
            items=items, next_cursor=encode_cursor({"after": items[-1]}) if more else None
        )

    return router


@pytest.fixture
def runtime(database_url, leak_guard):
    runtime = _Runtime(database_url)
    leak_guard.engines.append(runtime.engine)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def executions():
    return []


# Where the wallet's token verification plugs in: two users' tokens, as the wallet's login issues.
USER_TOKENS = {"token-of-alice-0123456789": 1, "token-of-bob-0123456789": 2}


@pytest.fixture
def app(runtime, executions):
    app = create_app(runtime, request_hash_key=b"k" * 32, verify_user_token=USER_TOKENS.get)
    app.include_router(_test_router(executions))
    return app


@pytest.fixture
async def client(app, leak_guard):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://flashpay.test",
        event_hooks={"response": [leak_guard.record]},
    ) as client:
        yield client


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


async def test_health_and_ready(client):
    assert (await client.get("/v1/health")).json() == {"status": "ok"}
    ready = await client.get("/v1/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert "auth_0001" in ready.json()["schema_heads"]


async def test_ready_is_503_when_the_schema_is_not_migrated(tmp_path):
    runtime = _Runtime(f"sqlite:///{tmp_path}/empty.db")
    app = create_app(runtime, request_hash_key=b"k" * 32)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/v1/ready")
    runtime.engine.dispose()
    assert response.status_code == 503
    assert _error(response)["code"] == "schema_not_at_head"


async def test_openapi_document_is_served(client):
    document = (await client.get("/openapi.json")).json()
    assert document["info"]["title"] == "flashpay"
    assert "/v1/health" in document["paths"]


async def test_unknown_route_and_wrong_method_use_the_error_shape(client):
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert _error(missing)["code"] == "not_found"
    wrong = await client.delete("/v1/health")
    assert wrong.status_code == 405
    assert _error(wrong)["code"] == "method_not_allowed"


async def test_validation_errors_use_the_error_shape_and_never_echo_input(client):
    response = await client.post(
        "/v1/test/echo", json={"value": "not a number", "card_number": CARD_NUMBER + "x"}
    )
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "validation_error"
    assert error["details"]["errors"][0]["location"] == ["body", "value"]
    assert CARD_NUMBER not in response.text
    garbled = await client.post(
        "/v1/test/echo", content=b'{"value": 1, "card_number": "' + CARD_NUMBER.encode()
    )
    assert garbled.status_code == 422
    assert CARD_NUMBER not in garbled.text


@pytest.mark.parametrize(
    ("headers", "path", "status", "code"),
    [
        ({}, "/v1/test/institution", 401, "authentication_required"),
        ({"Authorization": "Bearer nonsense"}, "/v1/test/institution", 401, "invalid_credentials"),
        ({"Authorization": "Basic dXNlcjpw"}, "/v1/test/institution", 401, "invalid_credentials"),
        ({"X-Api-Key": "fpk_unknown"}, "/v1/test/institution", 401, "invalid_credentials"),
        ({"X-Api-Key": "{merchant}"}, "/v1/test/institution", 403, "forbidden"),
        ({"X-Api-Key": "{institution}"}, "/v1/test/merchant", 403, "forbidden"),
        ({"X-Api-Key": "{revoked}"}, "/v1/test/institution", 401, "invalid_credentials"),
        (
            {"X-Api-Key": "{institution}", "Authorization": "ApiKey {institution}"},
            "/v1/test/institution",
            401,
            "invalid_credentials",
        ),
    ],
    ids=[
        "anonymous",
        "bad-bearer",
        "unknown-scheme",
        "unknown-key",
        "merchant-on-institution",
        "institution-on-merchant",
        "revoked",
        "two-credentials",
    ],
)
async def test_api_key_authentication_failures(runtime, client, headers, path, status, code):
    keys = {
        "institution": create_api_key(
            platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=1
        ).key,
        "merchant": create_api_key(
            platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=2
        ).key,
    }
    revoked = create_api_key(platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=1)
    revoke_api_key(platform=runtime, key_id=revoked.key_id)
    keys["revoked"] = revoked.key
    filled = {name: value.format(**keys) for name, value in headers.items()}
    response = await client.get(path, headers=filled)
    assert response.status_code == status
    assert _error(response)["code"] == code
    if status == 401:
        assert "Bearer" in response.headers["www-authenticate"]


async def test_api_keys_in_either_header_authenticate(runtime, client):
    institution = create_api_key(platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=9)
    merchant = create_api_key(platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=8)
    by_header = await client.get("/v1/test/institution", headers={"X-Api-Key": institution.key})
    by_scheme = await client.get(
        "/v1/test/merchant", headers={"Authorization": f"ApiKey {merchant.key}"}
    )
    assert by_header.json() == {"institution_id": 9}
    assert by_scheme.json() == {"merchant_id": 8}


async def test_bearer_tokens_authenticate_users_through_the_wallet_verifier(runtime, client):
    institution = create_api_key(platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=9)
    alice = {"Authorization": "Bearer token-of-alice-0123456789"}
    assert (await client.get("/v1/test/user", headers=alice)).json() == {"user_id": 1}
    unknown = await client.get("/v1/test/user", headers={"Authorization": "Bearer forged"})
    assert unknown.status_code == 401
    assert _error(unknown)["code"] == "invalid_credentials"
    user_on_institution = await client.get("/v1/test/institution", headers=alice)
    institution_on_user = await client.get("/v1/test/user", headers={"X-Api-Key": institution.key})
    assert user_on_institution.status_code == institution_on_user.status_code == 403
    anonymous = await client.get("/v1/test/user")
    assert anonymous.status_code == 401
    assert _error(anonymous)["code"] == "authentication_required"


async def test_without_a_wallet_no_bearer_token_is_valid(runtime):
    app = create_app(runtime, request_hash_key=b"k" * 32)
    app.include_router(_test_router([]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(
            "/v1/test/user", headers={"Authorization": "Bearer token-of-alice-0123456789"}
        )
    assert response.status_code == 401


async def test_idempotency_keys_of_two_users_do_not_collide(client, executions):
    answers = [
        await client.post(
            "/v1/test/echo",
            json={"value": 1},
            headers={"Idempotency-Key": "same", "Authorization": f"Bearer {token}"},
        )
        for token in USER_TOKENS
    ]
    assert [a.json()["caller"] for a in answers] == ["user:1", "user:2"]
    assert executions == [1, 2]


async def test_same_key_same_body_replays_the_first_response(client, executions):
    headers = {"Idempotency-Key": "k-1"}
    first = await client.post("/v1/test/echo", json={"value": 5}, headers=headers)
    second = await client.post("/v1/test/echo", json={"value": 5}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert executions == [1]


async def test_card_numbers_in_idempotent_bodies_are_not_stored(client, executions):
    for number in TEST_CARD_NUMBERS:
        body = {"value": 1, "card_number": number}
        headers = {"Idempotency-Key": f"card-{number[-4:]}"}
        first = await client.post("/v1/test/echo", json=body, headers=headers)
        again = await client.post("/v1/test/echo", json=body, headers=headers)
        assert first.content == again.content
    assert executions == [1, 2]  # the leak guard then searches responses, logs and every table


async def test_same_key_different_body_is_422(client, executions):
    headers = {"Idempotency-Key": "k-2"}
    await client.post("/v1/test/echo", json={"value": 5}, headers=headers)
    reused = await client.post("/v1/test/echo", json={"value": 6}, headers=headers)
    other_path = await client.post("/v1/test/boom", json={"value": 5}, headers=headers)
    assert reused.status_code == other_path.status_code == 422
    assert _error(reused)["code"] == _error(other_path)["code"] == "idempotency_key_reused"
    assert executions == [1]


async def test_keys_are_scoped_to_the_caller(runtime, client, executions):
    one = create_api_key(platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=1).key
    two = create_api_key(platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=2).key
    answers = [
        await client.post(
            "/v1/test/echo", json={"value": 1}, headers={"Idempotency-Key": "k", "X-Api-Key": key}
        )
        for key in (one, two, one)
    ]
    assert [a.json()["caller"] for a in answers] == ["merchant:1", "merchant:2", "merchant:1"]
    assert executions == [1, 2]
    assert answers[0].content == answers[2].content


async def test_a_server_error_is_not_stored_and_the_retry_runs_again(client, executions):
    headers = {"Idempotency-Key": "k-boom"}
    first = await client.post("/v1/test/boom", headers=headers)
    second = await client.post("/v1/test/boom", headers=headers)
    assert first.status_code == second.status_code == 503
    assert executions == [1, 2]


async def test_no_store_responses_are_not_kept_and_retries_run_again(runtime, client, executions):
    headers = {"Idempotency-Key": "k-secret"}
    first = await client.post("/v1/test/secret", headers=headers)
    second = await client.post("/v1/test/secret", headers=headers)
    assert [first.json()["token"], second.json()["token"]] == ["secret-token-1", "secret-token-2"]
    with runtime.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT COUNT(*) FROM api_idempotency")).scalar()
    assert rows == 0


async def test_an_unhandled_error_is_500_in_the_error_shape_and_not_stored(app, executions):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answers = [
            await client.post("/v1/test/crash", headers={"Idempotency-Key": "k-crash"})
            for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [500, 500]
    assert _error(answers[0]) == {
        "code": "internal_error",
        "message": "internal server error",
        "details": {},
    }
    assert "a bug" not in answers[0].text
    assert executions == [1, 2]


async def test_requests_without_a_key_are_not_deduplicated(client, executions):
    for _ in range(3):
        await client.post("/v1/test/echo", json={"value": 1})
    assert executions == [1, 2, 3]


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"], ids=["empty", "long", "control"])
async def test_malformed_idempotency_keys_are_422(client, executions, key):
    response = await client.post(
        "/v1/test/echo", json={"value": 1}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 422
    assert _error(response)["code"] == "invalid_idempotency_key"
    assert executions == []


async def test_keys_are_kept_24_hours_then_reusable(runtime, client, executions):
    headers = {"Idempotency-Key": "k-ttl"}
    await client.post("/v1/test/echo", json={"value": 1}, headers=headers)
    runtime.clock.advance(IDEMPOTENCY_KEY_TTL_SECONDS - 1)
    await client.post("/v1/test/echo", json={"value": 1}, headers=headers)
    assert executions == [1]
    runtime.clock.advance(2)
    later = await client.post("/v1/test/echo", json={"value": 2}, headers=headers)
    assert later.status_code == 201
    assert later.json()["execution"] == 2


async def test_expired_keys_are_purged_by_the_middleware(runtime, executions):
    app = create_app(runtime, request_hash_key=b"k" * 32)
    app.include_router(_test_router(executions))
    (idempotency,) = [m for m in app.user_middleware if m.cls is IdempotencyMiddleware]
    idempotency.kwargs["purge_every"] = 3  # sweep after every third stored answer
    transport = httpx.ASGITransport(app=app)

    def stored_keys() -> list[str]:
        with runtime.engine.connect() as connection:
            query = "SELECT idempotency_key FROM api_idempotency ORDER BY idempotency_key"
            return list(connection.execute(sa.text(query)).scalars())

    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def post(key: str) -> None:
            response = await client.post(
                "/v1/test/echo", json={"value": 1}, headers={"Idempotency-Key": key}
            )
            assert response.status_code == 201

        await post("old-1")
        await post("old-2")
        runtime.clock.advance(IDEMPOTENCY_KEY_TTL_SECONDS + 1)
        await post("new-1")  # the third stored answer: sweeps old-1 and old-2
        assert stored_keys() == ["new-1"]
        await post("new-2")
        assert stored_keys() == ["new-1", "new-2"]


async def test_concurrent_requests_with_one_key_execute_once(runtime, executions):
    release = asyncio.Event()
    app = create_app(runtime, request_hash_key=b"k" * 32)
    app.include_router(_test_router(executions, release))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        requests = [
            asyncio.create_task(
                client.post("/v1/test/echo", json={"value": 3}, headers={"Idempotency-Key": "c"})
            )
            for _ in range(10)
        ]
        while not executions:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the other nine are now waiting on the claimed key
        release.set()
        responses = await asyncio.gather(*requests)
    assert executions == [1]
    assert {(r.status_code, r.content) for r in responses} == {(201, responses[0].content)}


async def test_an_abandoned_claim_is_taken_over_after_the_lease(runtime, client, executions):
    from flashpay.api.idempotency import IdempotencyStore, request_hash

    digest = request_hash(
        hash_key=b"k" * 32, method="POST", path="/v1/test/echo", query=b"", body=b'{"value":4}'
    )
    IdempotencyStore(runtime).claim(principal="anonymous", key="k-dead", request_hash=digest)
    runtime.clock.advance(IDEMPOTENCY_LEASE_SECONDS + 1)
    response = await client.post(
        "/v1/test/echo",
        content=b'{"value":4}',
        headers={"Idempotency-Key": "k-dead", "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert executions == [1]
    with runtime.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT status_code FROM api_idempotency")).scalar()
    assert stored == 201


async def test_cursor_pagination_walks_every_item_once(client):
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/test/numbers", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(1, 11))


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "validation_error"),
        ({"limit": 101}, "validation_error"),
        ({"cursor": "%%%"}, "invalid_cursor"),
        ({"cursor": encode_cursor({"after": "x"})}, "invalid_cursor"),
        ({"cursor": "W10"}, "invalid_cursor"),
    ],
    ids=["zero", "above-max", "garbled", "wrong-type", "not-an-object"],
)
async def test_bad_pagination_parameters_are_422(client, params, code):
    response = await client.get("/v1/test/numbers", params=params)
    assert response.status_code == 422
    assert _error(response)["code"] == code
