"""The four benefits and their arithmetic, in integer fen only.

- ``AmountOff``: ``off_minor`` off when the amount is at least ``threshold_minor`` ("¥10 off ¥50",
  满50减10).
- ``PercentOff``: ``rate_bps`` basis points of the amount (1 bp = 0.01 %), at most ``cap_minor``.
  The exact product ``amount × rate_bps / 10 000`` is rounded **half down** to the fen: a fraction
  above one half rounds up, exactly one half or less rounds down, so a tie favours the funder by
  half a fen and never the other way.
- ``RandomOff``: a random instant discount (随机立减) between ``low_minor`` and ``high_minor``
  inclusive, drawn *reproducibly* from the campaign and the payment (``draw_minor``): a quote shown
  before paying, a retried request and an auditor recomputing it all get the same amount, and
  nobody without the network's draw key can predict it.
- ``FixedPrice``: the payment costs ``price_minor`` ("a ¥1 subway ride"); the discount is the
  amount less the price, nothing when the amount is not above the price.

Every discount leaves at least 1 fen to pay (``PAID_MIN_MINOR``), except a fixed price, which
says exactly what is paid and may be 0 (a free ride).

The draw recipe, so another institution can recompute it in another language::

    message = b"flashpay/promo-draw/v1" || 0x00 || campaign_id as 8 bytes big-endian
              || payment_ref as UTF-8
    digest  = HMAC-SHA256(draw_key, message)
    n       = the first 16 bytes of digest as an unsigned big-endian integer
    draw    = low_minor + n mod (high_minor - low_minor + 1)

The modulo bias is below span / 2**128, far under a fen in any budget.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

BPS_PER_WHOLE = 10_000
PAID_MIN_MINOR = 1
DISCOUNT_MAX_MINOR = 1_000_000_00  # ¥1,000,000: a limit on any single benefit amount
DRAW_DOMAIN = b"flashpay/promo-draw/v1\x00"
DRAW_BYTES = 16
DRAW_KEY_BYTES_MIN = 16


@dataclass(frozen=True, slots=True)
class AmountOff:
    off_minor: int
    threshold_minor: int = 0


@dataclass(frozen=True, slots=True)
class PercentOff:
    rate_bps: int
    cap_minor: int | None = None


@dataclass(frozen=True, slots=True)
class RandomOff:
    low_minor: int
    high_minor: int


@dataclass(frozen=True, slots=True)
class FixedPrice:
    price_minor: int


Benefit = AmountOff | PercentOff | RandomOff | FixedPrice


def invalid_reason(benefit: Benefit) -> str | None:
    """Why a benefit can never be given (for ``parse_campaign``), or None when it is sound."""
    match benefit:
        case AmountOff(off_minor=off, threshold_minor=threshold):
            if not 0 < off <= DISCOUNT_MAX_MINOR:
                return f"off_minor must be in 1..{DISCOUNT_MAX_MINOR}"
            if threshold < 0:
                return "threshold_minor must not be negative"
        case PercentOff(rate_bps=rate, cap_minor=cap):
            if not 0 < rate <= BPS_PER_WHOLE:
                return f"rate_bps must be in 1..{BPS_PER_WHOLE} (at most 100 %)"
            if cap is not None and not 0 < cap <= DISCOUNT_MAX_MINOR:
                return f"cap_minor must be in 1..{DISCOUNT_MAX_MINOR}"
        case RandomOff(low_minor=low, high_minor=high):
            if not 0 < low <= high <= DISCOUNT_MAX_MINOR:
                return f"need 1 <= low_minor <= high_minor <= {DISCOUNT_MAX_MINOR}"
        case FixedPrice(price_minor=price):
            if not 0 <= price <= DISCOUNT_MAX_MINOR:
                return f"price_minor must be in 0..{DISCOUNT_MAX_MINOR}"
    return None


def smallest_discount_minor(benefit: Benefit) -> int:
    """The least a use of this benefit can cost the budget: below it, the campaign is exhausted."""
    match benefit:
        case AmountOff(off_minor=off):
            return off
        case RandomOff(low_minor=low):
            return low
        case PercentOff() | FixedPrice():
            return 1


def threshold_minor(benefit: Benefit) -> int:
    """The amount below which the benefit gives nothing (besides the campaign's minimum)."""
    match benefit:
        case AmountOff(threshold_minor=threshold):
            return threshold
        case FixedPrice(price_minor=price):
            return price + 1
        case PercentOff() | RandomOff():
            return 0


def percent_of(amount_minor: int, rate_bps: int) -> int:
    """``amount × rate_bps / 10 000`` rounded half down to the fen (integers only)."""
    quotient, remainder = divmod(amount_minor * rate_bps, BPS_PER_WHOLE)
    return quotient + (1 if 2 * remainder > BPS_PER_WHOLE else 0)


def draw_minor(
    *, draw_key: bytes, campaign_id: int, payment_ref: str, low_minor: int, high_minor: int
) -> int:
    """The reproducible random discount of a payment in a campaign (recipe: module docstring)."""
    message = DRAW_DOMAIN + campaign_id.to_bytes(8, "big") + payment_ref.encode()
    digest = hmac.new(draw_key, message, hashlib.sha256).digest()
    n = int.from_bytes(digest[:DRAW_BYTES], "big")
    return low_minor + n % (high_minor - low_minor + 1)


def discount_minor(
    benefit: Benefit,
    amount_minor: int,
    *,
    draw_key: bytes,
    campaign_id: int,
    payment_ref: str,
) -> int:
    """What this benefit takes off ``amount_minor``: 0 when it gives nothing here.

    Never more than ``amount_minor - PAID_MIN_MINOR``, except a fixed price (which may reach 0).
    """
    if amount_minor < threshold_minor(benefit):
        return 0
    match benefit:
        case AmountOff(off_minor=off):
            raw = off
        case PercentOff(rate_bps=rate, cap_minor=cap):
            raw = percent_of(amount_minor, rate)
            raw = raw if cap is None else min(raw, cap)
        case RandomOff(low_minor=low, high_minor=high):
            raw = draw_minor(
                draw_key=draw_key,
                campaign_id=campaign_id,
                payment_ref=payment_ref,
                low_minor=low,
                high_minor=high,
            )
        case FixedPrice(price_minor=price):
            return amount_minor - price
    return max(0, min(raw, amount_minor - PAID_MIN_MINOR))


def _yuan(amount_minor: int) -> str:
    """¥ without trailing zeros: 1000 → "10", 150 → "1.5", 5 → "0.05"."""
    whole, fen = divmod(amount_minor, 100)
    return str(whole) if fen == 0 else f"{whole}.{fen:02d}".rstrip("0")


def _percent(rate_bps: int) -> str:
    whole, rest = divmod(rate_bps, 100)
    return str(whole) if rest == 0 else f"{whole}.{rest:02d}".rstrip("0")


def describe(benefit: Benefit) -> tuple[str, str]:
    """The benefit in the app's words: (Chinese, English)."""
    match benefit:
        case AmountOff(off_minor=off, threshold_minor=threshold) if threshold > 0:
            return (
                f"满{_yuan(threshold)}减{_yuan(off)}元",
                f"¥{_yuan(off)} off ¥{_yuan(threshold)} or more",
            )
        case AmountOff(off_minor=off):
            return f"立减{_yuan(off)}元", f"¥{_yuan(off)} off"
        case PercentOff(rate_bps=rate, cap_minor=cap):
            zh, en = f"立减{_percent(rate)}%", f"{_percent(rate)}% off"
            if cap is not None:
                zh, en = f"{zh}，最高减{_yuan(cap)}元", f"{en}, at most ¥{_yuan(cap)}"
            return zh, en
        case RandomOff(low_minor=low, high_minor=high):
            return (
                f"随机立减{_yuan(low)}–{_yuan(high)}元",
                f"a random ¥{_yuan(low)}–¥{_yuan(high)} off",
            )
        case FixedPrice(price_minor=price):
            return f"{_yuan(price)}元特惠", f"pay only ¥{_yuan(price)}"


def refund_share_minor(
    *, discount_minor: int, amount_minor: int, refunded_before_minor: int, refund_minor: int
) -> int:
    """The part of a payment's discount a partial refund takes back, pro rata, in whole fen.

    ``floor(D × (before + refund) / A) − floor(D × before / A)``: each refund returns the growth
    of one floored running total, so however a payment is refunded in parts, the shares sum to
    exactly ``D`` once the whole amount ``A`` is refunded (the floors telescope), never a fen
    more or less.
    """
    after_minor = refunded_before_minor + refund_minor
    return (discount_minor * after_minor) // amount_minor - (
        discount_minor * refunded_before_minor
    ) // amount_minor
