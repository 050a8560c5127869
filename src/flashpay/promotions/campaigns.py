"""The campaign: who funds it, when it runs, who gets it, what it gives, and how much of it.

A campaign is a frozen value (``Campaign``: an id, a state and a ``CampaignSpec``). Everything here
is pure: no database, no clock; ``flashpay.promotions.storage`` keeps campaigns and their counters.

- **Funder**: exactly one — an issuer, the network or an acquirer (by institution id), or a
  merchant (by merchant id). Its ``promotion_expense`` account (ARCHITECTURE.md §4) pays the
  discount when the payment stage posts it.
- **When**: a period ``[starts_at_ns, ends_at_ns)`` and optional daily windows in China time
  (UTC+8), each ``[start_minute, end_minute)`` of the day. A window never crosses midnight: a
  night window is two windows.
- **Who**: ``Eligibility`` — every dimension left empty means "any".
- **What**: one ``Benefit`` (``flashpay.promotions.benefits`` computes it).
- **How much**: a total ``Budget`` in money and/or in uses, and ``Caps`` per user (per China day
  and per campaign) and per card. "One user" is any of the user's keys (``UserKeys``): phone, ID
  number fingerprint, device id, card fingerprint — as UnionPay's campaign terms count a user, so a
  second account on the same phone or ID does not get a second discount.
- **Together**: ``priority`` and ``Stacking`` (``EXCLUSIVE``: alone; ``STACKABLE``: with other
  stackable benefits, at most one per funder). ``flashpay.promotions.choose`` has the rule.
- **Lifecycle**: ``DRAFT → ACTIVE ⇄ PAUSED → ENDED``, and ``ACTIVE → EXHAUSTED`` when the budget
  left cannot pay the smallest discount the benefit can give (``EXHAUSTED → ACTIVE`` again when a
  refund gives budget back or the funder tops it up).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flashpay.promotions.benefits import Benefit

MINUTES_PER_DAY = 24 * 60
NAME_CHARS_MAX = 80
WINDOWS_MAX = 6
LIST_ITEMS_MAX = 200  # merchant ids, MCCs, cities, issuers or BIN prefixes in one eligibility list
PRIORITY_MAX = 1_000


class FunderKind(StrEnum):
    ISSUER = "issuer"
    NETWORK = "network"
    ACQUIRER = "acquirer"
    MERCHANT = "merchant"


class CampaignState(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"
    EXHAUSTED = "exhausted"


# The lifecycle: which state each management action may move from. EXHAUSTED is entered and left
# only by storage (budget spent / given back), never by a management action except END.
TRANSITIONS: dict[str, tuple[frozenset[CampaignState], CampaignState]] = {
    "activate": (frozenset({CampaignState.DRAFT, CampaignState.PAUSED}), CampaignState.ACTIVE),
    "pause": (frozenset({CampaignState.ACTIVE, CampaignState.EXHAUSTED}), CampaignState.PAUSED),
    "end": (
        frozenset(
            {
                CampaignState.DRAFT,
                CampaignState.ACTIVE,
                CampaignState.PAUSED,
                CampaignState.EXHAUSTED,
            }
        ),
        CampaignState.ENDED,
    ),
}


class Stacking(StrEnum):
    EXCLUSIVE = "exclusive"
    STACKABLE = "stackable"


class PaymentMode(StrEnum):
    SCAN = "scan"  # the user scans the merchant's code (MPM)
    CODE = "code"  # the merchant scans the user's payment code (CPM)
    TRANSIT = "transit"  # a bus or subway gate


class CardKind(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class NewUser(StrEnum):
    FIRST_EVER = "first_ever"  # the user's first payment ever
    FIRST_IN_SCENE = "first_in_scene"  # the user's first payment in this merchant's scene


@dataclass(frozen=True, slots=True)
class Funder:
    kind: FunderKind
    id: int  # institution id (issuer, network, acquirer) or merchant id

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"


@dataclass(frozen=True, slots=True)
class Window:
    """A daily window in China time, ``[start_minute, end_minute)`` minutes after midnight."""

    start_minute: int
    end_minute: int

    def contains(self, minute_of_day: int) -> bool:
        return self.start_minute <= minute_of_day < self.end_minute

    def __str__(self) -> str:
        return f"{hhmm(self.start_minute)}–{hhmm(self.end_minute)}"


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Who may get the benefit; an empty tuple or ``None`` means any."""

    scenes: tuple[str, ...] = ()  # flashpay.merchants.service.Scene values
    merchant_ids: tuple[int, ...] = ()
    mccs: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    issuer_ids: tuple[int, ...] = ()  # the card's issuer is one of these …
    bin_prefixes: tuple[str, ...] = ()  # … or its BIN starts with one of these (either matches)
    card_kinds: tuple[CardKind, ...] = ()
    modes: tuple[PaymentMode, ...] = ()
    new_user: NewUser | None = None
    min_amount_minor: int = 0


@dataclass(frozen=True, slots=True)
class Caps:
    """Uses allowed per user per China day, per user for the whole campaign, per card."""

    user_per_day: int | None = None
    user_per_campaign: int | None = None
    card_per_campaign: int | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    """The total the funder puts in: money (fen) and/or a number of uses; at least one is set."""

    money_minor: int | None = None
    uses: int | None = None


@dataclass(frozen=True, slots=True)
class CouponPolicy:
    """The campaign gives its benefit only with a coupon, single use, valid ``valid_seconds``.

    ``claimable``: the user may claim one from the app; otherwise coupons are only pushed to a list
    of users by the funder. ``coupons_max`` bounds how many are issued in total (None: the budget's
    uses, or unbounded).
    """

    valid_seconds: int
    claimable: bool = True
    coupons_max: int | None = None


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """What a funder asks for; ``parse_campaign`` has checked every field."""

    name: str
    funder: Funder
    starts_at_ns: int
    ends_at_ns: int
    benefit: Benefit
    budget: Budget
    windows: tuple[Window, ...] = ()
    eligibility: Eligibility = Eligibility()
    caps: Caps = Caps()
    priority: int = 0
    stacking: Stacking = Stacking.EXCLUSIVE
    coupon: CouponPolicy | None = None


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    state: CampaignState
    spec: CampaignSpec
