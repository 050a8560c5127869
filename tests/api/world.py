"""A small flashpay world for HTTP tests: the default network loaded, issuer and admin API keys,
and helpers that do what an issuer or an app user does, through the real ASGI app."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from api_testkit import LeakGuard

from flashpay.app import create_platform_app
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.books import check_books
from flashpay.cards.numbers import generate_card_number
from flashpay.chain import note
from flashpay.chain.publisher import Publisher
from flashpay.chain.receipt import TrustPolicy
from flashpay.chain.service import ChainLog
from flashpay.clock import FakeClock
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.keys import KeyRing
from flashpay.ledger.check import check
from flashpay.notify import RecordingNotifier
from flashpay.platform import Platform

PASSWORD = "correct horse battery"
PIN = "135790"
START_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18, Beijing afternoon


@dataclass
class Person:
    phone: str
    name: str
    id_number: str
    headers: dict[str, str] = field(default_factory=dict)
    user_id: int = 0


@dataclass
class World:
    platform: Platform
    client: httpx.AsyncClient
    notifier: RecordingNotifier
    clock: FakeClock
    guard: LeakGuard
    keys: dict[str, dict[str, str]]
    chain_log: ChainLog
    app: Any = None  # the ASGI app, for clients from other addresses (``client_from``)
    _people: int = 0

    def client_from(self, host: str) -> httpx.AsyncClient:
        """Another client of the same app, calling from ``host`` (the source address)."""
        transport = httpx.ASGITransport(app=self.app, client=(host, 40_000))
        return httpx.AsyncClient(
            transport=transport, base_url="http://flashpay.test",
            event_hooks={"response": [self.guard.record]},
        )  # fmt: skip

    # -- issuers --------------------------------------------------------------------------------
    async def issue(
        self,
        person: Person,
        *,
        bank: str = "BOC",
        prefix: str = "621661",
        balance: str | None = "1000.00",
        credit_limit: str | None = None,
        expiry: str = "12/30",
        phone: str | None = None,
        length: int = 16,
    ) -> tuple[str, dict[str, Any]]:
        """The bank issues a card to ``person``: (card number, the issuer's response)."""
        pan = generate_card_number(prefix, length).reveal()
        self.guard.secrets.append(pan)
        body: dict[str, Any] = {
            "card_number": pan,
            "expiry": expiry,
            "holder_name": person.name,
            "holder_id_number": person.id_number,
            "phone": phone or person.phone,
        }
        if credit_limit is not None:
            body["credit_limit"] = credit_limit
        elif balance is not None:
            body["opening_balance"] = balance
        response = await self.client.post("/v1/issuer/cards", json=body, headers=self.keys[bank])
        assert response.status_code == 201, response.text
        return pan, response.json()

    # -- app users -----------------------------------------------------------------------------
    def person(self, name: str = "Li Wei") -> Person:
        self._people += 1
        n = self._people
        return Person(
            phone=f"1380000{n:04d}",
            name=name,
            id_number=f"11010119900101{n:03d}X"[:17] + "X",
        )

    async def signup(self, person: Person, *, pin: str | None = PIN) -> Person:
        response = await self.client.post(
            "/v1/users",
            json={"phone": person.phone, "name": person.name, "id_number": person.id_number,
                  "password": PASSWORD},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        person.user_id = response.json()["id"]
        await self.login(person)
        if pin is not None:
            set_pin = await self.client.put(
                "/v1/me/pin", json={"pin": pin, "password": PASSWORD}, headers=person.headers
            )
            assert set_pin.status_code == 204, set_pin.text
        return person

    async def login(self, person: Person) -> None:
        login = await self.client.post(
            "/v1/sessions", json={"phone": person.phone, "password": PASSWORD}
        )
        assert login.status_code == 201, login.text
        person.headers = {"Authorization": f"Bearer {login.json()['token']}"}

    async def bind(
        self, person: Person, pan: str, *, expiry: str = "12/30", cvv: str | None = None
    ) -> dict[str, Any]:
        body = {"card_number": pan, "expiry": expiry}
        if cvv is not None:
            body["cvv"] = cvv
        started = await self.client.post("/v1/cards/bindings", json=body, headers=person.headers)
        assert started.status_code == 201, started.text
        binding_id = started.json()["binding_id"]
        otp = self.notifier.last_code("card_binding", str(binding_id))
        confirmed = await self.client.post(
            f"/v1/cards/bindings/{binding_id}/confirm", json={"otp": otp}, headers=person.headers
        )
        assert confirmed.status_code == 201, confirmed.text
        return dict(confirmed.json())

    async def member_with_card(self, name: str = "Li Wei", **issue: Any) -> tuple[Person, int]:
        """A signed-up user with one bound debit card: (person, wallet card id)."""
        person = await self.signup(self.person(name))
        pan, _ = await self.issue(person, **issue)
        card = await self.bind(person, pan)
        return person, int(card["id"])

    # -- merchants ------------------------------------------------------------------------------
    async def merchant(
        self,
        name: str = "Wumart",
        *,
        scene: str = "supermarket",
        mcc: str = "5411",
        acquirer: str = "UMS",
        city: str = "Beijing",
    ) -> dict[str, Any]:
        """An acquirer signs a merchant; the result holds ``headers`` with its API key."""
        response = await self.client.post(
            "/v1/acquirer/merchants",
            json={
                "legal_name": f"{name} Co., Ltd.",
                "display_name": name,
                "city": city,
                "mcc": mcc,
                "scene": scene,
            },
            headers=self.keys[acquirer],
        )
        assert response.status_code == 201, response.text
        body = dict(response.json())
        body["headers"] = {"X-Api-Key": body.pop("api_key")}
        return body

    async def static_code(self, merchant: dict[str, Any], terminal: str = "T0001") -> str:
        response = await self.client.get(
            f"/v1/merchant/qr?terminal={terminal}", headers=merchant["headers"]
        )
        assert response.status_code == 200, response.text
        return response.text

    async def order(
        self, merchant: dict[str, Any], amount: str, bill: str, **extra: Any
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/merchant/orders",
            json={"amount": amount, "bill_number": bill, **extra},
            headers=merchant["headers"],
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def pay(self, person: Person, payload: str, card_id: int, **body: Any) -> httpx.Response:
        body.setdefault("pin", PIN)
        if body["pin"] is None:
            del body["pin"]
        return await self.client.post(
            "/v1/payments/qr",
            json={"payload": payload, "card_id": card_id, **body},
            headers=person.headers,
        )

    async def payment_code(self, person: Person, card_id: int) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/cards/{card_id}/payment-code", headers=person.headers
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def collect(
        self, merchant: dict[str, Any], code: str, amount: str, **body: Any
    ) -> httpx.Response:
        return await self.client.post(
            "/v1/merchant/payments",
            json={"code": code, "amount": amount, **body},
            headers=merchant["headers"],
        )

    def publish_checkpoint(self) -> TrustPolicy:
        """Take the ledger's chains into the audit log and publish a final checkpoint (signed by
        a fresh log key, no witnesses); the trust policy that verifies its receipts."""
        signer, verifier = note.generate_key(self.chain_log.origin)
        self.chain_log.sync_from_ledger(self.platform.ledger)
        publisher = Publisher(
            self.chain_log, signer=note.parse_signer(signer), witnesses=[], quorum=0
        )
        publisher.publish()
        publisher.close()
        return TrustPolicy(note.parse_verifier(verifier), (), 0)

    async def transfer(self, person: Person, **body: Any) -> httpx.Response:
        body.setdefault("pin", PIN)
        return await self.client.post("/v1/transfers", json=body, headers=person.headers)

    async def balance(self, person: Person, card_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/v1/cards/{card_id}/balance", headers=person.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())


@asynccontextmanager
async def open_world(database_url: str, guard: LeakGuard):
    clock = FakeClock(START_NS)
    notifier = RecordingNotifier()
    platform = Platform.open(database_url, clock=clock, keys=KeyRing.generate(), notifier=notifier)
    load_network(platform=platform, definition=default_definition())
    keys: dict[str, dict[str, str]] = {}
    for code in ("BOC", "ICBC", "CMB", "UMS", "LKL", "BOCMS"):
        institution = get_institution(platform=platform, code=code)
        assert institution is not None
        key = create_api_key(
            platform=platform, kind=PrincipalKind.INSTITUTION, principal_id=institution.id
        )
        keys[code] = {"X-Api-Key": key.key}
    network = get_institution(platform=platform, code="CUP")
    assert network is not None
    admin = create_api_key(
        platform=platform,
        kind=PrincipalKind.INSTITUTION,
        principal_id=network.id,
        network_admin=True,
    )
    keys["admin"] = {"X-Api-Key": admin.key}
    keys["merchant"] = {
        "X-Api-Key": create_api_key(
            platform=platform, kind=PrincipalKind.MERCHANT, principal_id=1
        ).key
    }
    chain_log = ChainLog.open(database_url, clock=clock)
    app = create_platform_app(platform, request_hash_key=b"k" * 32, chain_log=chain_log)
    guard.engines.append(platform.engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://flashpay.test",
        event_hooks={"response": [guard.record]},
    ) as client:  # fmt: skip
        try:
            yield World(platform, client, notifier, clock, guard, keys, chain_log, app)
        finally:
            pass
    chain_log.close()
    platform.close()


@asynccontextmanager
async def checked_world(database_url: str, guard: LeakGuard):
    """``open_world``, then the proof after the test: the ledger's invariants hold
    (``flashpay.ledger.check``) and every institution's books balance, mirrors agreeing."""
    async with open_world(database_url, guard) as world:
        yield world
        report = check(database_url)
        assert report.ok, [str(p) for p in report.problems]
        problems = check_books(platform=world.platform)
        assert problems == [], problems


def code_of(response: httpx.Response) -> str:
    """The machine-readable code of an error response."""
    return str(response.json()["error"]["code"])
