"""``Ledger``: the double-entry engine on SQL storage (SQLite or PostgreSQL).

One batch is one database transaction (concurrent calls from threads sharing a ``Ledger`` may be
merged into one batch: group commit, see ``create_transfers``):

1. allocate a contiguous range of timestamps (``ledger_clock``; on PostgreSQL in a tiny separate
   transaction with ``synchronous_commit off`` so the row lock is held for microseconds — safe,
   because any transfer that uses a timestamp commits durably after it);
2. read the batch's existing transfers (idempotency; skipped optimistically on PostgreSQL when
   the batch has no posts or voids), lock the referenced pending transfers, and lock its accounts
   in id order: ``FOR NO KEY UPDATE`` those whose limit a transfer could break (the debit side of
   a ``DEBITS_MUST_NOT_EXCEED_CREDITS`` account, the credit side of a
   ``CREDITS_MUST_NOT_EXCEED_DEBITS`` one, ``HISTORY`` accounts, balancing transfers),
   ``FOR UPDATE`` those a closing transfer closes or a void reopens, ``FOR KEY SHARE`` the rest;
3. apply the batch in memory (``engine.TransferBatch``: precedence-ordered checks, linked chains
   rolled back as a unit);
4. write transfers, pending states, balances, history, chains and outbox, and commit. On
   PostgreSQL steps 1–2 are one pipelined round trip in the common case and step 4 (one statement
   of data-modifying CTEs over ``unnest`` arrays, then COMMIT) the second.

Hot accounts (a big merchant, a clearing account) are credited by nearly every payment but
rarely have a limit on that side. On PostgreSQL such one-sided, limit-safe changes are appended
to ``ledger_balance_deltas`` instead of updating the account row, so concurrent payments do not
queue on its row lock; an account's balance is its row plus the sum of its deltas, and
``compact_balances`` folds deltas into rows. SQLite has one writer at a time (``BEGIN
IMMEDIATE``) and always updates rows. Deadlocks, serialization failures and a concurrent insert of
the same transfer id are retried inside (bounded), never surfaced. See

The parts, one job a module, joined here into ``Ledger``: ``storage`` (connections, dialects,
retries, timestamps), ``accounts``, ``posting`` (steps 1–3), ``writes`` (step 4), ``queries``,
``maintenance`` (expiry and compaction) and ``outbox`` (committed chains for the audit log).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence

from flashpay.batching import GroupCommit
from flashpay.clock import Clock
from flashpay.ledger.errors import BatchTooLargeError
from flashpay.ledger.outbox import Outbox
from flashpay.ledger.posting import Posting
from flashpay.ledger.queries import Queries
from flashpay.ledger.storage import BATCH_EVENTS_MAX, QUERY_LIMIT_MAX
from flashpay.ledger.types import (
    CreateTransferResult,
    Transfer,
    TransferFlags,
)

__all__ = ["BATCH_EVENTS_MAX", "COMMITMENT_BYTES", "QUERY_LIMIT_MAX", "Ledger"]

GROUP_IN_FLIGHT_MAX = 2  # batches one Ledger posts at once while other callers queue
COMMITMENT_BYTES = 32


class Ledger(Posting, Queries, Outbox):
    """The ledger over one database. Thread-safe; many processes may open the same database."""

    def __init__(self, url: str, *, clock: Clock | None = None, coalesce: bool = True) -> None:
        super().__init__(url, clock=clock)
        self.coalesce = coalesce
        self._static = {}
        self._next_sweep_ns = 0
        self._batches = 0
        self._lock = threading.Lock()
        self._group: GroupCommit[_Request, list[CreateTransferResult]] = GroupCommit(
            self._post_group,
            batch_max=BATCH_EVENTS_MAX,
            in_flight_max=GROUP_IN_FLIGHT_MAX,
            weight=lambda request: len(request.transfers),
        )
        self._held = {}  # per connection, see Writes._bulk

    @classmethod
    def open(cls, url: str, *, clock: Clock | None = None, coalesce: bool = True) -> Ledger:
        """Open the ledger at ``url`` (``sqlite:///…`` or ``postgresql://…``), already migrated.

        ``coalesce``: concurrent ``create_transfers`` calls from this object's threads share
        database transactions (group commit; see ``create_transfers``)."""
        return cls(url, clock=clock, coalesce=coalesce)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transfers ---------------------------------------------------------------------------
    def create_transfers(
        self,
        transfers: Sequence[Transfer],
        *,
        commitments: Mapping[int, bytes] | None = None,
    ) -> list[CreateTransferResult]:
        """Post a batch; one result per event. See the module docstring for the steps.

        ``commitments`` maps the id of a chain's first transfer to a 32-byte commitment to the
        business record, stored with the chain for the audit log.

        Group commit (``flashpay.batching.GroupCommit``): while ``GROUP_IN_FLIGHT_MAX`` batches
        of this ``Ledger`` are being posted, calls from other threads queue, and the next free
        caller posts the queued calls, in order and up to ``BATCH_EVENTS_MAX`` events, as one
        batch (one transaction, one commit), then hands each caller its own results. Each
        call's events stay contiguous and in order, and a call never ends inside another's chain
        (a call whose last event is ``LINKED`` is posted alone, as is every call with
        ``coalesce=False``), so the results are those of posting the calls one after another. A
        database error fails every call of the group with it, and no other call.
        """
        if len(transfers) > BATCH_EVENTS_MAX:
            raise BatchTooLargeError(f"{len(transfers)} > {BATCH_EVENTS_MAX} events")
        if not transfers:
            return []
        for value in (commitments or {}).values():
            if len(value) != COMMITMENT_BYTES:
                raise ValueError(f"a commitment is {COMMITMENT_BYTES} bytes, not {len(value)}")
        self._maybe_expire()
        if not self.coalesce or transfers[-1].flags & TransferFlags.LINKED:
            return self._post(transfers, commitments or {})
        return self._group.submit(_Request(transfers, commitments or {}))

    def _post_group(self, group: Sequence[_Request]) -> list[list[CreateTransferResult]]:
        """Post the calls of a group commit as one batch; each call's own results."""
        merged = [t for r in group for t in r.transfers]
        merged_commitments = {k: v for r in group for k, v in r.commitments.items()}
        results = self._post(merged, merged_commitments)
        answers = []
        offset = 0
        for r in group:
            answers.append(results[offset : offset + len(r.transfers)])
            offset += len(r.transfers)
        return answers


@dataclasses.dataclass(frozen=True, slots=True)
class _Request:
    """One caller's ``create_transfers`` in a group commit."""

    transfers: Sequence[Transfer]
    commitments: Mapping[int, bytes]
