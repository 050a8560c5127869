"""Route card numbers to their issuers: the longest BIN prefix the network defines.

The BIN table is the institutions' (``institutions.service.bin_ranges`` reads it); what a card
number is, and which of its prefixes to try, is the cards' (``CardNumber.prefixes``, longest
first). So the card number never crosses into the institutions domain: only its first six digits
do.
"""

from __future__ import annotations

from collections.abc import Sequence

from flashpay.cards.numbers import CardNumber
from flashpay.institutions.service import BinRoute, bin_ranges
from flashpay.platform import Platform


def route_cards(*, platform: Platform, cards: Sequence[CardNumber]) -> list[BinRoute | None]:
    """The issuer of each card by the longest matching BIN prefix (8, 7, then 6 digits), or
    ``None`` for a number no issuer of the network has; one query per up to
    ``BIN_GROUPS_PER_QUERY_MAX`` distinct 6-digit BINs, not one per card."""
    bins = bin_ranges(platform=platform, first6s=[card.first6 for card in cards])
    return [next((bins[p] for p in card.prefixes() if p in bins), None) for card in cards]
