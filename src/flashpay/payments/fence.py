"""Fences: recovery settles a record left ``created`` without racing a request still in flight.

A payment, transfer or refund is recorded ``created``, then its chain is posted to the ledger,
then the record is completed — three commits. Recovery finds records left ``created`` and must
decide: did the chain post (complete the record) or not (decline it and give back its limits)?
Looking the chain up is not enough: a request still in flight (a slow process, not a dead one)
may post it a moment after the look-up found nothing, and the money would move for a declined
record. Recovery by age alone cannot rule that out.

The ledger's transfer ids decide instead. A record's chain has ids derived from the record, and
a transfer id exists at most once (ARCHITECTURE.md §7.4). Recovery posts a *fence* under every id
the chain may use (a purchase leaves out its zero-amount legs, so its first id is not always
used): one linked chain of a 1-fen pending transfer per id between two of the network's own
accounts, then their voids, so it nets to nothing (code ``TransferCode.FENCE``,
``user_data_64`` the record id). If the fence is accepted, the ids are taken and the real chain
can never post (it fails ``exists_with_different_…``): the record is safely declined. If any id
already exists, the real chain posted (chains post whole) and the fence fails whole: the record
is completed. Either way exactly one of the two happened, decided by one
primary key — so recovery is safe at any moment, and its age cut-off only spares requests that
are merely slow from being declined needlessly. Fences are real ledger events (they show in the
audit log and in the two network accounts' history as a pending amount and its void).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from flashpay.errors import invariant
from flashpay.institutions.chart import (
    LEDGER_CNY,
    AccountCode,
    TransferCode,
    institution_account_id,
)
from flashpay.institutions.definition import InstitutionKind
from flashpay.institutions.service import list_institutions, network_code
from flashpay.ledger import BATCH_EVENTS_MAX, CreateTransferResult, Transfer, TransferFlags
from flashpay.ledger.ids import derive_id
from flashpay.platform import Platform

FENCE_AMOUNT_MINOR = 1
FENCE_IDS_MAX = 8  # ledger ids one record's chain may use (a purchase: six legs)
_FENCES_PER_CALL_MAX = BATCH_EVENTS_MAX // (2 * FENCE_IDS_MAX)


@functools.lru_cache(maxsize=16)
def _accounts(database_url: str, network: str, issuer: str) -> tuple[int, int]:
    del database_url  # part of the cache key: one network per database
    return (
        institution_account_id(network, AccountCode.FEE_INCOME),
        institution_account_id(network, AccountCode.ISSUER_PAYABLE, issuer),
    )


def _fence_accounts(platform: Platform) -> tuple[int, int]:
    """Two of the network's own accounts, with no balance limits: its fee income and its
    payable to the first issuer (by code)."""
    issuers = sorted(
        i.code for i in list_institutions(platform=platform) if i.kind is InstitutionKind.ISSUER
    )
    invariant(bool(issuers), "a network with records has an issuer")
    return _accounts(platform.database_url, network_code(platform=platform), issuers[0])


def fence(platform: Platform, chains: Sequence[tuple[int, Sequence[int]]]) -> set[int]:
    """Fence each (record id, the ledger ids its chain may use); the record ids whose chain the
    ledger holds (posted before the fence). Every other record's chain can never post now."""
    if not chains:
        return set()
    debit, credit = _fence_accounts(platform)
    posted: set[int] = set()
    for start in range(0, len(chains), _FENCES_PER_CALL_MAX):
        part = chains[start : start + _FENCES_PER_CALL_MAX]
        events: list[Transfer] = []
        spans: list[tuple[int, int, int]] = []  # (record id, first event, event count)
        for record_id, ids in part:
            invariant(0 < len(ids) <= FENCE_IDS_MAX, f"{len(ids)} ids to fence")
            first = len(events)
            for held in ids:
                events.append(
                    Transfer(held, debit, credit, FENCE_AMOUNT_MINOR, LEDGER_CNY,
                             TransferCode.FENCE, TransferFlags.PENDING | TransferFlags.LINKED,
                             user_data_64=record_id)
                )  # fmt: skip
            for n, held in enumerate(ids):
                last = n == len(ids) - 1
                events.append(
                    Transfer(derive_id("flashpay.fence", str(held)), debit, credit,
                             FENCE_AMOUNT_MINOR, LEDGER_CNY, TransferCode.FENCE,
                             TransferFlags.VOID_PENDING_TRANSFER
                             | (TransferFlags.NONE if last else TransferFlags.LINKED),
                             pending_id=held, user_data_64=record_id)
                )  # fmt: skip
            spans.append((record_id, first, len(events) - first))
        results = platform.ledger.create_transfers(events)
        for record_id, first, count in spans:
            mine = results[first : first + count]
            if all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in mine):
                continue  # fenced now, or by an earlier recovery that died after its fence
            refusals = {r for r in mine if r is not CreateTransferResult.LINKED_EVENT_FAILED}
            invariant(
                all(r.value.startswith("exists_with_different") for r in refusals),
                f"a fence is refused only by the chain that holds its ids: {refusals}",
            )
            posted.add(record_id)
    return posted
