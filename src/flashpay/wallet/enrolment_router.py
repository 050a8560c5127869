"""``POST /v1/issuer/enrolments``: an issuer puts its cardholders' cards into their wallets.

Thin over ``wallet.enrolment.enrol_cards`` (decision 0012): only an issuer's own institution key
may call it, and only for cards it recorded — another issuer's card is refused as ``not_found``
(404), like every other resource of someone else. All or nothing: the first refused card answers
the service's error with ``details.index`` (its position in ``card_ids``), and nothing is
written. A card already in its holder's wallet comes back as it is, so a bank may
send its file again; with an ``Idempotency-Key`` a retry replays the first answer.
"""

from __future__ import annotations

from fastapi import APIRouter

from flashpay.api.deps import CurrentInstitution, ServicesDep
from flashpay.api.errors import ApiError
from flashpay.institutions.definition import InstitutionKind
from flashpay.institutions.service import get_institution
from flashpay.wallet.enrolment import enrol_cards
from flashpay.wallet.schemas import EnrolledCardOut, EnrolmentIn, EnrolmentOut

router = APIRouter(prefix="/v1/issuer/enrolments", tags=["issuer"])


@router.post("", response_model=EnrolmentOut)
def enrol(body: EnrolmentIn, caller: CurrentInstitution, platform: ServicesDep) -> EnrolmentOut:
    """Enrol cards this issuer recorded into their holders' wallets (found by the card's phone),
    without a one-time code: the issuer vouches that each holder asked for it."""
    issuer = get_institution(platform=platform, institution_id=caller.id)
    if issuer is None or issuer.kind is not InstitutionKind.ISSUER:
        raise ApiError(status_code=403, code="forbidden", message="this endpoint is for issuers")
    # A refusal is the WalletError itself: the API's error handler answers it, with only the
    # refused card's index in ``details`` (the request's values are never echoed: one may be a
    # card number).
    enrolled = enrol_cards(platform=platform, issuer=issuer, card_ids=body.card_ids)
    results = [EnrolledCardOut.of(index, card) for index, card in enumerate(enrolled)]
    return EnrolmentOut(cards=len({card.id for card in enrolled}), results=results)
