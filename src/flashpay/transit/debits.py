"""Deferred debits: a rider's priced trips charged to the card after the fact, to the operator.

One debit per rider, China day and operator: the six legs of a purchase (ARCHITECTURE.md §4,
``payments.legs.purchase_legs`` with the operator's scene fees) from the card's account through
the network to the operator's acquirer, one linked chain, posted through ``payments.legs``. The
ledger ids derive from the debit's id and its attempt number, so a debit retried after a crash
posts once (the ledger answers ``exists``); a new attempt (after a refusal) gets new ids.

A chain the ledger refuses (the card's deposit cannot cover it, the credit line is exhausted)
marks the debit ``failed`` and puts the token on the deny list, in the same transaction; gates
refuse the rider after their next refresh. ``retry_failed`` (the rider topped up) posts again,
and a paid token leaves the deny list.

Each chain's commitment (kept in the audit log's leaf) binds the debit and the deny-list version
in force (``denylist``): what was charged, and under which list.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from flashpay.cards.service import cards_by_id
from flashpay.institutions.chart import TransferCode
from flashpay.ledger.ids import derive_id
from flashpay.merchants.service import get_merchants
from flashpay.payments.legs import chain_of, chain_refusal, post_chains, purchase_legs
from flashpay.payments.receipts import commitment
from flashpay.platform import Platform
from flashpay.transit.denylist import allow_tokens, current_version, deny_tokens
from flashpay.transit.models import transit_debits, transit_deny_versions

DEBIT_COMMITMENT = "flashpay.transit.debit.v1"
DENY_REASON = "unpaid_debit"


class DebitStatus(StrEnum):
    PENDING = "pending"  # recorded, not yet answered by the ledger
    POSTED = "posted"
    FAILED = "failed"  # refused by the ledger: the token is deny-listed


@dataclass(frozen=True, slots=True)
class DebitOutcome:
    debit_id: int
    token: str
    amount_minor: int
    status: DebitStatus


def ledger_ids(debit_id: int, attempt: int) -> list[int]:
    return [derive_id("flashpay.transit.debit", f"{debit_id}:{attempt}:{n}") for n in range(6)]


def post_debits(*, platform: Platform, debit_ids: Sequence[int]) -> list[DebitOutcome]:
    """Post the pending or failed debits ``debit_ids``; deny-list the tokens of those refused and
    allow again those whose every debit is now posted."""
    if not debit_ids:
        return []
    with platform.engine.connect() as connection:
        rows = list(
            connection.execute(
                sa.select(transit_debits, transit_deny_versions.c.digest)
                .outerjoin(
                    transit_deny_versions,
                    transit_deny_versions.c.version == transit_debits.c.deny_version,
                )
                .where(
                    transit_debits.c.id.in_(sorted(set(debit_ids))),
                    transit_debits.c.status != DebitStatus.POSTED.value,
                )
                .order_by(transit_debits.c.id)
            )
        )
        cards = cards_by_id(connection=connection, card_ids=[int(r.card_id) for r in rows])
    merchants = get_merchants(platform=platform, merchant_ids=[int(r.merchant_id) for r in rows])
    chains = []
    commitments = {}
    for r in rows:
        legs = purchase_legs(
            platform, cards[int(r.card_id)], merchants[int(r.merchant_id)], int(r.amount_minor)
        )
        chain = chain_of(
            legs, ledger_ids(int(r.id), int(r.attempt)), TransferCode.PURCHASE, int(r.id)
        )
        chains.append(chain)
        digest = bytes(r.digest).hex() if r.digest is not None else "0" * 64
        commitments[chain[0].id] = commitment(
            bytes(r.salt),
            DEBIT_COMMITMENT,
            int(r.id),
            int(r.amount_minor),
            "CNY",
            int(r.deny_version),
            digest,
        )
    results = post_chains(platform, chains, commitments)
    outcomes = []
    now = platform.clock.now_ns()
    with platform.engine.begin() as connection:
        failed_tokens, paid_tokens = [], []
        for r, result in zip(rows, results, strict=True):
            refused = chain_refusal(result)
            status = DebitStatus.POSTED if refused is None else DebitStatus.FAILED
            values: dict[str, object] = {"status": status.value}
            if refused is not None:
                values["attempt"] = int(r.attempt) + 1  # the next try gets fresh ledger ids
                failed_tokens.append(str(r.token))
            else:
                paid_tokens.append(str(r.token))
            connection.execute(
                transit_debits.update().where(transit_debits.c.id == r.id).values(**values)
            )
            outcomes.append(DebitOutcome(int(r.id), str(r.token), int(r.amount_minor), status))
        if failed_tokens:
            deny_tokens(connection, tokens=failed_tokens, reason=DENY_REASON, now_ns=now)
        still_owing = {
            str(t)
            for (t,) in connection.execute(
                sa.select(transit_debits.c.token).where(
                    transit_debits.c.token.in_(sorted(set(paid_tokens))),
                    transit_debits.c.status == DebitStatus.FAILED.value,
                )
            )
        }
        cleared = sorted(set(paid_tokens) - still_owing - set(failed_tokens))
        if cleared:
            allow_tokens(connection, tokens=cleared, now_ns=now)
    return outcomes


def record_debits(
    connection: sa.Connection, *, groups: Sequence[tuple[str, int, int, int, int]], now_ns: int
) -> list[int]:
    """Record one pending debit per (token, card id, merchant id, day, amount) in the caller's
    transaction; their ids, in order."""
    version = current_version(connection).version
    first = (
        int(
            connection.execute(
                sa.select(sa.func.coalesce(sa.func.max(transit_debits.c.id), 0))
            ).scalar_one()
        )
        + 1
    )
    rows = [
        {
            "id": first + n,
            "token": token,
            "card_id": card_id,
            "merchant_id": merchant_id,
            "day": day,
            "amount_minor": amount,
            "status": DebitStatus.PENDING.value,
            "attempt": 0,
            "salt": secrets.token_bytes(16),
            "deny_version": version,
            "created_at_ns": now_ns,
        }
        for n, (token, card_id, merchant_id, day, amount) in enumerate(groups)
    ]
    if rows:
        connection.execute(transit_debits.insert(), rows)
    return [int(str(r["id"])) for r in rows]


def unsettled_debits(*, platform: Platform, token: str | None = None) -> list[int]:
    """The debits not posted yet (pending after a crash, or failed), optionally of one token."""
    query = sa.select(transit_debits.c.id).where(
        transit_debits.c.status != DebitStatus.POSTED.value
    )
    if token is not None:
        query = query.where(transit_debits.c.token == token)
    with platform.engine.connect() as connection:
        return [int(i) for (i,) in connection.execute(query)]
