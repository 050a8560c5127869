"""Idempotency keys: a POST retried with the same ``Idempotency-Key`` is answered once.

An ASGI middleware in front of every route. For a POST with an ``Idempotency-Key`` header it:

1. reads the body and computes ``request_hash`` = HMAC-SHA256(key, method, path, query, body);
2. *claims* the key for the caller (``Principal.scope``, or ``anonymous``) with an INSERT into
   ``api_idempotency`` — the primary key (caller, key) makes the claim atomic across processes
   and databases (SQLite and PostgreSQL alike);
3. if the claim wins, runs the route, stores the response (status, content type, body) and sends
   it; a 5xx is not stored (the claim is released so a retry runs again), nor is a response marked
   ``Cache-Control: no-store`` — a route whose answer holds a secret (a login's bearer token) sets
   it, so the secret never rests in ``api_idempotency``;
4. if the key is already taken: a different ``request_hash`` → 422 ``idempotency_key_reused``;
   a stored response → that response replayed byte for byte (plus ``Idempotent-Replayed: true``);
   still running → wait for it (polling, up to ``IDEMPOTENCY_WAIT_SECONDS_MAX``), then replay, or
   409 ``idempotency_request_in_progress`` if it has not finished.

The claim and the stored answer are commits of their own, so they alone cannot make a retry
safe: a process killed after the route's effect committed and before its answer was stored
leaves a claim with no answer. The route therefore gets the caller's ``IdempotencyTag`` (in the
ASGI scope, ``IDEMPOTENCY_SCOPE_KEY``; routers read it through ``api.deps.IdempotencyDep``) and
the service binds the key to the effect *in the effect's own transaction*
(``flashpay.idempotency``, decision 0013). A claim whose request died (a crashed worker, or one
that answered 5xx) is taken over after ``IDEMPOTENCY_LEASE_SECONDS`` (or at once, when it was
released) and the route runs again — and its service, finding the key bound, answers from the
effect instead of doing it twice. So the lease decides only how long a retry waits for a first
try that may still be running, never whether an effect happens twice.

Keys are kept at least ``IDEMPOTENCY_KEY_TTL_SECONDS`` (24 h); an older row is replaced by the next
request with that key (and its effect unbound), and each worker deletes up to ``PURGE_BATCH_MAX``
expired rows after every ``PURGE_EVERY_COMPLETIONS`` stored responses, so the table stays about
one day of POSTs long. This follows the IETF draft "The Idempotency-Key HTTP Header Field"
(draft-ietf-httpapi-idempotency-key-header) and Stripe's keys (atomic phases, recovery points).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashpay.api.errors import ApiError, error_body
from flashpay.api.models import IDEMPOTENCY_KEY_CHARS_MAX, idempotency_keys
from flashpay.api.security import Authenticator
from flashpay.clock import NS_PER_SECOND
from flashpay.errors import InvariantError
from flashpay.idempotency import KEY_TTL_SECONDS, IdempotencyTag, forget
from flashpay.idempotency import purge_expired as purge_expired_effects
from flashpay.platform import Runtime

IDEMPOTENCY_HEADER = "idempotency-key"
IDEMPOTENCY_KEY_TTL_SECONDS = KEY_TTL_SECONDS
# How long a retry waits for a first try that may still be running before it runs the route
# itself (which then answers from the bound effect, if there is one). Safe at any length;
# ``$FLASHPAY_IDEMPOTENCY_LEASE_SECONDS`` overrides it (the kill -9 harness uses 2 s).
IDEMPOTENCY_LEASE_SECONDS = int(os.environ.get("FLASHPAY_IDEMPOTENCY_LEASE_SECONDS", "10"))
IDEMPOTENCY_SCOPE_KEY = "flashpay.idempotency"  # the ASGI scope entry holding the request's tag
IDEMPOTENCY_WAIT_SECONDS_MAX = 30.0
IDEMPOTENCY_POLL_SECONDS = 0.01
REQUEST_BODY_BYTES_MAX = 1024 * 1024
PURGE_EVERY_COMPLETIONS = 1_000  # each worker sweeps expired keys after this many stored answers
PURGE_BATCH_MAX = 1_000
ANONYMOUS_SCOPE = "anonymous"


class ClaimOutcome(StrEnum):
    """What claiming a key found, in check order."""

    CLAIMED = "claimed"
    KEY_REUSED = "key_reused"
    COMPLETED = "completed"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    response: StoredResponse | None = None


class IdempotencyStore:
    """The ``api_idempotency`` rows of one database.

    The claim, the stored response and the release are each one statement run in autocommit mode:
    one round trip and one commit apiece, instead of BEGIN, statement, COMMIT.
    """

    def __init__(
        self, platform: Runtime, *, lease_seconds: int = IDEMPOTENCY_LEASE_SECONDS
    ) -> None:
        self._platform = platform
        self._lease_ns = lease_seconds * NS_PER_SECOND

    def claim(self, *, principal: str, key: str, request_hash: bytes) -> Claim:
        now_ns = self._platform.clock.now_ns()
        table = idempotency_keys
        try:
            with self._platform.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.execute(
                    table.insert().values(
                        principal=principal,
                        idempotency_key=key,
                        request_hash=request_hash,
                        created_at_ns=now_ns,
                        claimed_at_ns=now_ns,
                    )
                )
            return Claim(ClaimOutcome.CLAIMED)
        except IntegrityError:
            pass
        with self._platform.engine.begin() as connection:
            row = connection.execute(
                sa.select(table).where(
                    table.c.principal == principal, table.c.idempotency_key == key
                )
            ).first()
            if row is None:  # removed (expired or released) between the insert and the select
                return self.claim(principal=principal, key=key, request_hash=request_hash)
            expired = row.created_at_ns < now_ns - IDEMPOTENCY_KEY_TTL_SECONDS * NS_PER_SECOND
            abandoned = row.status_code is None and row.claimed_at_ns < now_ns - self._lease_ns
            if expired or (abandoned and row.request_hash == request_hash):
                taken_over = connection.execute(
                    table.update()
                    .where(
                        table.c.principal == principal,
                        table.c.idempotency_key == key,
                        table.c.claimed_at_ns == row.claimed_at_ns,
                    )
                    .values(
                        request_hash=request_hash,
                        status_code=None,
                        content_type=None,
                        response_body=None,
                        created_at_ns=now_ns if expired else row.created_at_ns,
                        claimed_at_ns=now_ns,
                        completed_at_ns=None,
                    )
                ).rowcount
                if taken_over == 1:
                    if expired:  # a new request under an old key: the old effect is not its own
                        forget(connection, IdempotencyTag(principal, key))
                    return Claim(ClaimOutcome.CLAIMED)
                return Claim(ClaimOutcome.IN_PROGRESS)
        if not hmac.compare_digest(row.request_hash, request_hash):
            return Claim(ClaimOutcome.KEY_REUSED)
        if row.status_code is None:
            return Claim(ClaimOutcome.IN_PROGRESS)
        return Claim(
            ClaimOutcome.COMPLETED,
            StoredResponse(row.status_code, row.content_type, bytes(row.response_body)),
        )

    def complete(self, *, principal: str, key: str, response: StoredResponse) -> None:
        with self._platform.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(
                idempotency_keys.update()
                .where(
                    idempotency_keys.c.principal == principal,
                    idempotency_keys.c.idempotency_key == key,
                )
                .values(
                    status_code=response.status_code,
                    content_type=response.content_type,
                    response_body=response.body,
                    completed_at_ns=self._platform.clock.now_ns(),
                )
            )

    def release(self, *, principal: str, key: str) -> None:
        with self._platform.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(
                idempotency_keys.delete().where(
                    idempotency_keys.c.principal == principal,
                    idempotency_keys.c.idempotency_key == key,
                    idempotency_keys.c.status_code.is_(None),
                )
            )

    def purge_expired(self, *, limit: int = PURGE_BATCH_MAX) -> int:
        """Delete up to ``limit`` keys older than the TTL; returns how many went."""
        cutoff_ns = self._platform.clock.now_ns() - IDEMPOTENCY_KEY_TTL_SECONDS * NS_PER_SECOND
        table = idempotency_keys
        expired = (
            sa.select(table.c.principal, table.c.idempotency_key)
            .where(table.c.created_at_ns < cutoff_ns)
            .limit(limit)
        )
        with self._platform.engine.begin() as connection:
            rows = connection.execute(expired).all()
            for row in rows:
                connection.execute(
                    table.delete().where(
                        table.c.principal == row.principal,
                        table.c.idempotency_key == row.idempotency_key,
                        table.c.created_at_ns < cutoff_ns,
                    )
                )
            purge_expired_effects(connection, cutoff_ns=cutoff_ns, limit=limit)
        return len(rows)


def request_hash(*, hash_key: bytes, method: str, path: str, query: bytes, body: bytes) -> bytes:
    """HMAC-SHA256 of the request: keyed, so a stored hash cannot be searched for a card number."""
    mac = hmac.new(hash_key, digestmod=hashlib.sha256)
    for part in (method.encode(), path.encode(), query, body):
        mac.update(len(part).to_bytes(8, "big"))
        mac.update(part)
    return mac.digest()


class IdempotencyMiddleware:
    """Pure ASGI middleware (no per-request task or body re-streaming beyond what it needs)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        platform: Runtime,
        authenticator: Authenticator,
        hash_key: bytes,
        purge_every: int = PURGE_EVERY_COMPLETIONS,
        lease_seconds: int = IDEMPOTENCY_LEASE_SECONDS,
        store: IdempotencyStore | None = None,
    ) -> None:
        self.app = app
        self._completed = 0
        self._purge_every = purge_every
        self._authenticator = authenticator
        # ``store``: e.g. ``idempotency_batch.BatchedIdempotencyStore`` (the app's, decision 0025)
        self._store = store or IdempotencyStore(platform, lease_seconds=lease_seconds)
        self._hash_key = hash_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = Headers(scope=scope).get(IDEMPOTENCY_HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > IDEMPOTENCY_KEY_CHARS_MAX or not key.isprintable():
            await _send_error(
                send,
                422,
                "invalid_idempotency_key",
                f"Idempotency-Key must be 1..{IDEMPOTENCY_KEY_CHARS_MAX} printable characters",
            )
            return
        try:
            body = await _read_body(receive)
        except _BodyTooLargeError:
            await _send_error(send, 413, "request_too_large", "the request body is too large")
            return
        replay_receive = _replaying(body)
        digest = request_hash(
            hash_key=self._hash_key,
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b""),
            body=body,
        )

        def authenticate_and_claim() -> tuple[str, Claim] | None:
            """One thread hop for both look-ups; ``None`` when the credentials are invalid."""
            try:
                principal = self._authenticator.cached(scope)
            except ApiError:
                return None
            caller = principal.scope if principal is not None else ANONYMOUS_SCOPE
            return caller, self._store.claim(principal=caller, key=key, request_hash=digest)

        first = await to_thread.run_sync(authenticate_and_claim)
        if first is None:
            # Invalid credentials: nothing to protect; the route answers 401 from the cached error.
            await self.app(scope, replay_receive, send)
            return
        caller, claim = first
        waited_seconds = 0.0
        while claim.outcome is ClaimOutcome.IN_PROGRESS:
            if waited_seconds >= IDEMPOTENCY_WAIT_SECONDS_MAX:
                await _send_error(
                    send,
                    409,
                    "idempotency_request_in_progress",
                    "a request with this Idempotency-Key is still being processed; retry later",
                )
                return
            await asyncio.sleep(IDEMPOTENCY_POLL_SECONDS)
            waited_seconds += IDEMPOTENCY_POLL_SECONDS
            claim = await to_thread.run_sync(
                lambda: self._store.claim(principal=caller, key=key, request_hash=digest)
            )
        if claim.outcome is ClaimOutcome.KEY_REUSED:
            await _send_error(
                send,
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            )
            return
        if claim.outcome is ClaimOutcome.COMPLETED:
            if claim.response is None:
                raise InvariantError("a completed claim holds its response")
            await _send_stored(send, claim.response, replayed=True)
            return
        # The route's service binds the key to its effect in the effect's transaction.
        scope[IDEMPOTENCY_SCOPE_KEY] = IdempotencyTag(caller, key)
        await self._execute(scope, replay_receive, send, caller=caller, key=key)

    async def _execute(
        self, scope: Scope, receive: Receive, send: Send, *, caller: str, key: str
    ) -> None:
        start: Message = {"type": "http.response.start", "status": 500, "headers": []}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await to_thread.run_sync(lambda: self._store.release(principal=caller, key=key))
            raise
        status_code = int(start["status"])
        headers = Headers(raw=start.get("headers", []))
        response = StoredResponse(status_code, headers.get("content-type"), b"".join(chunks))
        no_store = "no-store" in headers.get("cache-control", "").lower()
        if status_code >= 500 or no_store:
            await to_thread.run_sync(lambda: self._store.release(principal=caller, key=key))
        else:
            await to_thread.run_sync(
                lambda: self._store.complete(principal=caller, key=key, response=response)
            )
            self._completed += 1
            if self._completed % self._purge_every == 0:
                await to_thread.run_sync(self._store.purge_expired)
        await send(start)  # the first answer keeps all its headers; replays keep the content type
        await send({"type": "http.response.body", "body": response.body, "more_body": False})


class _BodyTooLargeError(Exception):
    pass


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > REQUEST_BODY_BYTES_MAX:
            raise _BodyTooLargeError
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that stays connected
        raise AssertionError("unreachable")

    return receive


async def _send_stored(send: Send, response: StoredResponse, *, replayed: bool) -> None:
    headers = [(b"content-length", str(len(response.body)).encode())]
    if response.content_type is not None:
        headers.append((b"content-type", response.content_type.encode()))
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})


async def _send_error(send: Send, status_code: int, code: str, message: str) -> None:
    response = StoredResponse(status_code, "application/json", error_body(code, message))
    await _send_stored(send, response, replayed=False)
