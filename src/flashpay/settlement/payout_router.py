"""``/v1/settlement/windows/{id}/payouts``: merchant payouts (thin; docs/reference/settlement.md).

Per-member authorization as the rest of settlement: the network's admin computes a settled
window's payouts (idempotent) and reads any acquirer's; an acquirer reads its own merchants'
payouts; a merchant reads only its own statement. Another acquirer's payouts, or a merchant
without a payout in the window, answer 404.
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter

from flashpay.api.deps import CurrentInstitution, CurrentMerchant, CurrentNetworkAdmin, ServicesDep
from flashpay.api.errors import not_found
from flashpay.institutions.service import institution_code
from flashpay.platform import Platform
from flashpay.settlement.errors import SettlementError, SettlementRefusal
from flashpay.settlement.payouts import Payout, payouts, window_payouts
from flashpay.settlement.queries import window_by_id
from flashpay.settlement.schemas import PayoutOut

router = APIRouter(tags=["settlement"])


def _out(p: Payout) -> PayoutOut:
    return PayoutOut(**dataclasses.asdict(p))


def _known(platform: Platform, window_id: int) -> None:
    with platform.engine.connect() as connection:
        if window_by_id(connection, window_id) is None:
            raise SettlementError(SettlementRefusal.WINDOW_NOT_FOUND, f"no window {window_id}")


@router.post("/v1/settlement/windows/{window_id}/payouts", response_model=list[PayoutOut])
def compute(platform: ServicesDep, _admin: CurrentNetworkAdmin, window_id: int) -> list[PayoutOut]:
    """Every merchant's payout for a settled window (idempotent: a rerun returns the same)."""
    return [_out(p) for p in payouts(platform=platform, window_id=window_id)]


@router.get("/v1/settlement/windows/{window_id}/payouts/{acquirer}", response_model=list[PayoutOut])
def acquirer_payouts(
    platform: ServicesDep, caller: CurrentInstitution, window_id: int, acquirer: str
) -> list[PayoutOut]:
    """An acquirer's merchants' payouts (the acquirer itself, or the network's admin)."""
    if not caller.network_admin and (
        institution_code(platform=platform, institution_id=caller.id) != acquirer
    ):
        raise not_found("acquirer")
    _known(platform, window_id)
    with platform.engine.connect() as connection:
        return [_out(p) for p in window_payouts(connection, window_id, acquirer=acquirer)]


@router.get("/v1/settlement/windows/{window_id}/statement", response_model=PayoutOut)
def statement(platform: ServicesDep, merchant: CurrentMerchant, window_id: int) -> PayoutOut:
    """The calling merchant's own statement and payout for the window."""
    _known(platform, window_id)
    with platform.engine.connect() as connection:
        found = window_payouts(connection, window_id, merchant_id=merchant.id)
    if not found:
        raise not_found("statement")
    return _out(found[0])
