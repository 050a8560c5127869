"""What a promotion decision looks at: the payment (``PaymentContext``) as plain values.

The payment stage builds a ``PaymentContext`` from what it has already resolved (merchant, card,
user) and hands it to ``choose``; this package never reads another domain's tables. ``Facts`` is
the same information with every field optional: the discount inquiry knows the user's cards but
perhaps not yet the merchant or the amount, and a check whose fact is unknown is skipped.

"One user" is any of ``UserKeys``: a cap is reached when *any* of the keys has reached it, and a
use counts against *every* key, so a second account on the same phone, ID number, device or card
does not get a second discount.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flashpay.clock import NS_PER_SECOND
from flashpay.promotions.campaigns import CardKind, PaymentMode

CHINA_TIME = timedelta(hours=8)  # campaign days and daily windows follow Beijing time
USER_KEY_CHARS_MAX = 96
PAYMENT_REF_CHARS_MAX = 64


def china_day(at_ns: int) -> str:
    """The calendar day in China (UTC+8), YYYY-MM-DD: the unit of the per-day caps."""
    return (datetime.fromtimestamp(at_ns // NS_PER_SECOND, UTC) + CHINA_TIME).date().isoformat()


def china_minute_of_day(at_ns: int) -> int:
    """Minutes since midnight in China (UTC+8): what daily windows are compared with."""
    seconds = at_ns // NS_PER_SECOND + int(CHINA_TIME.total_seconds())
    return (seconds % 86_400) // 60


@dataclass(frozen=True, slots=True)
class UserKeys:
    """The identities one person pays under; each one that is known counts as the same user.

    ``id_fingerprint`` and ``card_fingerprint`` are the keyed fingerprints (hex) that the wallet
    and the vault already keep — never an ID number or a card number. A key is at most
    ``USER_KEY_CHARS_MAX`` characters with its prefix (``storage.take`` refuses longer ones as a
    bug rather than cutting them: two cut keys could collide).
    """

    phone: str | None = None
    id_fingerprint: str | None = None
    device_id: str | None = None
    card_fingerprint: str | None = None

    def keys(self) -> tuple[str, ...]:
        """The usage keys, sorted (storage locks their rows in this order: no deadlock)."""
        pairs = (
            ("phone", self.phone),
            ("id", self.id_fingerprint),
            ("device", self.device_id),
            ("card", self.card_fingerprint),
        )
        return tuple(sorted(f"{name}:{value}" for name, value in pairs if value))


@dataclass(frozen=True, slots=True)
class Facts:
    """What is known about a payment (or a prospective one); ``None`` means not known yet."""

    at_ns: int
    amount_minor: int | None = None
    merchant_id: int | None = None
    scene: str | None = None
    mcc: str | None = None
    city: str | None = None
    acquirer_id: int | None = None
    mode: PaymentMode | None = None
    issuer_id: int | None = None
    bin: str | None = None
    card_kind: CardKind | None = None
    first_payment_ever: bool | None = None
    first_in_scene: bool | None = None


@dataclass(frozen=True, slots=True)
class PaymentContext:
    """One payment as the promotion stage sees it, in plain values (amounts in fen).

    ``payment_ref`` identifies the payment (its idempotency key or order): the random draw and the
    redemption record are keyed on it, so a quote and the payment with the same ref agree.
    """

    payment_ref: str
    amount_minor: int
    merchant_id: int
    scene: str
    mcc: str
    city: str
    acquirer_id: int
    issuer_id: int
    bin: str
    card_kind: CardKind
    mode: PaymentMode
    user: UserKeys
    at_ns: int
    first_payment_ever: bool = False
    first_in_scene: bool = False

    @property
    def day(self) -> str:
        return china_day(self.at_ns)

    def facts(self) -> Facts:
        return Facts(
            at_ns=self.at_ns,
            amount_minor=self.amount_minor,
            merchant_id=self.merchant_id,
            scene=self.scene,
            mcc=self.mcc,
            city=self.city,
            acquirer_id=self.acquirer_id,
            mode=self.mode,
            issuer_id=self.issuer_id,
            bin=self.bin,
            card_kind=self.card_kind,
            first_payment_ever=self.first_payment_ever,
            first_in_scene=self.first_in_scene,
        )
