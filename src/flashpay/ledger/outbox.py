"""The outbox of committed chains (consumed by the audit log) and reads of chains.

Every batch records its chains (a chain is the transfers linked together, named by its first
transfer's timestamp) with their commitments in ``ledger_chains`` and queues their ids in
``ledger_outbox``; the audit log drains the outbox in the same transaction as its own append.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from flashpay.ledger.storage import (
    QUERY_LIMIT_MAX,
    TRANSFER_COLUMNS,
    Storage,
)
from flashpay.ledger.types import (
    CommittedChain,
    Transfer,
    transfer_from_record,
)


class Outbox(Storage):
    """Draining the outbox and reading chains."""

    def outbox_backlog(self) -> int:
        """How many committed chains wait in the outbox for the audit log (its lag, in chains)."""
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.text("SELECT count(*) FROM ledger_outbox")).scalar_one()
            )

    def drain_outbox(
        self,
        consume: Callable[[sa.Connection, Sequence[CommittedChain]], None],
        *,
        limit: int = 1000,
    ) -> int:
        """Hand up to ``limit`` committed, not yet consumed chains to ``consume`` and delete them
        from the outbox, all in one transaction; returns how many were consumed."""
        limit = max(1, min(limit, QUERY_LIMIT_MAX))
        with self.engine.begin() as connection:
            lock = " FOR UPDATE SKIP LOCKED" if self.is_postgresql else ""
            chain_ids = [
                r[0]
                for r in connection.execute(
                    sa.text(f"SELECT chain_id FROM ledger_outbox ORDER BY chain_id LIMIT :n{lock}"),
                    {"n": limit},
                )
            ]
            if not chain_ids:
                return 0
            chains = self._load_chains(connection, chain_ids)
            consume(connection, chains)
            connection.execute(
                sa.text("DELETE FROM ledger_outbox WHERE chain_id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": chain_ids},
            )
            return len(chains)

    def _load_chains(
        self, connection: sa.Connection, chain_ids: Sequence[int]
    ) -> list[CommittedChain]:
        if not chain_ids:
            return []
        expanding: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
        commitments = {
            r[0]: (bytes(r[1]) if r[1] is not None else None)
            for r in connection.execute(
                sa.text(
                    "SELECT chain_id, commitment FROM ledger_chains WHERE chain_id IN :ids"
                ).bindparams(expanding),
                {"ids": list(chain_ids)},
            )
        }
        members: dict[int, list[Transfer]] = {c: [] for c in commitments}
        for row in connection.execute(
            sa.text(
                f"SELECT {TRANSFER_COLUMNS}, chain_id FROM ledger_transfers "
                "WHERE chain_id IN :ids ORDER BY timestamp"
            ).bindparams(expanding),
            {"ids": list(chain_ids)},
        ):
            members.setdefault(row[13], []).append(transfer_from_record(row))
        return [
            CommittedChain(chain_id=c, commitment=commitments.get(c), transfers=tuple(members[c]))
            for c in sorted(members)
        ]

    def iter_chains(self, *, after_chain_id: int = 0, limit: int = 1000) -> list[CommittedChain]:
        """Committed chains in chain_id order, after ``after_chain_id`` (for audits)."""
        limit = max(1, min(limit, QUERY_LIMIT_MAX))
        with self.engine.connect() as connection:
            ids = [
                r[0]
                for r in connection.execute(
                    sa.text(
                        "SELECT chain_id FROM ledger_chains WHERE chain_id > :after "
                        "ORDER BY chain_id LIMIT :n"
                    ),
                    {"after": after_chain_id, "n": limit},
                )
            ]
            return self._load_chains(connection, ids)

    def lookup_chains(self, chain_ids: Sequence[int]) -> list[CommittedChain]:
        """The committed chains among ``chain_ids`` (a chain with no row is left out)."""
        with self.engine.connect() as connection:
            return self._load_chains(connection, list(chain_ids))
