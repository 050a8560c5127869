"""A transit network on the default network: a subway and a bus operator, riders with bound
cards and device keys (on SQLite and PostgreSQL; books checked after every test)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flashpay.clock import FakeClock
from flashpay.institutions.service import get_institution
from flashpay.merchants.service import Merchant, Scene, onboard_merchant
from flashpay.platform import Platform
from flashpay.transit import codes
from flashpay.transit.credentials import issue_credential, register_operator
from flashpay.transit.definition import TransitDefinition, load_definition
from flashpay.transit.fares import Network
from payments.test_recovery import member


@dataclass
class Rider:
    token: str
    card_id: int
    user_id: int
    device: Ed25519PrivateKey
    credential: bytes
    counter: int = 0

    def code(self, now_s: int) -> bytes:
        self.counter += 1
        return codes.make_code(self.credential, self.device, at_s=now_s, counter=self.counter)


@dataclass
class TransitWorld:
    platform: Platform
    clock: FakeClock
    definition: TransitDefinition
    subway: Merchant
    bus: Merchant

    def rider(self, n: int, *, balance: int, concession: str | None = None) -> Rider:
        from flashpay.wallet.payers import bound_cards

        m = member(self.platform, 500 + n, bank="BOC", prefix="621661", balance=balance)
        with self.platform.engine.connect() as connection:
            [bound] = bound_cards(connection, wallet_card_ids=[m.wallet_card_id])
        device = Ed25519PrivateKey.generate()
        issued = issue_credential(
            platform=self.platform,
            definition=self.definition,
            token=bound.token,
            device_public_key=codes.public_bytes(device.public_key()),
            ride_credit_limit_minor=5000,
            user_id=m.user_id,
            concession=concession,
        )
        return Rider(bound.token, m.card_id, m.user_id, device, issued.credential)


def operators(platform: Platform) -> tuple[Merchant, Merchant]:
    acquirer = get_institution(platform=platform, code="UMS")
    assert acquirer is not None
    made = []
    for network, scene, name in (
        (Network.SUBWAY, Scene.SUBWAY, "Metro"),
        (Network.BUS, Scene.BUS, "Bus Group"),
    ):
        merchant = onboard_merchant(
            platform=platform,
            acquirer=acquirer,
            legal_name=f"City {name} Co",
            display_name=f"City {name}",
            city="Shanghai",
            mcc="4111",
            scene=scene,
        )
        register_operator(platform=platform, network=network, merchant_id=merchant.id)
        made.append(merchant)
    return made[0], made[1]


@pytest.fixture
def world(service_platform: Platform, service_clock: FakeClock) -> TransitWorld:
    subway, bus = operators(service_platform)
    return TransitWorld(service_platform, service_clock, load_definition(), subway, bus)
