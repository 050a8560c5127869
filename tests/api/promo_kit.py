"""Helpers for the promotion-in-the-pipeline HTTP tests: campaigns created and activated by
their funders over HTTP, and the ledger balances that show who paid what."""

from __future__ import annotations

from typing import Any

from flashpay.institutions.chart import AccountCode, institution_account_id
from flashpay.institutions.service import get_institution
from flashpay.merchants.service import get_merchant

CAMPAIGNS = "/v1/promotions/campaigns"


def definition(**fields: Any) -> dict[str, Any]:
    """A campaign running through the test clock's now (2026-11-18), any scene by default."""
    return {
        "name": "test campaign",
        "starts_at": "2026-11-01T00:00:00+08:00",
        "ends_at": "2027-01-01T00:00:00+08:00",
        "benefit": {"kind": "amount_off", "off_minor": 1000, "threshold_minor": 5000},
        "budget": {"money_minor": 100_000, "uses": 100},
        **fields,
    }


async def campaign(world: Any, headers: dict[str, str], key: str, **fields: Any) -> int:
    """Create and activate a campaign as the funder behind ``headers``; its id."""
    created = await world.client.post(
        CAMPAIGNS, json=definition(**fields), headers={**headers, "Idempotency-Key": key}
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    moved = await world.client.post(f"{CAMPAIGNS}/{campaign_id}/activate", headers=headers)
    assert moved.status_code == 200, moved.text
    return campaign_id


async def report(world: Any, headers: dict[str, str], campaign_id: int) -> dict[str, Any]:
    found = await world.client.get(f"{CAMPAIGNS}/{campaign_id}/report", headers=headers)
    assert found.status_code == 200, found.text
    return dict(found.json())


async def state(world: Any, headers: dict[str, str], campaign_id: int) -> dict[str, Any]:
    found = await world.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=headers)
    assert found.status_code == 200, found.text
    return dict(found.json())


def institution_id(world: Any, code: str) -> int:
    found = get_institution(platform=world.platform, code=code)
    assert found is not None
    return found.id


def expense(world: Any, code: str) -> int:
    """What an institution's campaigns have cost it: its promotion_expense's debit balance."""
    account = institution_account_id(code, AccountCode.PROMOTION_EXPENSE)
    found = world.platform.ledger.lookup_accounts([account])
    return 0 if not found else found[0].debits_posted - found[0].credits_posted


def merchant_balance(world: Any, merchant_id: int) -> int:
    """What the acquirer owes the merchant (its merchant_payable's credit balance)."""
    merchant = get_merchant(platform=world.platform, merchant_id=merchant_id)
    assert merchant is not None
    [account] = world.platform.ledger.lookup_accounts([merchant.ledger_account_id])
    return account.credits_posted - account.debits_posted


def fen(text: str) -> int:
    units, _, cents = text.partition(".")
    return int(units) * 100 + int((cents + "00")[:2])


async def available(world: Any, person: Any, card_id: int) -> int:
    return fen((await world.balance(person, card_id))["available"])
