"""The merchant discount rate (MDR) and its split between issuer, network and acquirer.

A ¥100.00 payment at an MDR of 0.60 % leaves the merchant ¥99.40: the issuer's interchange
0.45 % (¥0.45), the network's fee 0.065 % (¥0.065, rounded half up to ¥0.07) and the acquirer
the rest (¥0.08) — ARCHITECTURE.md §4. Rates are integers in millionths, amounts integer fen.
"""

from __future__ import annotations

from dataclasses import dataclass


def round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounding halves up (amounts are never negative here)."""
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True)
class FeeSplit:
    """The merchant discount rate and its split, in hundredths of a basis point (1e-6)."""

    mdr_ppm: int = 6_000  # 0.60 %
    interchange_ppm: int = 4_500  # 0.45 %
    network_fee_ppm: int = 650  # 0.065 %

    def split(self, amount_minor: int) -> tuple[int, int, int, int]:
        """(interchange, network fee, acquirer income, merchant net) for ``amount_minor``."""
        mdr = round_half_up(amount_minor * self.mdr_ppm, 1_000_000)
        interchange = round_half_up(amount_minor * self.interchange_ppm, 1_000_000)
        network_fee = round_half_up(amount_minor * self.network_fee_ppm, 1_000_000)
        acquirer = mdr - interchange - network_fee
        return interchange, network_fee, acquirer, amount_minor - mdr
