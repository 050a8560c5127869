"""Idempotency claims and stored answers in batches: the group commit of ``api_idempotency``.

The profile of issue 14 (docs/benchmarks.md) found the idempotency layer the largest per-request
cost the payment switches' group commit does not share: every POST claims its key with an INSERT
and stores its answer with an UPDATE, two statements (and two commits) per request while the
payment itself costs a few statements per *batch*. ``BatchedIdempotencyStore`` puts both through
a ``flashpay.batching.GroupCommit`` per worker, like the payment switch: the claims that meet in
a worker go to the database as one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (the keys it
returns are claimed; the others — taken already, or a twin in the same batch — take the ordinary
path of ``IdempotencyStore.claim`` in their own caller: compare the hash, replay, wait, or take
over an abandoned claim), and the answers that meet as one transaction of pipelined UPDATEs.
A request alone still costs one statement each (a batch of one uses the single-statement path).

Nothing about the contract changes (decision 0013): the claim is still an insert that the primary
key (caller, key) makes atomic across processes, and the answer is stored before it is sent. A
database error fails the callers of that batch only, each of which then answers as before (a
claim that failed is a 5xx without effect; an answer that failed to be stored leaves a claim the
lease hands to the retry, whose service answers from the bound effect).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flashpay.api.idempotency import (
    IDEMPOTENCY_LEASE_SECONDS,
    Claim,
    ClaimOutcome,
    IdempotencyStore,
    StoredResponse,
)
from flashpay.api.models import idempotency_keys
from flashpay.batching import GroupCommit
from flashpay.platform import Runtime

BATCH_MAX = 256
IN_FLIGHT_MAX = 2


@dataclass(frozen=True, slots=True)
class _ClaimRequest:
    principal: str
    key: str
    request_hash: bytes


@dataclass(frozen=True, slots=True)
class _Completion:
    principal: str
    key: str
    response: StoredResponse


_COMPLETE = (
    idempotency_keys.update()
    .where(
        idempotency_keys.c.principal == sa.bindparam("b_principal"),
        idempotency_keys.c.idempotency_key == sa.bindparam("b_key"),
    )
    .values(
        status_code=sa.bindparam("b_status"),
        content_type=sa.bindparam("b_type"),
        response_body=sa.bindparam("b_body"),
        completed_at_ns=sa.bindparam("b_now"),
    )
)


class BatchedIdempotencyStore(IdempotencyStore):
    """``IdempotencyStore`` whose fresh claims and stored answers are written in batches."""

    def __init__(
        self, platform: Runtime, *, lease_seconds: int = IDEMPOTENCY_LEASE_SECONDS
    ) -> None:
        super().__init__(platform, lease_seconds=lease_seconds)
        self._runtime = platform
        self._claims: GroupCommit[_ClaimRequest, bool] = GroupCommit(
            self._insert_claims, batch_max=BATCH_MAX, in_flight_max=IN_FLIGHT_MAX
        )
        self._completions: GroupCommit[_Completion, None] = GroupCommit(
            self._store_answers, batch_max=BATCH_MAX, in_flight_max=IN_FLIGHT_MAX
        )

    def claim(self, *, principal: str, key: str, request_hash: bytes) -> Claim:
        if self._claims.submit(_ClaimRequest(principal, key, request_hash)):
            return Claim(ClaimOutcome.CLAIMED)
        return super().claim(principal=principal, key=key, request_hash=request_hash)

    def complete(self, *, principal: str, key: str, response: StoredResponse) -> None:
        self._completions.submit(_Completion(principal, key, response))

    # -- the batches -------------------------------------------------------------------------
    def _insert_claims(self, requests: Sequence[_ClaimRequest]) -> list[bool]:
        """Insert every first occurrence of a (caller, key) whose row does not exist; ``True``
        for each request that got its row."""
        if len(requests) == 1:
            [one] = requests
            return [_claimed(super().claim(principal=one.principal, key=one.key,
                                           request_hash=one.request_hash))]  # fmt: skip
        now_ns = self._runtime.clock.now_ns()
        first: dict[tuple[str, str], int] = {}
        for index, request in enumerate(requests):
            first.setdefault((request.principal, request.key), index)
        rows = [
            {
                "principal": requests[i].principal,
                "idempotency_key": requests[i].key,
                "request_hash": requests[i].request_hash,
                "created_at_ns": now_ns,
                "claimed_at_ns": now_ns,
            }
            for i in first.values()
        ]
        engine = self._runtime.engine
        insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
        statement = (
            insert(idempotency_keys)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.principal, idempotency_keys.c.idempotency_key)
        )
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            won = {(r.principal, r.idempotency_key) for r in connection.execute(statement)}
        return [
            (r.principal, r.key) in won and first[(r.principal, r.key)] == i
            for i, r in enumerate(requests)
        ]

    def _store_answers(self, completions: Sequence[_Completion]) -> list[None]:
        if len(completions) == 1:
            [one] = completions
            super().complete(principal=one.principal, key=one.key, response=one.response)
            return [None]
        now_ns = self._runtime.clock.now_ns()
        with self._runtime.engine.begin() as connection:
            connection.execute(
                _COMPLETE,
                [
                    {
                        "b_principal": c.principal,
                        "b_key": c.key,
                        "b_status": c.response.status_code,
                        "b_type": c.response.content_type,
                        "b_body": c.response.body,
                        "b_now": now_ns,
                    }
                    for c in completions
                ],
            )
        return [None] * len(completions)


def _claimed(claim: Claim) -> bool:
    """A batch of one goes the ordinary way; only a fresh claim counts as won here (anything
    else is looked at again by its caller, which costs that rare case one read more)."""
    return claim.outcome is ClaimOutcome.CLAIMED
