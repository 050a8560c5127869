"""``/v1/users``, ``/v1/sessions``, ``/v1/me`` and ``/v1/cards``: the wallet over HTTP.

Thin: parse, call one wallet function, render. A ``WalletError`` becomes the error object with
its code, at the status the API layer gives that code (``flashpay.api.errors``); a card number
that does not parse is refused here, before the wallet is asked (``invalid_card_number``, 422,
as the cards router does). Another user's card is a 404, never a 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from flashpay.api.deps import CurrentUser, IdempotencyDep, ServicesDep
from flashpay.api.errors import ApiError
from flashpay.api.types import IdPath
from flashpay.cards.numbers import CardNumber, CardNumberError
from flashpay.wallet import binding, cards, pin, registration, sessions
from flashpay.wallet.schemas import (
    BalanceOut,
    BindingIn,
    BindingOut,
    ConfirmIn,
    LoginIn,
    PinIn,
    RegisterIn,
    SessionOut,
    UserOut,
    WalletCardList,
    WalletCardOut,
)

router = APIRouter(tags=["wallet"])


@router.post("/v1/users", status_code=201, response_model=UserOut)
def register(body: RegisterIn, platform: ServicesDep, idempotency: IdempotencyDep) -> UserOut:
    """Open a wallet with a phone number, the real name and ID number, and a password."""
    user = registration.register(
        platform=platform,
        phone=body.phone,
        name=body.name,
        id_number=body.id_number,
        password=body.password,
        idempotency=idempotency,
    )
    return UserOut.of(user)


@router.post("/v1/sessions", status_code=201, response_model=SessionOut)
def login(body: LoginIn, platform: ServicesDep, request: Request, response: Response) -> SessionOut:
    """Log in: a bearer token for 24 hours. Not stored for idempotent replay (no-store).
    Throttled per account and per client address (429 ``account_locked``/``too_many_attempts``
    with ``Retry-After``)."""
    source = request.client.host if request.client is not None else None
    session = sessions.login(
        platform=platform, phone=body.phone, password=body.password, source=source
    )
    response.headers["Cache-Control"] = "no-store"
    return SessionOut.of(session)


@router.delete("/v1/sessions/current", status_code=204)
def logout(user: CurrentUser, platform: ServicesDep, request: Request) -> Response:
    """Log out: the bearer token of this request stops working."""
    del user  # authenticated by the dependency; the token itself is what we revoke
    _scheme, _, token = request.headers.get("authorization", "").partition(" ")
    sessions.logout(platform=platform, token=token.strip())
    return Response(status_code=204)


@router.get("/v1/me", response_model=UserOut)
def me(user: CurrentUser, platform: ServicesDep) -> UserOut:
    found = registration.get_user(platform=platform, user_id=user.id)
    if found is None:
        raise ApiError(status_code=404, code="not_found", message="user not found")
    return UserOut.of(found)


@router.put("/v1/me/pin", status_code=204)
def set_pin(body: PinIn, user: CurrentUser, platform: ServicesDep) -> Response:
    """Set or change the six-digit payment PIN (the login password authorizes it)."""
    pin.set_pin(platform=platform, user_id=user.id, pin=body.pin, password=body.password)
    return Response(status_code=204)


@router.post("/v1/cards/bindings", status_code=201, response_model=BindingOut)
def start_binding(
    body: BindingIn, user: CurrentUser, platform: ServicesDep, idempotency: IdempotencyDep
) -> BindingOut:
    """Step 1 of binding a card: the issuer checks it and texts a code to its phone on file."""
    try:
        number = CardNumber.parse(body.card_number)
    except CardNumberError as exc:
        raise ApiError(status_code=422, code="invalid_card_number", message=str(exc)) from exc
    started = binding.start_binding(
        platform=platform,
        user_id=user.id,
        card_number=number,
        expiry=body.expiry,
        cvv=body.cvv,
        idempotency=idempotency,
    )
    return BindingOut.of(started)


@router.post(
    "/v1/cards/bindings/{binding_id}/confirm", status_code=201, response_model=WalletCardOut
)
def confirm_binding(
    binding_id: IdPath,
    body: ConfirmIn,
    user: CurrentUser,
    platform: ServicesDep,
    idempotency: IdempotencyDep,
) -> WalletCardOut:
    """Step 2: the one-time code binds the card under a network token."""
    card = binding.confirm_binding(
        platform=platform,
        user_id=user.id,
        binding_id=binding_id,
        otp=body.otp,
        idempotency=idempotency,
    )
    return WalletCardOut.of(card)


@router.get("/v1/cards", response_model=WalletCardList)
def list_cards(user: CurrentUser, platform: ServicesDep) -> WalletCardList:
    """The wallet's cards (at most 15, so one page)."""
    listed = cards.list_wallet_cards(platform=platform, user_id=user.id)
    return WalletCardList(items=[WalletCardOut.of(c) for c in listed])


def _card(platform: ServicesDep, user_id: int, card_id: int) -> cards.WalletCard:
    found = cards.get_wallet_card(platform=platform, user_id=user_id, wallet_card_id=card_id)
    if found is None:
        raise ApiError(status_code=404, code="not_found", message="card not found")
    return found


@router.get("/v1/cards/{card_id}", response_model=WalletCardOut)
def get_card(card_id: IdPath, user: CurrentUser, platform: ServicesDep) -> WalletCardOut:
    return WalletCardOut.of(_card(platform, user.id, card_id))


@router.delete("/v1/cards/{card_id}", status_code=204)
def unbind(card_id: IdPath, user: CurrentUser, platform: ServicesDep) -> Response:
    """Unbind a card (the next card becomes the default if this one was)."""
    cards.unbind_card(platform=platform, user_id=user.id, wallet_card_id=card_id)
    return Response(status_code=204)


@router.post("/v1/cards/{card_id}/default", response_model=WalletCardOut)
def make_default(card_id: IdPath, user: CurrentUser, platform: ServicesDep) -> WalletCardOut:
    card = cards.set_default_card(platform=platform, user_id=user.id, wallet_card_id=card_id)
    return WalletCardOut.of(card)


@router.post("/v1/cards/{card_id}/freeze", response_model=WalletCardOut)
def freeze(card_id: IdPath, user: CurrentUser, platform: ServicesDep) -> WalletCardOut:
    card = cards.set_card_frozen(
        platform=platform, user_id=user.id, wallet_card_id=card_id, frozen=True
    )
    return WalletCardOut.of(card)


@router.post("/v1/cards/{card_id}/unfreeze", response_model=WalletCardOut)
def unfreeze(card_id: IdPath, user: CurrentUser, platform: ServicesDep) -> WalletCardOut:
    card = cards.set_card_frozen(
        platform=platform, user_id=user.id, wallet_card_id=card_id, frozen=False
    )
    return WalletCardOut.of(card)


@router.get("/v1/cards/{card_id}/balance", response_model=BalanceOut)
def balance(card_id: IdPath, user: CurrentUser, platform: ServicesDep) -> BalanceOut:
    """Debit: available and ledger balance. Credit: limit, available, outstanding, pending."""
    found = cards.wallet_card_balance(platform=platform, user_id=user.id, wallet_card_id=card_id)
    return BalanceOut.of(found)
