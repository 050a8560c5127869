"""A snapshot of what a campaign and a user have already used: the input of the cap checks.

``storage.usage_for`` reads it for one payment (or one inquiry) in one query per table; tests
build it by hand. It is a snapshot, so ``choose`` can be wrong about it under concurrency — that
is fine: ``storage.take`` re-checks every budget and cap atomically, and only ``take`` decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from flashpay.promotions.campaigns import Budget, Campaign


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A campaign's budget (after top-ups) and what is spent of it."""

    money_minor: int | None
    uses_max: int | None
    spent_minor: int = 0
    uses: int = 0

    @classmethod
    def fresh(cls, budget: Budget) -> BudgetState:
        return cls(money_minor=budget.money_minor, uses_max=budget.uses)

    @property
    def money_left_minor(self) -> int | None:
        return None if self.money_minor is None else self.money_minor - self.spent_minor

    @property
    def uses_left(self) -> int | None:
        return None if self.uses_max is None else self.uses_max - self.uses

    def affords(self, discount_minor: int) -> bool:
        """Whether one more use of ``discount_minor`` fits in what is left."""
        money_left, uses_left = self.money_left_minor, self.uses_left
        return (money_left is None or discount_minor <= money_left) and (
            uses_left is None or uses_left >= 1
        )


@dataclass(frozen=True, slots=True)
class Usage:
    """Counts for one user (all their keys) and one card, per campaign id.

    ``user_today`` and ``user_total`` are keyed by (campaign id, user key), ``card_total`` by
    (campaign id, card fingerprint); ``coupons`` maps a campaign id to a usable coupon id the user
    holds (the one expiring first).
    """

    budgets: Mapping[int, BudgetState] = field(default_factory=dict)
    user_today: Mapping[tuple[int, str], int] = field(default_factory=dict)
    user_total: Mapping[tuple[int, str], int] = field(default_factory=dict)
    card_total: Mapping[tuple[int, str], int] = field(default_factory=dict)
    coupons: Mapping[int, int] = field(default_factory=dict)

    def budget(self, campaign: Campaign) -> BudgetState:
        return self.budgets.get(campaign.id) or BudgetState.fresh(campaign.spec.budget)

    def most_today(self, campaign_id: int, keys: Iterable[str]) -> int:
        """The highest count today over the user's keys: the one that reaches a cap first."""
        return max((self.user_today.get((campaign_id, key), 0) for key in keys), default=0)

    def most_total(self, campaign_id: int, keys: Iterable[str]) -> int:
        return max((self.user_total.get((campaign_id, key), 0) for key in keys), default=0)


NO_USAGE = Usage()
