"""A small network for settlement tests, made with the platform's service functions: users with a
bound debit card at BOC or ICBC, shops at UMS and LKL, and payments, refunds and P2P transfers
through the real payment services (nothing posted behind their back)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import issue_card
from flashpay.institutions.service import get_institution
from flashpay.merchants.service import (
    Merchant,
    Scene,
    onboard_merchant,
    static_payload,
    terminal_by_code,
)
from flashpay.money import Money
from flashpay.notify import RecordingNotifier
from flashpay.payments.attempts import Payment, RefundRequest, ScanRequest
from flashpay.payments.refunds import refund_many
from flashpay.payments.submit import submit_payments
from flashpay.payments.transfer_records import P2PRequest
from flashpay.payments.transfers import create_transfer
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import register

PIN = "135790"
PASSWORD = "correct horse battery"
PREFIX = {"BOC": "621661", "ICBC": "622202", "CCB": "621700"}


@dataclass
class Person:
    user_id: int
    wallet_card_id: int
    phone: str


@dataclass
class World:
    platform: Platform
    people: dict[str, Person] = field(default_factory=dict)
    shops: dict[str, tuple[Merchant, str]] = field(default_factory=dict)

    def person(self, name: str, bank: str, balance: int = 1_000_000) -> Person:
        n = len(self.people) + 1
        p = self.platform
        phone, holder, id_number = f"1380000{n:04d}", f"Person {n}", f"11010119900101{n:03d}X"
        user = register(platform=p, phone=phone, name=holder, id_number=id_number,
                        password=PASSWORD)  # fmt: skip
        set_pin(platform=p, user_id=user.id, pin=PIN, password=PASSWORD)
        issuer = get_institution(platform=p, code=bank)
        assert issuer is not None
        number = generate_card_number(PREFIX[bank])
        issue_card(platform=p, issuer=issuer, card=number, expiry="3012", holder_name=holder,
                   holder_id_number=id_number, phone=phone, opening_balance=balance)  # fmt: skip
        binding = start_binding(platform=p, user_id=user.id, card_number=number, expiry="12/30")
        notifier = p.notifier
        assert isinstance(notifier, RecordingNotifier)
        otp = notifier.last_code("card_binding", str(binding.id))
        bound = confirm_binding(platform=p, user_id=user.id, binding_id=binding.id, otp=otp)
        self.people[name] = Person(user.id, bound.id, phone)
        return self.people[name]

    def shop(self, name: str, acquirer: str, scene: Scene = Scene.SUPERMARKET) -> Merchant:
        p = self.platform
        inst = get_institution(platform=p, code=acquirer)
        assert inst is not None
        merchant = onboard_merchant(
            platform=p,
            acquirer=inst,
            legal_name=f"{name} Co",
            display_name=name,
            city="Beijing",
            mcc="5411",
            scene=scene,
        )
        terminal = terminal_by_code(platform=p, merchant_id=merchant.id, code="T0001")
        assert terminal is not None
        payload = static_payload(platform=p, merchant=merchant, terminal=terminal)
        self.shops[name] = (merchant, payload)
        return merchant

    def pay(self, who: str, shop: str, amount: int) -> Payment:
        person = self.people[who]
        request = ScanRequest(person.user_id, self.shops[shop][1], person.wallet_card_id,
                              Money.of(amount), PIN)  # fmt: skip
        [answer] = submit_payments(platform=self.platform, requests=[request])
        assert isinstance(answer, Payment), answer
        return answer

    def refund(self, shop: str, payment: Payment, amount: int) -> Payment:
        merchant = self.shops[shop][0]
        request = RefundRequest(merchant.id, payment.id, Money.of(amount))
        [answer] = refund_many(platform=self.platform, requests=[request])
        assert isinstance(answer, Payment), answer
        return answer

    def send(self, who: str, to: str, amount: int) -> None:
        a, b = self.people[who], self.people[to]
        request = P2PRequest(from_wallet_card_id=a.wallet_card_id, amount=Money.of(amount),
                             pin=PIN, to_phone=b.phone)  # fmt: skip
        create_transfer(platform=self.platform, user_id=a.user_id, request=request)
