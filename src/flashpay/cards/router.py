"""``/v1/issuer/cards``: an issuer records the cards it issues, and freezes or closes them.

Only an issuer's own institution key may call these, and only for its own cards (another
issuer's card is a 404). The response to recording a card carries the CVV once, for the card
carrier, and is marked ``no-store`` so the idempotency layer does not keep it.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from flashpay.api.deps import CurrentInstitution, ServicesDep
from flashpay.api.errors import ApiError, not_found
from flashpay.api.types import IdPath, amount_minor
from flashpay.cards.numbers import CardNumber, CardNumberError
from flashpay.cards.schemas import IssueCardIn, IssuedCardOut, IssuerCardOut
from flashpay.cards.service import (
    CardStatus,
    get_card,
    issue_card,
    parse_expiry,
    set_card_status,
)
from flashpay.institutions.definition import InstitutionKind
from flashpay.institutions.service import Institution, get_institution

router = APIRouter(prefix="/v1/issuer/cards", tags=["issuer"])


def _issuer(platform: ServicesDep, institution_id: int) -> Institution:
    issuer = get_institution(platform=platform, institution_id=institution_id)
    if issuer is None or issuer.kind is not InstitutionKind.ISSUER:
        raise ApiError(status_code=403, code="forbidden", message="this endpoint is for issuers")
    return issuer


def _amount(text: str | None) -> int:
    return 0 if text is None else amount_minor(text)


@router.post("", status_code=201, response_model=IssuedCardOut)
def record_card(
    body: IssueCardIn, caller: CurrentInstitution, platform: ServicesDep, response: Response
) -> IssuedCardOut:
    issuer = _issuer(platform, caller.id)
    try:
        number = CardNumber.parse(body.card_number)
    except CardNumberError as exc:
        # Kept: the number's own reasons (not_digits, luhn, bad_length) are one API code. A
        # CardError below is a refusal the error handler answers (card_exists is 409).
        raise ApiError(status_code=422, code="invalid_card_number", message=str(exc)) from exc
    issued = issue_card(
        platform=platform,
        issuer=issuer,
        card=number,
        expiry=parse_expiry(body.expiry),
        holder_name=body.holder_name,
        holder_id_number=body.holder_id_number,
        phone=body.phone,
        credit_limit=_amount(body.credit_limit),
        opening_balance=_amount(body.opening_balance),
        statement_day=body.statement_day,
    )
    response.headers["Cache-Control"] = "no-store"
    out = IssuerCardOut.of(issued.card)
    return IssuedCardOut(**out.model_dump(), cvv=issued.cvv)


def _own_card(platform: ServicesDep, caller_id: int, card_id: int) -> IssuerCardOut:
    issuer = _issuer(platform, caller_id)
    card = get_card(platform=platform, card_id=card_id)
    if card is None or card.issuer_id != issuer.id:
        raise not_found("card")
    return IssuerCardOut.of(card)


@router.get("/{card_id}", response_model=IssuerCardOut)
def read_card(card_id: IdPath, caller: CurrentInstitution, platform: ServicesDep) -> IssuerCardOut:
    return _own_card(platform, caller.id, card_id)


def _set(platform: ServicesDep, caller_id: int, card_id: int, status: CardStatus) -> IssuerCardOut:
    _own_card(platform, caller_id, card_id)
    card = set_card_status(platform=platform, card_id=card_id, status=status)
    assert card is not None
    return IssuerCardOut.of(card)


@router.post("/{card_id}/freeze", response_model=IssuerCardOut)
def freeze(card_id: IdPath, caller: CurrentInstitution, platform: ServicesDep) -> IssuerCardOut:
    return _set(platform, caller.id, card_id, CardStatus.FROZEN)


@router.post("/{card_id}/unfreeze", response_model=IssuerCardOut)
def unfreeze(card_id: IdPath, caller: CurrentInstitution, platform: ServicesDep) -> IssuerCardOut:
    return _set(platform, caller.id, card_id, CardStatus.ACTIVE)


@router.post("/{card_id}/close", response_model=IssuerCardOut)
def close(card_id: IdPath, caller: CurrentInstitution, platform: ServicesDep) -> IssuerCardOut:
    return _set(platform, caller.id, card_id, CardStatus.CLOSED)
