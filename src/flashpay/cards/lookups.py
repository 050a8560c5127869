"""Card records for other domains, read in the caller's connection (one statement a batch).

Payments reads the paying and the receiving cards of a batch here instead of joining the
``cards`` table into its own queries: the cards domain owns its table and its row format
(``card_from_row``), so the other domains only ever see ``Card`` values.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.service import Card, card_from_row


def cards_by_id(connection: sa.Connection, card_ids: Collection[int]) -> dict[int, Card]:
    """The cards of ``card_ids`` that exist, by id, in one query (none for no ids)."""
    if not card_ids:
        return {}
    rows = connection.execute(sa.select(cards).where(cards.c.id.in_(sorted(set(card_ids)))))
    return {int(row.id): card_from_row(row) for row in rows}


def cards_by_fingerprint(
    connection: sa.Connection, fingerprints: Collection[bytes]
) -> dict[bytes, Card]:
    """Issued cards by the keyed fingerprint of their number (nothing is decrypted), in one
    query (none for no fingerprints)."""
    if not fingerprints:
        return {}
    rows = connection.execute(
        sa.select(cards).where(cards.c.pan_fingerprint.in_(sorted(set(fingerprints))))
    )
    return {bytes(row.pan_fingerprint): card_from_row(row) for row in rows}


def card_accounts(connection: sa.Connection) -> Iterator[tuple[int, int]]:
    """Every card's ``(issuer_id, ledger_account_id)``: the issuers' customer accounts, for the
    network's books (``flashpay.books``)."""
    for row in connection.execute(sa.select(cards.c.issuer_id, cards.c.ledger_account_id)):
        yield int(row.issuer_id), int(row.ledger_account_id)
