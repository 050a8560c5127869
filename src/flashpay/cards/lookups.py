"""Card records for other domains, read in the caller's connection (one statement a batch).

Payments reads the paying and the receiving cards of a batch here instead of joining the
``cards`` table into its own queries: the cards domain owns its table and its row format
(``card_from_row``), so the other domains only ever see ``Card`` values.

Where a batch's read would otherwise take one statement per owner, an owner above may join
``card_view()``: the cards' own published shape of a card (as a database view would be), with
every column labelled ``card_…`` and read back with ``card_from_view``. The cards domain still
decides what a card row is; the other domain decides only what it joins it to.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator

import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.records import Card, card_from_mapping, card_from_row

_VIEW_PREFIX = "card_"


@functools.cache
def card_view() -> sa.Subquery:
    """The cards as another domain may join them in its own statement: a subquery of every
    column ``card_from_row`` reads, labelled ``card_<column>`` so that no name clashes with the
    joining tables'; join on ``.c.card_id``. Built once (a subquery is an immutable construct
    that any number of statements may join, as they join a table)."""
    return sa.select(*(c.label(_VIEW_PREFIX + c.name) for c in cards.c)).subquery("issued_cards")


def card_from_view(row: sa.Row[tuple[object, ...]]) -> Card:
    """The ``Card`` in a row that joined ``card_view()``."""
    return card_from_mapping(row._mapping, prefix=_VIEW_PREFIX)


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
