"""The authorization matrix: every route of the app × every kind of caller → the right status.

The table is checked against the app's routes (its OpenAPI operations): a route without an entry
(or an entry without a route) fails the test, so a new endpoint cannot ship without deciding who
may call it.

Callers: ``anonymous``; the ``owner`` of the resources in the path (a wallet user, or for issuer
routes the issuing bank); ``other_user``, another wallet user; a ``merchant`` key; the
``issuer`` key of the bank that issued the card in the path; ``other_issuer``, another bank's
key; ``admin``, the network operator's key (an institution, but not an issuer). Someone else's
card, binding or transfer is a 404, never a 403; the wrong kind of caller is a 403.
"""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from world import PASSWORD, PIN, open_world

from flashpay.app import create_platform_app
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.cards.numbers import generate_card_number
from flashpay.chain.service import ChainLog
from flashpay.institutions.service import get_institution
from flashpay.keys import KeyRing
from flashpay.merchants.service import Scene, onboard_merchant
from flashpay.platform import Platform
from flashpay.settlement.close import close_window
from flashpay.settlement.payouts import payouts
from flashpay.settlement.queries import list_windows
from flashpay.settlement.settle import settle_window
from flashpay.settlement.windows import Schedule
from flashpay.transit import codes
from flashpay.transit.codes import GateTrust
from flashpay.transit.credentials import issue_credential, register_operator
from flashpay.transit.definition import load_definition
from flashpay.transit.denylist import gate_trust
from flashpay.transit.fares import Network
from flashpay.transit.settle import settle
from flashpay.transit.trips import TapKind
from flashpay.transit.uploads import UploadedTap, record_taps
from flashpay.transit.views import rider_trips
from flashpay.wallet.payers import bound_cards
from flashpay.webhooks import EventType, event_id
from flashpay.webhooks.derive import Deriver
from flashpay.webhooks.endpoints import create_endpoint
from flashpay.webhooks.feed import list_deliveries

pytestmark = pytest.mark.anyio

# Callers in the order they call each route: the owners last, so a route that changes or deletes
# its resource does so after everyone else was refused. ``merchant`` is another merchant;
# ``shop`` is the merchant that owns the orders and was paid the payments in the path.
CALLERS = (
    "anonymous", "other_user", "merchant", "other_issuer", "admin", "acquirer", "issuer",
    "owner", "shop",
)  # fmt: skip


def _all(status: int) -> tuple[int, ...]:
    return (status,) * len(CALLERS)


def _user(ok: int, other_user: int) -> tuple[int, ...]:
    """Wallet routes: the owner gets ``ok``, another user ``other_user``, no one else in."""
    return (401, other_user, 403, 403, 403, 403, 403, ok, 403)


def _shop(ok: int, other_merchant: int) -> tuple[int, ...]:
    """Merchant routes: the shop gets ``ok``, another merchant ``other_merchant``."""
    return (401, 403, other_merchant, 403, 403, 403, 403, 403, ok)


def _issuer(ok: int) -> tuple[int, ...]:
    """Issuer routes on a card BOC issued: BOC gets ``ok``, another bank 404."""
    return (401, 403, 403, 404, 403, 403, ok, 403, 403)


_ADMIN = (401, 403, 403, 403, 200, 403, 403, 403, 403)
# Promotions: every funder (merchant, bank, network, acquirer key) may create and list its own;
# the campaign in the path is BOC's, so every other funder gets 404.
_FUNDERS = (401, 403, 200, 200, 200, 200, 200, 403, 200)
_CREATE_CAMPAIGN = (401, 403, 201, 201, 201, 201, 201, 403, 201)


def _funder(ok: int) -> tuple[int, ...]:
    """Routes on a campaign BOC funds: BOC gets ``ok``, every other funder 404."""
    return (401, 403, 404, 404, 404, 404, ok, 403, 404)


_ACQUIRER = (401, 403, 403, 403, 403, 200, 403, 403, 403)
_INSTITUTIONS = (401, 403, 403, 200, 200, 200, 200, 403, 403)
_UMS_PAYOUTS = (401, 403, 403, 404, 200, 200, 404, 403, 403)
_MEMBER = (401, 403, 403, 404, 200, 404, 200, 403, 403)  # BOC's: the issuer and the operator
_RECORD_CARD = (401, 403, 403, 422, 403, 403, 201, 403, 403)  # another bank's BIN: 422
_SIGN_MERCHANT = (401, 403, 403, 403, 403, 201, 403, 403, 403)

# (method, path template) -> expected status per caller, in CALLERS order.
# fmt: off
MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/v1/health"):                                 _all(200),
    ("GET", "/v1/ready"):                                  _all(200),
    ("GET", "/v1/admin/api-keys"):                         _ADMIN,
    ("GET", "/metrics"):                                   _ADMIN,
    ("POST", "/v1/admin/api-keys/{key_id}/revoke"):        _ADMIN,
    ("PUT", "/v1/admin/network"):                          _ADMIN,
    ("GET", "/v1/institutions"):                           _all(200),
    ("POST", "/v1/users"):                                 _all(201),
    ("POST", "/v1/sessions"):                              _all(201),
    ("DELETE", "/v1/sessions/current"):                    _user(204, 204),
    ("GET", "/v1/me"):                                     _user(200, 200),
    ("PUT", "/v1/me/pin"):                                 _user(204, 204),
    ("PUT", "/v1/me/limits"):                              _user(204, 204),
    ("POST", "/v1/cards/bindings"):                        _user(201, 422),
    ("POST", "/v1/cards/bindings/{binding_id}/confirm"):   _user(201, 404),
    ("GET", "/v1/cards"):                                  _user(200, 200),
    ("GET", "/v1/cards/{card_id}"):                        _user(200, 404),
    ("DELETE", "/v1/cards/{card_id}"):                     _user(204, 404),
    ("POST", "/v1/cards/{card_id}/default"):               _user(200, 404),
    ("POST", "/v1/cards/{card_id}/freeze"):                _user(200, 404),
    ("POST", "/v1/cards/{card_id}/unfreeze"):              _user(200, 404),
    ("GET", "/v1/cards/{card_id}/balance"):                _user(200, 404),
    ("POST", "/v1/cards/{card_id}/payment-code"):          _user(201, 404),
    ("POST", "/v1/transfers"):                             _user(201, 404),
    ("GET", "/v1/transfers"):                              _user(200, 200),
    ("GET", "/v1/transfers/{transfer_id}"):                _user(200, 404),
    ("GET", "/v1/transfers/{transfer_id}/receipt"):        _user(200, 404),
    ("POST", "/v1/payments/qr"):                           _user(201, 404),
    ("GET", "/v1/payments"):                               _user(200, 200),
    ("GET", "/v1/payments/{payment_id}"):                  _user(200, 404),
    ("GET", "/v1/payments/{payment_id}/receipt"):          _user(200, 404),
    ("POST", "/v1/issuer/cards"):                          _RECORD_CARD,
    ("GET", "/v1/issuer/cards/{card_id}"):                 _issuer(200),
    ("POST", "/v1/issuer/cards/{card_id}/freeze"):         _issuer(200),
    ("POST", "/v1/issuer/cards/{card_id}/unfreeze"):       _issuer(200),
    ("POST", "/v1/issuer/cards/{card_id}/close"):          _issuer(200),
    # A BOC card in the body: another bank may not enrol it (404, like its card in a path).
    ("POST", "/v1/issuer/enrolments"):                     _issuer(200),
    ("POST", "/v1/acquirer/merchants"):                    _SIGN_MERCHANT,
    ("GET", "/v1/acquirer/merchants"):                     _ACQUIRER,
    ("GET", "/v1/merchant"):                               _shop(200, 200),
    ("POST", "/v1/merchant/terminals"):                    _shop(201, 201),
    ("GET", "/v1/merchant/terminals"):                     _shop(200, 200),
    ("GET", "/v1/merchant/qr"):                            _shop(200, 200),
    ("POST", "/v1/merchant/orders"):                       _shop(201, 201),
    ("GET", "/v1/merchant/orders/{order_id}"):             _shop(200, 404),
    ("GET", "/v1/merchant/orders/{order_id}/qr"):          _shop(200, 404),
    ("POST", "/v1/merchant/payments"):                     _shop(201, 201),
    ("GET", "/v1/merchant/payments"):                      _shop(200, 200),
    ("GET", "/v1/merchant/payments/{payment_id}"):         _shop(200, 404),
    ("GET", "/v1/merchant/payments/{payment_id}/receipt"): _shop(200, 404),
    ("POST", "/v1/merchant/payments/{payment_id}/capture"): _shop(200, 404),
    ("POST", "/v1/merchant/payments/{payment_id}/void"):   _shop(200, 404),
    ("POST", "/v1/merchant/payments/{payment_id}/refunds"): _shop(201, 404),
    ("POST", "/v1/promotions/campaigns"):                  _CREATE_CAMPAIGN,
    ("GET", "/v1/promotions/campaigns"):                   _FUNDERS,
    ("GET", "/v1/promotions/campaigns/{campaign_id}"):     _funder(200),
    ("GET", "/v1/promotions/campaigns/{campaign_id}/report"): _funder(200),
    ("POST", "/v1/promotions/campaigns/{campaign_id}/activate"): _funder(200),
    ("POST", "/v1/promotions/campaigns/{campaign_id}/pause"): _funder(200),
    ("POST", "/v1/promotions/campaigns/{campaign_id}/end"): _funder(200),
    ("POST", "/v1/promotions/campaigns/{campaign_id}/top-ups"): _funder(200),
    ("POST", "/v1/promotions/campaigns/{campaign_id}/coupon-pushes"): _funder(200),
    ("POST", "/v1/promotions/campaigns/{campaign_id}/coupons"): _user(201, 201),
    ("GET", "/v1/promotions/coupons"):                     _user(200, 200),
    ("GET", "/v1/promotions/discounts"):                   _user(200, 200),
    # At the first merchant signed; the other user has no card to quote with (404).
    ("GET", "/v1/promotions/quote"):                       _user(200, 404),
    # Any user may ask; the payload here is no merchant code (the quote itself is tested in
    # test_promotions_inquiry), so a user passes authorization and gets 422.
    ("GET", "/v1/promotions/scan-quote"):                  _user(422, 422),
    # The audit log is public to the members' network (decision 0006); the log here is empty.
    ("GET", "/v1/chain/checkpoint"):                       _all(404),
    ("GET", "/v1/chain/proof/inclusion"):                  _all(400),
    ("GET", "/v1/chain/proof/consistency"):                _all(200),
    ("GET", "/v1/chain/leaves"):                           _all(200),
    ("GET", "/v1/chain/receipts/{chain_id}"):              _all(404),
    # Webhooks: the shop's endpoint, event (its payment in the path) and delivery.
    ("POST", "/v1/webhooks/endpoints"):                    _shop(201, 201),
    ("GET", "/v1/webhooks/endpoints"):                     _shop(200, 200),
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}"):       _shop(200, 404),
    ("PATCH", "/v1/webhooks/endpoints/{endpoint_id}"):     _shop(200, 404),
    ("DELETE", "/v1/webhooks/endpoints/{endpoint_id}"):    _shop(204, 404),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"): _shop(200, 404),
    ("GET", "/v1/webhooks/events"):                        _shop(200, 200),
    ("GET", "/v1/webhooks/events/stream"):                 _shop(200, 200),
    ("GET", "/v1/webhooks/events/{event_id}"):             _shop(200, 404),
    ("POST", "/v1/webhooks/events/{event_id}/replay"):     _shop(201, 404),
    ("GET", "/v1/webhooks/deliveries"):                    _shop(200, 200),
    ("GET", "/v1/webhooks/deliveries/{delivery_id}"):      _shop(200, 404),
    # Transit: the owner's card (another user's is a 404); ``shop`` is the subway's operator
    # here, so another merchant, operating no network, is the wrong kind of caller (403).
    ("POST", "/v1/transit/credentials"):                   _user(201, 404),
    ("GET", "/v1/transit/gate-trust"):                     _shop(200, 403),
    ("POST", "/v1/transit/gates/{gate_id}/taps"):          _shop(200, 403),
    ("GET", "/v1/transit/trips"):                          _user(200, 404),
    ("POST", "/v1/transit/trips/{trip_id}/dispute"):       _user(200, 404),
    ("GET", "/v1/transit/operator/ridership"):             _shop(200, 403),
    ("POST", "/v1/transit/settle"):                        _ADMIN,
    # Settlement: every institution lists windows; a member's positions, files and
    # reconciliation are that member's (BOC's here: another member gets 404) and the operator's;
    # closing and settling are the operator's alone.
    ("GET", "/v1/settlement/windows"):                     _INSTITUTIONS,
    ("GET", "/v1/settlement/windows/{window_id}"):         _INSTITUTIONS,
    ("GET", "/v1/settlement/windows/{window_id}/positions/{member}"): _MEMBER,
    ("GET", "/v1/settlement/windows/{window_id}/files/{member}"):     _MEMBER,
    ("GET", "/v1/settlement/windows/{window_id}/files/{member}/{kind}"): _MEMBER,
    ("POST", "/v1/settlement/windows/{window_id}/reconciliation/{member}"): _MEMBER,
    ("POST", "/v1/settlement/close"):                      _ADMIN,
    ("POST", "/v1/settlement/windows/{window_id}/settle"): _ADMIN,
    # Payouts: computed by the operator for a settled window; an acquirer (UMS here) reads its
    # merchants' (another member 404); a merchant reads its own statement (another merchant 404).
    ("POST", "/v1/settlement/windows/{window_id}/payouts"): _ADMIN,
    ("GET", "/v1/settlement/windows/{window_id}/payouts/{acquirer}"): _UMS_PAYOUTS,
    ("GET", "/v1/settlement/windows/{window_id}/statement"): _shop(200, 404),
}
# fmt: on
QUERIES = {
    "/v1/chain/proof/inclusion": "?index=0&size=1",
    "/v1/chain/proof/consistency": "?first=0&second=0",
    "/v1/promotions/quote": "?merchant_id=1&amount=10.00",
    "/v1/webhooks/events/stream": "?max_seconds=1",
    "/v1/promotions/scan-quote": "?payload=not-a-code&amount=10.00",
}
# A stackable campaign of BOC's with claimable coupons (stackable: the fresh one of each route
# never clashes with the ones activated before it).
CAMPAIGN = {
    "name": "matrix", "starts_at": "2026-11-01T00:00:00+08:00",
    "ends_at": "2027-01-01T00:00:00+08:00", "stacking": "stackable",
    "benefit": {"kind": "amount_off", "off_minor": 100, "threshold_minor": 1000},
    "budget": {"uses": 100}, "coupon": {"valid_seconds": 86_400},
}  # fmt: skip


async def _campaign(world, *, active: bool) -> int:
    created = await world.client.post(
        "/v1/promotions/campaigns", json=CAMPAIGN, headers=world.keys["BOC"]
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    if active:
        activated = await world.client.post(
            f"/v1/promotions/campaigns/{campaign_id}/activate", headers=world.keys["BOC"]
        )
        assert activated.status_code == 200, activated.text
    return campaign_id


def _routes(app) -> set[tuple[str, str]]:
    """Every operation of the app, from its OpenAPI document (which FastAPI builds from routes)."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def test_every_route_has_an_entry_and_every_entry_a_route(sqlite_url):
    platform = Platform.open(sqlite_url, keys=KeyRing.generate())
    log = ChainLog.open(sqlite_url)
    app = create_platform_app(platform, request_hash_key=b"k" * 32, chain_log=log)
    assert _routes(app) == set(MATRIX)
    log.close()
    platform.close()


def _default_network_json() -> dict:
    text = resources.files("flashpay.institutions").joinpath("default_network.toml").read_text()
    return tomllib.loads(text)


def _window(world, directory, template: str) -> int:
    """A window closed just now (its postings: the route's own payments), for the routes on one;
    for the payout routes every window settled (payouts go oldest first) and, for a merchant's
    statement, its payouts computed."""
    world.clock.advance(10)
    schedule = Schedule(close_delay_seconds=5)
    end_ns = world.clock.now_ns() - 6 * 1_000_000_000
    window_id = close_window(platform=world.platform, end_ns=end_ns, schedule=schedule,
                             directory=directory).window.id  # fmt: skip
    if template.endswith(("/payouts", "/statement")):
        with world.platform.engine.connect() as connection:
            every = list_windows(connection)
        for window in sorted(every, key=lambda w: w.end_ns):
            settle_window(platform=world.platform, window_id=window.id)
    if template.endswith("/statement"):
        for window in sorted(every, key=lambda w: w.end_ns):
            payouts(platform=world.platform, window_id=window.id)
    return window_id


async def test_authorization_matrix(database_url, leak_guard, tmp_path, monkeypatch):
    monkeypatch.setenv("FLASHPAY_DATA_DIR", str(tmp_path))  # where the close route writes files
    async with open_world(database_url, leak_guard) as world:
        other = await world.signup(world.person("Other"))
        headers = {
            "anonymous": {},
            "other_user": other.headers,
            "issuer": world.keys["BOC"],
            "other_issuer": world.keys["ICBC"],
            "admin": world.keys["admin"],
            "acquirer": world.keys["UMS"],
            "merchant": (await world.merchant("Another Shop"))["headers"],
        }
        shop = await world.merchant("The Shop")
        headers["shop"] = shop["headers"]
        peer, _ = await world.member_with_card("Peer")
        operator = _subway_operator(world)
        failures = []
        for (method, template), expected in MATRIX.items():
            # Fresh resources per route, owned by a fresh ``owner`` (cards issued by BOC).
            owner = await world.signup(world.person("Owner"))
            headers["owner"] = owner.headers
            pan, issued = await world.issue(owner, balance="100.00")
            card = await world.bind(owner, pan)
            spare, _ = await world.issue(owner, balance="1.00")
            binding = await world.client.post(
                "/v1/cards/bindings",
                json={"card_number": spare, "expiry": "12/30"},
                headers=owner.headers,
            )
            binding_id = binding.json()["binding_id"]
            otp = world.notifier.last_code("card_binding", str(binding_id))
            sent = await world.transfer(owner, from_card_id=card["id"], amount="1.00",
                                        to_phone=peer.phone)  # fmt: skip
            key = create_api_key(platform=world.platform, kind=PrincipalKind.MERCHANT,
                                 principal_id=7)  # fmt: skip
            unbound, unbound_issued = await world.issue(owner, balance="1.00")
            order = await world.order(shop, "2.00", f"O-{len(failures)}-{next(_counter)}")
            paid = (await world.pay(owner, order["payload"], card["id"])).json()
            code = (await world.payment_code(owner, card["id"]))["qr_payload"]
            held = await world.collect(shop, code, "1.00", capture=False)
            payment_id = (
                held.json()["id"] if template.endswith(("/capture", "/void")) else paid["id"]
            )
            fresh_order = await world.order(shop, "1.00", f"F-{next(_counter)}")
            fresh_code = (await world.payment_code(owner, card["id"]))["qr_payload"]
            context = {"card_id": card["id"], "peer": peer, "otp": otp, "unbound": unbound,
                       "unbound_id": unbound_issued["id"],
                       "order_payload": fresh_order["payload"], "code": fresh_code}  # fmt: skip
            campaign_id = await _campaign(world, active=template.endswith(("/pause", "/coupons")))
            hooks = _webhooks(world, shop, paid) if template.startswith("/v1/webhooks/") else {}
            trip_id = _trip(world, card["id"]) if template.endswith("/dispute") else 0
            window_id = _window(world, tmp_path, template) if "{window_id}" in template else 0
            path = template.format(
                **hooks,
                campaign_id=campaign_id,
                card_id=issued["id"] if template.startswith("/v1/issuer") else card["id"],
                binding_id=binding_id,
                transfer_id=sent.json()["id"],
                key_id=key.key_id,
                chain_id=1,
                order_id=order["id"],
                payment_id=payment_id,
                gate_id="G-MATRIX",
                trip_id=trip_id,
                window_id=window_id,
                member="BOC",
                acquirer="UMS",
                kind="clearing_csv",
            ) + QUERIES.get(template, "")
            if template.startswith("/v1/transit/trips"):
                path += f"?wallet_card_id={card['id']}"
            route_headers = dict(headers)
            if template.startswith(("/v1/transit/gate", "/v1/transit/operator")):
                route_headers["shop"] = operator
            if template == "/v1/sessions/current":  # logging out ends the token: use spare ones
                for caller, person in (("other_user", other), ("owner", owner)):
                    spare_session = await world.client.post(
                        "/v1/sessions", json={"phone": person.phone, "password": PASSWORD}
                    )
                    token = spare_session.json()["token"]
                    route_headers[caller] = {"Authorization": f"Bearer {token}"}
            for caller, status in zip(CALLERS, expected, strict=True):
                body = _body(world, method, template, owner, context)
                response = await world.client.request(
                    method, path, json=body, headers=route_headers[caller]
                )
                if response.status_code != status:
                    failures.append(
                        (method, template, caller, status, response.status_code, response.text)
                    )
        assert failures == []


_counter = iter(range(10**6))
NS = 1_000_000_000


def _webhooks(world, shop, paid) -> dict[str, object]:
    """A fresh endpoint of the shop's, the event of ``paid`` (derived now) and its delivery."""
    endpoint, _secret = create_endpoint(
        platform=world.platform, merchant_id=shop["id"], url="https://shop.example/hooks"
    )
    Deriver(world.platform).run_once()
    evt = event_id(EventType.PAYMENT_COMPLETED, int(paid["id"]))
    (delivery,) = list_deliveries(
        platform=world.platform, merchant_id=shop["id"], event_id=evt, endpoint_id=endpoint.id
    )
    return {"endpoint_id": endpoint.id, "event_id": evt, "delivery_id": delivery.id}


def _subway_operator(world) -> dict[str, str]:
    """The API key of a merchant registered as the subway's operator (as transit tests make)."""
    acquirer = get_institution(platform=world.platform, code="UMS")
    assert acquirer is not None
    metro = onboard_merchant(platform=world.platform, acquirer=acquirer, legal_name="City Metro Co",
                             display_name="City Metro", city="Shanghai", mcc="4111",
                             scene=Scene.SUBWAY)  # fmt: skip
    register_operator(platform=world.platform, network=Network.SUBWAY, merchant_id=metro.id)
    key = create_api_key(platform=world.platform, kind=PrincipalKind.MERCHANT,
                         principal_id=metro.id)  # fmt: skip
    return {"X-Api-Key": key.key}


def _trip(world, wallet_card_id: int) -> int:
    """A settled trip on the card without a tap-out (the one kind a rider may dispute)."""
    with world.platform.engine.connect() as connection:
        [bound] = bound_cards(connection, wallet_card_ids=[wallet_card_id])
    device = Ed25519PrivateKey.generate()
    issued = issue_credential(platform=world.platform, definition=load_definition(),
                              token=bound.token, device_public_key=codes.public_bytes(
                                  device.public_key()), ride_credit_limit_minor=5000,
                              user_id=bound.user_id)  # fmt: skip
    snap = gate_trust(platform=world.platform)
    trust = GateTrust(snap.network_id, {k: Ed25519PublicKey.from_public_bytes(v)
                                        for k, v in snap.network_keys.items()})  # fmt: skip
    now_ns = world.clock.now_ns()
    code = codes.make_code(issued.credential, device, at_s=now_ns // NS, counter=1)
    verdict = codes.verify_code(trust, code, now_s=now_ns // NS)
    assert isinstance(verdict, codes.Accepted)
    tap = UploadedTap(1, verdict.token, "S01", TapKind.IN, now_ns, verdict.digest, 0)
    record_taps(platform=world.platform, gate_id=f"G-T{next(_counter)}", gate_clock_ns=now_ns,
                taps=[tap])  # fmt: skip
    world.clock.advance(5 * 3600)  # past the longest trip: the batch closes it untapped-out
    settle(platform=world.platform, definition=load_definition())
    [trip] = rider_trips(platform=world.platform, tokens=[bound.token])
    assert trip.status == "no_tap_out", trip
    return trip.id


def _body(world, method, template, owner, context):
    n = next(_counter)
    if template == "/v1/users":
        return {"phone": f"1370000{n:04d}", "name": "New", "id_number": "110101199001019999",
                "password": PASSWORD}  # fmt: skip
    if template == "/v1/sessions":
        return {"phone": owner.phone, "password": PASSWORD}
    if template == "/v1/me/pin":
        return {"pin": PIN, "password": PASSWORD}
    if template == "/v1/cards/bindings":
        return {"card_number": context["unbound"], "expiry": "12/30"}
    if template.endswith("/confirm"):
        return {"otp": context["otp"]}
    if template == "/v1/transfers" and method == "POST":
        return {"from_card_id": context["card_id"], "amount": "1.00",
                "to_phone": context["peer"].phone, "pin": PIN}  # fmt: skip
    if template == "/v1/issuer/cards":
        pan = generate_card_number("621661", 16).reveal()
        world.guard.secrets.append(pan)
        return {"card_number": pan, "expiry": "12/30", "holder_name": "New Holder",
                "holder_id_number": "110101199001019999", "phone": "13600000000",
                "opening_balance": "1.00"}  # fmt: skip
    if template == "/v1/issuer/enrolments":
        return {"card_ids": [context["unbound_id"]]}
    if template == "/v1/me/limits":
        return {"free_per_payment": "500.00", "qr_daily_limit": "5000.00", "password": PASSWORD}
    if template == "/v1/payments/qr":
        return {"payload": context["order_payload"], "card_id": context["card_id"], "pin": PIN}
    if template == "/v1/acquirer/merchants" and method == "POST":
        return {"legal_name": "New Co", "display_name": f"New {n}", "city": "Beijing",
                "mcc": "5411", "scene": "supermarket"}  # fmt: skip
    if template == "/v1/merchant/orders":
        return {"amount": "3.00", "bill_number": f"B-{n}"}
    if template == "/v1/merchant/payments" and method == "POST":
        return {"code": context["code"], "amount": "1.00"}
    if template.endswith(("/capture", "/refunds")):
        return {"amount": "1.00"}
    if template == "/v1/admin/network":
        return _default_network_json()
    if template == "/v1/promotions/campaigns" and method == "POST":
        return CAMPAIGN
    if template == "/v1/webhooks/endpoints" and method == "POST":
        return {"url": "https://shop.example/hooks/new"}
    if template == "/v1/webhooks/endpoints/{endpoint_id}" and method == "PATCH":
        return {"enabled": True}
    if template.endswith("/top-ups"):
        return {"uses": 1}
    if template == "/v1/settlement/close":
        world.clock.advance(10)  # after the last window the routes before closed
        return {"end_ns": world.clock.now_ns() - 6 * 1_000_000_000}
    if template.endswith("/reconciliation/{member}"):
        return {"record_csv": ""}
    if template.endswith("/coupon-pushes"):
        return {"phones": ["13600000001"]}
    if template == "/v1/transit/credentials":
        device = Ed25519PrivateKey.generate()
        return {"wallet_card_id": context["card_id"], "ride_credit_limit_minor": 5000,
                "device_public_key": codes.public_bytes(device.public_key()).hex()}  # fmt: skip
    if template == "/v1/transit/gates/{gate_id}/taps":
        return {"gate_clock_ns": world.clock.now_ns(), "taps": []}
    if template.endswith("/dispute"):
        return {"to_station": "S02"}
    return None
