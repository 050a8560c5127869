"""Effects bound to Idempotency-Keys: a retried request finds what its first try did.

The HTTP layer claims a key and stores the answer (``flashpay.api.idempotency``), but those are
commits of their own: a process killed after the business effect committed and before the answer
was stored would leave a key with no answer, and a retry would do the effect again. So the
effect itself records who asked: the service that creates something inserts one row
``(scope, idempotency_key) → (kind, effect_id)`` into ``api_idempotency_effects`` *in the same
transaction* as the effect (decision 0013). The primary key makes it at most one effect per key,
whatever the leases, the retries and the processes do; a retry first looks the key up and, when
it is bound, answers from the effect instead of doing it again.

An ``IdempotencyTag`` travels with a request from the HTTP layer to the service (as an argument,
or as a field of a batch request: the group-commit switch runs a batch on another caller's
thread). ``None`` means the caller sent no key: nothing is bound, nothing is looked up.

Two ways to use it:

- ``once(engine, tag, kind=…, create=…, load=…)`` for an effect that is one transaction: it
  looks the key up, runs ``create`` and binds its result in one transaction, and if a twin
  request bound the key first (the insert conflicts), rolls back and answers the twin's effect.
- ``find_effects`` / ``bind_effects`` for the batch paths: one read of the batch's keys before,
  one insert of its bindings inside the record transaction; a conflict raises
  ``EffectConflictError`` so the whole transaction rolls back and the batch is run again, when
  the look-up finds the twin's effect.

Bindings live as long as the keys (``KEY_TTL_SECONDS``): ``purge_expired`` deletes both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from flashpay.db import metadata
from flashpay.errors import FlashpayError

SCOPE_CHARS_MAX = 64
KEY_CHARS_MAX = 255
KIND_CHARS_MAX = 32
KEY_TTL_SECONDS = 24 * 3600
LOOKUP_KEYS_MAX = 1_000  # keys per look-up statement
ONCE_TRIES_MAX = 2  # the first try, and one after a twin request bound the key first

effects = sa.Table(
    "api_idempotency_effects",
    metadata,
    sa.Column("scope", sa.String(SCOPE_CHARS_MAX), primary_key=True),
    sa.Column("idempotency_key", sa.String(KEY_CHARS_MAX), primary_key=True),
    sa.Column("kind", sa.String(KIND_CHARS_MAX), nullable=False),
    sa.Column("effect_id", sa.BigInteger, nullable=False),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True, order=True)
class IdempotencyTag:
    """Who asked (the caller's scope, e.g. ``user:42``) and with which Idempotency-Key."""

    scope: str
    key: str


@dataclass(frozen=True, slots=True)
class Effect:
    """What a key's first request created: its kind (``payment``, ``transfer``, …) and id."""

    kind: str
    effect_id: int


class EffectConflictError(FlashpayError):
    """A twin request (same caller, same key) bound the key first; roll back and look again."""

    def __init__(self, tags: Collection[IdempotencyTag]) -> None:
        super().__init__(f"{len(tags)} Idempotency-Key(s) already bound")
        self.tags = frozenset(tags)


def find_effects(
    connection: sa.Connection, tags: Iterable[IdempotencyTag | None]
) -> dict[IdempotencyTag, Effect]:
    """The effects bound to ``tags`` (``None``s are skipped), in one statement per
    ``LOOKUP_KEYS_MAX`` keys."""
    wanted = sorted({t for t in tags if t is not None})
    found: dict[IdempotencyTag, Effect] = {}
    e = effects.c
    for start in range(0, len(wanted), LOOKUP_KEYS_MAX):
        chunk = wanted[start : start + LOOKUP_KEYS_MAX]
        rows = connection.execute(
            sa.select(e.scope, e.idempotency_key, e.kind, e.effect_id).where(
                sa.tuple_(e.scope, e.idempotency_key).in_([(t.scope, t.key) for t in chunk])
            )
        )
        for row in rows:
            found[IdempotencyTag(str(row.scope), str(row.idempotency_key))] = Effect(
                str(row.kind), int(row.effect_id)
            )
    return found


def effect_of(engine: Engine, tag: IdempotencyTag | None) -> Effect | None:
    """The effect ``tag`` is bound to, if any (one read; ``None`` without a tag)."""
    if tag is None:
        return None
    with engine.connect() as connection:
        return find_effects(connection, [tag]).get(tag)


def bind_effects(
    connection: sa.Connection,
    bindings: Mapping[IdempotencyTag, Effect],
    *,
    now_ns: int,
) -> None:
    """Bind each tag to its effect in the caller's transaction; raises ``EffectConflictError``
    (the caller must roll back) when any of them is bound already. Inserted in key order, so two
    batches that share keys wait for each other instead of deadlocking."""
    if not bindings:
        return
    rows = [
        {
            "scope": tag.scope,
            "idempotency_key": tag.key,
            "kind": effect.kind,
            "effect_id": effect.effect_id,
            "created_at_ns": now_ns,
        }
        for tag, effect in sorted(bindings.items())
    ]
    try:
        connection.execute(effects.insert(), rows)
    except IntegrityError as exc:  # the transaction is spoilt: the caller's block rolls it back
        raise EffectConflictError(bindings.keys()) from exc


def once(
    engine: Engine,
    tag: IdempotencyTag | None,
    *,
    kind: str,
    now_ns: Callable[[], int],
    create: Callable[[sa.Connection], tuple[int, T]],
    load: Callable[[sa.Connection, int], T],
) -> T:
    """Run a one-transaction effect at most once per ``tag``.

    ``create(connection)`` does the effect and returns (its id, the answer); ``load(connection,
    effect_id)`` answers an effect done before (by the first try of this request, or a twin that
    won the race). Without a tag this is just ``create`` in a transaction. A domain refusal raised
    by ``create`` rolls back like any exception, and nothing is bound."""
    for _ in range(ONCE_TRIES_MAX):
        try:
            with engine.begin() as connection:
                if tag is not None:
                    found = find_effects(connection, [tag]).get(tag)
                    if found is not None:
                        return load(connection, found.effect_id)
                effect_id, answer = create(connection)
                if tag is not None:
                    bind_effects(connection, {tag: Effect(kind, effect_id)}, now_ns=now_ns())
                return answer
        except EffectConflictError:
            continue
    raise RuntimeError(f"Idempotency-Key {tag} stayed in conflict")  # pragma: no cover


def forget(connection: sa.Connection, tag: IdempotencyTag) -> None:
    """Unbind a key whose claim expired and is being reused for a new request."""
    connection.execute(
        effects.delete().where(effects.c.scope == tag.scope, effects.c.idempotency_key == tag.key)
    )


def purge_expired(connection: sa.Connection, *, cutoff_ns: int, limit: int) -> int:
    """Delete up to ``limit`` bindings created before ``cutoff_ns``; returns how many went."""
    e = effects.c
    rows = connection.execute(
        sa.select(e.scope, e.idempotency_key).where(e.created_at_ns < cutoff_ns).limit(limit)
    ).all()
    for row in rows:
        connection.execute(
            effects.delete().where(e.scope == row.scope, e.idempotency_key == row.idempotency_key)
        )
    return len(rows)
