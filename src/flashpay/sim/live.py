"""The demo through the real services: the network, merchants, users and cards, and a day of
traffic, all made with the platform's public service functions (those the HTTP API calls, and
the issuers' batch functions) — no back-door writes. The day (``flashpay.sim.traffic``) is cut
into windows whose requests reach the switch together and go through the batch entry points
(``submit_payments``, ``issue_codes``, ``create_orders``, ``settle_holds``,
``create_transfers``, ``refund_many``; decision 0010): 5,100 users make 100,000+ payments
in about a minute.

What happens, seeded and deterministic in its outcomes (ids and salts are random, counts and
amounts are not):

1. ``load_network`` (the shipped definition); acquirers sign the merchants (``onboard_merchant``);
   users register and set a PIN (on a thread pool: Argon2 releases the GIL); each issuer records
   its cards in batches (``issue_cards``, as a bank loads its card file). Every tenth user binds
   their cards in the app with the one-time code the issuer's phone receives
   (``start_binding``, ``confirm_binding``); the banks enrol the others' cards in bulk
   (``enrol_cards``, decision 0012). The users' password is public (``PASSWORD``), so the
   platform hashes it at the demo's cheap ``DEMO_PASSWORD_POLICY`` (decision 0011); 5,000 users
   with ~9,500 cards are set up in seconds (docs/benchmarks.md).
2. Each purchase goes the way its scene pays: buses, subways and vending machines scan the
   rider's payment code (CPM); canteens, food markets, campuses and convenience stores show a
   static code the user pays (MPM static, small amounts); supermarkets and hospitals make a
   dynamic order at the till (MPM dynamic); parking authorizes on entry and captures on exit
   (two-phase). P2P transfers go by phone number. Some purchases are refunded. A share of the
   static-code payments goes through the HTTP API itself (the real ASGI app over the same
   platform) with a bearer token and an ``Idempotency-Key``, and some of those are sent twice,
   as a client retries: the retry must get the stored answer and pay nothing.
3. Things go wrong as in real life: insufficient funds and limits come from the balances and the
   rules; a few users type a wrong PIN and a few codes are scanned after their 60 seconds
   (injected, and marked as such in the ground-truth file).

Ground truth — what the simulator meant, one JSON line per action, with the injected anomaly
if any — goes to ``ground-truth.jsonl`` beside the summary, apart from the platform's data.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from flashpay import db
from flashpay.app import create_platform_app
from flashpay.books import check_books
from flashpay.cards.numbers import CardNumber, luhn_check_digit
from flashpay.cards.service import ISSUE_BATCH_MAX, CardIssue, IssuedCard, issue_cards
from flashpay.chain.service import ChainLog
from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.errors import InvariantError, invariant
from flashpay.institutions.definition import CardType, default_definition
from flashpay.institutions.service import (
    Institution,
    get_institution,
    load_network,
    net_positions,
)
from flashpay.keys import KeyRing
from flashpay.ledger.check import check
from flashpay.merchants.service import (
    Merchant,
    MerchantError,
    OrderRequest,
    Scene,
    Terminal,
    create_orders,
    onboard_merchant,
    terminal_by_code,
)
from flashpay.merchants.service import static_payload as merchant_static_payload
from flashpay.money import Money
from flashpay.notify import RecordingNotifier
from flashpay.passwords import DEMO_PASSWORD_POLICY
from flashpay.payments import stages
from flashpay.payments.attempts import (
    CollectRequest,
    HoldSettlement,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RefundRequest,
    ScanRequest,
)
from flashpay.payments.codes import issue_codes
from flashpay.payments.errors import PaymentError
from flashpay.payments.holds import settle_holds
from flashpay.payments.queries import get_payment
from flashpay.payments.refunds import refund_many
from flashpay.payments.submit import submit_payments
from flashpay.payments.transfer_records import P2PRequest
from flashpay.payments.transfers import create_transfers
from flashpay.platform import Platform
from flashpay.sim.audit import AuditSummary, Witnesses
from flashpay.sim.network import ACQUIRERS, ISSUERS, SCENES, DemoNetwork, build_network
from flashpay.sim.theme import start_theme_month, theme_summary
from flashpay.sim.traffic import DAY_START_NS, PARKING_HOLD_FEN, Event, day_of_traffic
from flashpay.sim.transit import run_transit_day
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.enrolment import ENROL_BATCH_MAX, enrol_cards
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import register

PASSWORD = "demo-password-1"
PIN = "135790"
WRONG_PIN_PER_MILLE = 5
EXPIRED_CODE_PER_MILLE = 3
REFUND_PERCENT = 1
WINDOW_EVENTS = 3_000  # the requests of a window go to the switch as one batch
WINDOW_SECONDS = 900  # a dynamic order lives 15 minutes: made and paid in one window
HTTP_PAYMENTS_MAX = 250  # keeps the HTTP share's cost bounded at scale
HTTP_PERCENT = 2  # of static-code payments: through the HTTP API with an Idempotency-Key
RETRY_PERCENT = 30  # of those: the client sends the same request again (a retry)
CPM_SCENES = frozenset({"bus", "subway", "vending"})
DYNAMIC_SCENES = frozenset({"supermarket", "hospital"})
ISSUER_CODES = ("BOC", "ICBC", "CCB", "CMB", "ABC")  # sim.network.ISSUERS, in order
ACQUIRER_CODES = ("UMS", "LKL", "BOCMS")  # sim.network.ACQUIRERS, in order
MCC = {scene.name: scene.mcc for scene in SCENES}
SIGNUP_THREADS = 2  # one per core: Argon2 releases the GIL, the rest of a sign-up does not
APP_BINDERS_EVERY = 10  # every tenth user binds their cards in the app with the one-time code


@dataclass(frozen=True, slots=True)
class LiveOptions:
    seed: int = 7
    users: int = 5_100
    merchants: int = 300
    days: int = 1
    promotions: bool = True  # the theme month's campaigns (off: no promotion stage at all)
    transit: bool = True  # a day of subway and bus rides after the payments (sim.transit)


@dataclass
class LiveResult:
    summary: dict[str, Any]
    timing: dict[str, float] = field(default_factory=dict)
    audit: AuditSummary | None = None


@dataclass
class _World:
    platform: Platform
    clock: FakeClock
    notifier: RecordingNotifier
    merchants: list[Merchant]
    static_codes: dict[int, str]
    terminals: dict[int, Terminal]  # sim merchant index -> its till
    user_ids: list[int]
    phones: list[str]
    wallet_cards: dict[int, int]  # sim card index -> wallet card id
    card_users: dict[int, int]  # sim card index -> sim user index


class _App:
    """The HTTP API in-process (the real ASGI app over the same platform and clock): the app's
    way of paying, with bearer tokens and Idempotency-Keys, for a share of the static-code
    payments — and the client retries that repeat one of them with the same key."""

    def __init__(self, platform: Platform) -> None:
        self.log = ChainLog.open(platform.database_url, clock=platform.clock)
        app = create_platform_app(
            platform, request_hash_key=b"flashpay-demo-request-hash-key-1", chain_log=self.log
        )
        # The real ASGI app driven by httpx on a private event loop (no server, no sockets).
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://flashpay.demo"
        )
        self.tokens: dict[int, str] = {}
        self.requests = 0
        self.retries = 0
        self.replayed = 0

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        return self._loop.run_until_complete(self._client.post(path, json=body, headers=headers))

    def token(self, user: int, phone: str) -> str:
        if user not in self.tokens:
            response = self._post("/v1/sessions", {"phone": phone, "password": PASSWORD}, {})
            response.raise_for_status()
            self.tokens[user] = str(response.json()["token"])
        return self.tokens[user]

    def pay(self, token: str, body: dict[str, Any], key: str, retry: bool) -> str:
        """POST /v1/payments/qr (and once more if ``retry``); the payment's id."""
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
        first = self._post("/v1/payments/qr", body, headers)
        first.raise_for_status()
        self.requests += 1
        if retry:
            again = self._post("/v1/payments/qr", body, headers)
            self.retries += 1
            if again.content == first.content and again.headers.get("idempotent-replayed"):
                self.replayed += 1
        return str(first.json()["id"])

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()
        self.log.close()


def _card_number(rng: random.Random, prefix: str) -> CardNumber:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(15 - len(prefix)))
    return CardNumber(body + luhn_check_digit(body))


def _prefixes() -> dict[tuple[str, CardType], str]:
    out: dict[tuple[str, CardType], str] = {}
    for issuer in default_definition().issuers:
        for bin_range in issuer.bins:
            out.setdefault((issuer.code, bin_range.card_type), bin_range.prefix)
    return out


def _issue(
    platform: Platform,
    rng: random.Random,
    network: DemoNetwork,
    issuers: list[Institution | None],
    id_numbers: list[str],
    phones: list[str],
) -> tuple[list[CardNumber], dict[int, IssuedCard]]:
    """Each issuer records its cards in batches (as a bank loads its card file): the card
    numbers (drawn from ``rng`` in card order) and the issued cards, by sim card index."""
    prefixes = _prefixes()
    numbers: list[CardNumber] = []
    files: dict[int, list[tuple[int, CardIssue]]] = defaultdict(list)
    for card in network.cards:
        issuer = issuers[card.issuer]
        if issuer is None:
            raise InvariantError("the default network has every issuer the simulator uses")
        # An issuer without a credit BIN range (ABC here) issues the card as a debit card.
        credit = card.credit and (issuer.code, CardType.CREDIT) in prefixes
        number = _card_number(
            rng, prefixes[(issuer.code, CardType.CREDIT if credit else CardType.DEBIT)]
        )
        numbers.append(number)
        files[card.issuer].append(
            (
                card.index,
                CardIssue(
                    card=number,
                    expiry="2812",
                    holder_name=f"User {card.user}",
                    holder_id_number=id_numbers[card.user],
                    phone=phones[card.user],
                    credit_limit=card.opening_fen if credit else 0,
                    opening_balance=0 if credit else card.opening_fen,
                ),
            )
        )
    issued: dict[int, IssuedCard] = {}
    for issuer_index, card_file in sorted(files.items()):
        issuer = issuers[issuer_index]
        if issuer is None:
            raise InvariantError("the default network has every issuer the simulator uses")
        for start in range(0, len(card_file), ISSUE_BATCH_MAX):
            batch = card_file[start : start + ISSUE_BATCH_MAX]
            done = issue_cards(platform=platform, issuer=issuer, requests=[r for _, r in batch])
            issued.update((index, card) for (index, _), card in zip(batch, done, strict=True))
    return numbers, issued


def _build(
    platform: Platform,
    clock: FakeClock,
    notifier: RecordingNotifier,
    network: DemoNetwork,
    seed: int,
) -> _World:
    rng = random.Random(seed * 7919)
    load_network(platform=platform, definition=default_definition())
    acquirers = [get_institution(platform=platform, code=c) for c in ACQUIRER_CODES]
    issuers = [get_institution(platform=platform, code=c) for c in ISSUER_CODES]
    invariant(len(ACQUIRERS) == len(acquirers), "one acquirer per simulated acquirer")
    invariant(len(ISSUERS) == len(issuers), "one issuer per simulated issuer")
    merchants: list[Merchant] = []
    static_codes: dict[int, str] = {}
    tills: dict[int, Terminal] = {}
    for m in network.merchants:
        acquirer = acquirers[m.acquirer]
        if acquirer is None:
            raise InvariantError("the default network has every acquirer the simulator uses")
        merchant = onboard_merchant(
            platform=platform,
            acquirer=acquirer,
            legal_name=f"{m.name} Co., Ltd.",
            display_name=m.name[:25],
            city=m.city,
            mcc=MCC[m.scene],
            scene=Scene(m.scene),
        )
        merchants.append(merchant)
        terminal = terminal_by_code(platform=platform, merchant_id=merchant.id, code="T0001")
        if terminal is None:
            raise InvariantError("a signed merchant has its first terminal T0001")
        tills[m.index] = terminal
        static_codes[m.index] = merchant_static_payload(
            platform=platform, merchant=merchant, terminal=terminal
        )
    phones = [f"139{n:08d}" for n in range(network.users)]
    id_numbers = [f"{110101_19900101_000 + n:017d}X" for n in range(network.users)]

    def signup(n: int) -> int:
        user = register(
            platform=platform,
            phone=phones[n],
            name=f"User {n}",
            id_number=id_numbers[n],
            password=PASSWORD,
        )
        set_pin(platform=platform, user_id=user.id, pin=PIN, password=PASSWORD)
        return user.id

    # The slow part of a sign-up is Argon2 (the PIN's hash above all), which releases the GIL:
    # sign-ups run on a pool while this thread records the cards and binds the app users' cards
    # as soon as each user exists (Python and SQL). Bindings stay on this thread, in card order,
    # so the run is deterministic.
    wallet_cards: dict[int, int] = {}
    with ThreadPoolExecutor(max_workers=SIGNUP_THREADS) as pool:
        signed_up = [pool.submit(signup, n) for n in range(network.users)]
        numbers, issued = _issue(platform, rng, network, issuers, id_numbers, phones)
        for card in network.cards:
            if card.user % APP_BINDERS_EVERY:
                continue  # enrolled by the bank below
            user_id = signed_up[card.user].result()
            credit = issued[card.index].card.card_type is CardType.CREDIT
            binding = start_binding(
                platform=platform,
                user_id=user_id,
                card_number=numbers[card.index],
                expiry="12/28",
                cvv=issued[card.index].cvv if credit else None,
            )
            otp = notifier.last_code("card_binding", str(binding.id))
            bound = confirm_binding(
                platform=platform, user_id=user_id, binding_id=binding.id, otp=otp
            )
            wallet_cards[card.index] = bound.id
        user_ids = [future.result() for future in signed_up]
    # The other users asked their banks to put their cards in the wallet: each bank enrols its
    # cardholders' cards in bulk (issuer enrolment, decision 0012), in card order.
    by_issuer: dict[int, list[int]] = defaultdict(list)
    for card in network.cards:
        if card.user % APP_BINDERS_EVERY:
            by_issuer[card.issuer].append(card.index)
    for issuer_index, indices in sorted(by_issuer.items()):
        issuer = issuers[issuer_index]
        if issuer is None:
            raise InvariantError("the default network has every issuer the simulator uses")
        for start in range(0, len(indices), ENROL_BATCH_MAX):
            batch = indices[start : start + ENROL_BATCH_MAX]
            enrolled = enrol_cards(
                platform=platform,
                issuer=issuer,
                card_ids=[issued[index].card.id for index in batch],
            )
            wallet_cards.update(zip(batch, (w.id for w in enrolled), strict=True))
    card_users = {card.index: card.user for card in network.cards}
    notifier.messages.clear()
    return _World(
        platform,
        clock,
        notifier,
        merchants,
        static_codes,
        tills,
        user_ids,
        phones,
        wallet_cards,
        card_users,
    )


@dataclass
class _Run:
    world: _World
    rng: random.Random
    truth: list[dict[str, Any]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    by_mode: Counter[str] = field(default_factory=Counter)
    volume_by_scene: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    count_by_scene: Counter[str] = field(default_factory=Counter)
    volume_by_issuer: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    holds: dict[tuple[int, int], int] = field(default_factory=dict)  # (card, merchant) -> id
    completed: list[tuple[int, int, int]] = field(default_factory=list)  # payment, merchant, fen
    refunds: int = 0
    refunded_fen: int = 0
    transfers: Counter[str] = field(default_factory=Counter)
    app: _App | None = None
    issuer_of: dict[int, str] = field(default_factory=dict)  # sim card index -> issuer code
    bills: int = 0  # dynamic orders made so far (their bill numbers)
    http_planned: int = 0
    stale: list[tuple[int, Event, CollectRequest]] = field(default_factory=list)

    def paid(self, event: Event, amount: int) -> None:
        scene = self.world.merchants[event.merchant].scene.value
        self.count_by_scene[scene] += 1
        self.volume_by_scene[scene] += amount
        self.volume_by_issuer[self.issuer_of[event.card]] += amount

    def record(self, event: Event, mode: str, payment: Payment, anomaly: str | None) -> None:
        status = payment.status.value
        self.outcomes[status] += 1
        self.by_mode[mode] += 1
        if payment.decline_reason is not None:
            self.reasons[payment.decline_reason.value] += 1
        if payment.status is PaymentStatus.COMPLETED:  # a hold counts once captured
            self.paid(event, payment.amount)
        self.truth.append(
            {
                "at_s": event.at_s,
                "kind": event.kind,
                "mode": mode,
                "card": event.card,
                "merchant": event.merchant,
                "amount_fen": event.amount_fen,
                "anomaly": anomaly,
                "outcome": status,
                "reason": payment.decline_reason and payment.decline_reason.value,
            }
        )


def _actors(run: _Run, event: Event) -> tuple[int, int, Merchant]:
    """The paying user's id and wallet card, and the merchant of ``event``."""
    w = run.world
    user = w.card_users[event.card]
    return w.user_ids[user], w.wallet_cards[event.card], w.merchants[event.merchant]


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one purchase is paid: its mode, the PIN typed (if any) and the injected anomaly."""

    event: Event
    mode: str
    pin: str | None = None
    anomaly: str | None = None
    numeric: bool = False  # a payment code scanned as its 19 digits


def _windows(events: list[Event]) -> Iterator[list[Event]]:
    """The day cut into windows of at most ``WINDOW_EVENTS`` events and ``WINDOW_SECONDS``."""
    window: list[Event] = []
    for event in events:
        if window and (
            len(window) >= WINDOW_EVENTS or event.at_s - window[0].at_s >= WINDOW_SECONDS
        ):
            yield window
            window = []
        window.append(event)
    if window:
        yield window


def _late_codes(run: _Run) -> None:
    """The day's last expired-code anomalies, scanned 61 seconds after the last window."""
    if not run.stale:
        return
    run.world.clock.advance(61)
    requests = [request for _, _, request in run.stale]
    answers = submit_payments(platform=run.world.platform, requests=requests)
    for (_, event, _), payment in zip(run.stale, answers, strict=True):
        if isinstance(payment, PaymentError):
            raise InvariantError("a simulated payment request was refused") from payment
        run.record(event, "cpm", payment, "expired_code")
    run.stale.clear()


def _plan(run: _Run, event: Event) -> _Plan:
    scene = run.world.merchants[event.merchant].scene.value
    if scene in CPM_SCENES or (scene not in DYNAMIC_SCENES and event.amount_fen > 20_000):
        expired = run.rng.randrange(1000) < EXPIRED_CODE_PER_MILLE
        return _Plan(event, "cpm", anomaly="expired_code" if expired else None,
                     numeric=run.rng.randrange(4) == 0)  # fmt: skip
    pin = PIN if event.amount_fen > 100_000 else None
    anomaly = None
    if pin is not None and run.rng.randrange(1000) < WRONG_PIN_PER_MILLE * 20:
        anomaly, pin = "wrong_pin", "975310"
    if scene in DYNAMIC_SCENES:
        return _Plan(event, "mpm_dynamic", pin, anomaly)
    if (
        run.app is not None
        and run.rng.randrange(100) < HTTP_PERCENT
        and run.http_planned < HTTP_PAYMENTS_MAX
    ):
        run.http_planned += 1
        return _Plan(event, "mpm_static_http", pin, anomaly)
    return _Plan(event, "mpm_static", pin, anomaly)


def _window(run: _Run, events: list[Event]) -> None:
    """One window of traffic: the requests that reach the switch together (the same clock),
    sent as batches through the services — the codes the riders' phones show, the orders the
    tills make, then every payment of the window in one ``submit_payments`` — then the parking
    exits, the P2P transfers and the payments that go through the HTTP API one by one."""
    w = run.world
    platform = w.platform
    plans = [_plan(run, e) for e in events if e.kind == "purchase"]
    entries = [e for e in events if e.kind == "parking_entry"]
    shown = [p for p in plans if p.mode == "cpm"]
    issued = issue_codes(
        platform=platform,
        requests=[_actors(run, x)[:2] for x in [p.event for p in shown] + entries],
    )
    code_of: dict[int, str] = {}
    for n, (plan, code) in enumerate(zip(shown, issued, strict=False)):
        if isinstance(code, PaymentError):
            raise InvariantError("a simulated payment code was refused") from code
        code_of[n] = code.numeric if plan.numeric else code.qr_payload
    dynamic = [p for p in plans if p.mode == "mpm_dynamic"]
    orders = create_orders(
        platform=platform,
        requests=[
            OrderRequest(
                w.merchants[p.event.merchant],
                w.terminals[p.event.merchant],
                p.event.amount_fen,
                bill_number=f"B{p.event.at_s}-{run.bills + n}",
            )
            for n, p in enumerate(dynamic)
        ],
    )
    run.bills += len(dynamic)
    payload_of = {}
    for plan, made in zip(dynamic, orders, strict=True):
        if isinstance(made, MerchantError):
            raise InvariantError("a simulated order was refused") from made
        payload_of[id(plan)] = made[1]
    now_s = (w.clock.now_ns() - DAY_START_NS) // NS_PER_SECOND
    requests: list[PaymentRequest] = []
    asked: list[tuple[Event, str, str | None]] = []
    shown_index = 0
    for plan in plans:
        user_id, wallet_card, merchant = _actors(run, plan.event)
        amount = plan.event.amount_fen
        request: PaymentRequest
        if plan.mode == "cpm":
            request = CollectRequest(merchant.id, code_of[shown_index], Money.of(amount))
            shown_index += 1
            if plan.anomaly == "expired_code":  # shown now, scanned after its 60 seconds
                run.stale.append((now_s + 61, plan.event, request))
                continue
        elif plan.mode == "mpm_dynamic":
            request = ScanRequest(user_id, payload_of[id(plan)], wallet_card, pin=plan.pin)
        elif plan.mode == "mpm_static":
            request = ScanRequest(user_id, w.static_codes[plan.event.merchant], wallet_card,
                                     Money.of(amount), plan.pin)  # fmt: skip
        else:
            continue  # through the HTTP API, below
        requests.append(request)
        asked.append((plan.event, plan.mode, plan.anomaly))
    for n, entry in enumerate(entries):
        code = issued[len(shown) + n]
        if isinstance(code, PaymentError):
            raise InvariantError("a simulated payment code was refused") from code
        merchant = w.merchants[entry.merchant]
        requests.append(CollectRequest(merchant.id, code.qr_payload, Money.of(PARKING_HOLD_FEN),
                                          capture=False, hold_seconds=4 * 3600))  # fmt: skip
        asked.append((entry, "parking_hold", None))
    while run.stale and run.stale[0][0] <= now_s:
        _, event, request = run.stale.pop(0)
        requests.append(request)
        asked.append((event, "cpm", "expired_code"))
    answers = submit_payments(platform=platform, requests=requests)
    for (event, mode, anomaly), payment in zip(asked, answers, strict=True):
        if isinstance(payment, PaymentError):
            raise InvariantError("a simulated payment request was refused") from payment
        run.record(event, mode, payment, anomaly)
        if mode == "parking_hold":
            if payment.status is PaymentStatus.AUTHORIZED:
                run.holds[(event.card, event.merchant)] = payment.id
        elif payment.status is PaymentStatus.COMPLETED:
            run.completed.append((payment.id, w.merchants[event.merchant].id, payment.amount))
    for plan in plans:
        if plan.mode == "mpm_static_http":
            _pay_over_http(run, plan)
    _parking_exits(run, [e for e in events if e.kind == "parking_exit"])
    _transfers(run, [e for e in events if e.kind == "p2p"])


def _pay_over_http(run: _Run, plan: _Plan) -> None:
    if run.app is None:
        raise InvariantError("an HTTP payment runs with the app up")
    w = run.world
    event = plan.event
    user = w.card_users[event.card]
    user_id, wallet_card, merchant = _actors(run, event)
    body: dict[str, Any] = {
        "payload": w.static_codes[event.merchant],
        "card_id": wallet_card,
        "amount": Money.of(event.amount_fen).decimal_text(),
    }
    if plan.pin is not None:
        body["pin"] = plan.pin
    payment_id = run.app.pay(
        run.app.token(user, w.phones[user]),
        body,
        key=f"demo-{len(run.truth)}",
        retry=run.rng.randrange(100) < RETRY_PERCENT,
    )
    payment = get_payment(platform=w.platform, payment_id=int(payment_id), user_id=user_id)
    if payment is None:
        raise InvariantError(f"payment {payment_id} the API answered is not recorded")
    run.record(event, plan.mode, payment, plan.anomaly)
    if payment.status is PaymentStatus.COMPLETED:
        run.completed.append((payment.id, merchant.id, payment.amount))


def _parking_exits(run: _Run, exits: list[Event]) -> None:
    """The cars leaving in this window: each car park captures what the stay cost (at most
    the hold), all in one ``settle_holds``."""
    settlements, leaving = [], []
    for event in exits:
        held = run.holds.pop((event.card, event.merchant), None)
        if held is not None:
            merchant = run.world.merchants[event.merchant]
            amount = min(event.amount_fen, PARKING_HOLD_FEN)
            settlements.append(HoldSettlement(merchant.id, held, Money.of(amount)))
            leaving.append(event)
    answers = settle_holds(platform=run.world.platform, requests=settlements)
    for event, answer in zip(leaving, answers, strict=True):
        if isinstance(answer, PaymentError):
            continue  # the hold expired first
        run.outcomes["parking_captured"] += 1
        run.paid(event, answer.captured)


def _transfers(run: _Run, events: list[Event]) -> None:
    """The window's P2P transfers, by phone number, in one ``create_transfers`` batch."""
    w = run.world
    sent = [e for e in events if w.card_users[e.card] != w.card_users[e.receiver]]
    requests = [
        (
            w.user_ids[w.card_users[e.card]],
            P2PRequest(
                from_wallet_card_id=w.wallet_cards[e.card],
                amount=Money.of(e.amount_fen),
                pin=PIN,
                to_phone=w.phones[w.card_users[e.receiver]],
            ),
        )
        for e in sent
    ]
    answers = create_transfers(platform=w.platform, requests=requests)
    for event, transfer in zip(sent, answers, strict=True):
        if isinstance(transfer, PaymentError):
            raise InvariantError("a simulated transfer was refused") from transfer
        reason = transfer.decline_reason
        run.transfers[reason.value if reason else "completed"] += 1
        run.truth.append(
            {
                "at_s": event.at_s,
                "kind": "p2p",
                "mode": "p2p",
                "card": event.card,
                "receiver_card": event.receiver,
                "amount_fen": event.amount_fen,
                "anomaly": None,
                "outcome": transfer.status.value,
                "reason": reason and reason.value,
            }
        )


def _refunds(run: _Run) -> None:
    """A few purchases come back (a return at the supermarket, a cancelled appointment): the
    day's returns go to the switch as one batch."""
    requests = []
    for payment_id, merchant_id, amount in run.completed:
        if run.rng.randrange(100) >= REFUND_PERCENT:
            continue
        refund = amount if run.rng.randrange(2) else max(1, amount // 2)
        requests.append(RefundRequest(merchant_id, payment_id, Money.of(refund)))
    for start in range(0, len(requests), WINDOW_EVENTS):
        batch = requests[start : start + WINDOW_EVENTS]
        for request, answer in zip(
            batch, refund_many(platform=run.world.platform, requests=batch), strict=True
        ):
            if isinstance(answer, PaymentError):
                raise InvariantError("a simulated refund was refused") from answer
            run.refunds += 1
            run.refunded_fen += request.amount.amount_minor


def open_demo_platform(
    url: str, data_directory: Path
) -> tuple[Platform, FakeClock, RecordingNotifier]:
    """The demo's platform on a migrated database: a fake clock at the start of the simulated
    day, a notifier that keeps the one-time codes it sends, and the demo's password policy."""
    db.upgrade(url)
    clock = FakeClock(DAY_START_NS)
    notifier = RecordingNotifier()
    platform = Platform.open(
        url,
        clock=clock,
        keys=KeyRing.load(data_directory),
        notifier=notifier,
        password_policy=DEMO_PASSWORD_POLICY,
    )
    return platform, clock, notifier


def run_live(
    url: str,
    options: LiveOptions,
    *,
    data_directory: Path,
    progress: Callable[[int, int], None] | None = None,
    audit: bool = True,
) -> LiveResult:
    """Build the network and run the traffic through the services on an empty database."""
    timing: dict[str, float] = {}
    started = time.perf_counter()
    platform, clock, notifier = open_demo_platform(url, data_directory)
    # The members' witnesses boot while the day runs (see Witnesses).
    witnesses = Witnesses(url, data_directory / "chain") if audit else None
    try:
        network = build_network(seed=options.seed, users=options.users, merchants=options.merchants)
        world = _build(platform, clock, notifier, network, options.seed)
        theme = (
            start_theme_month(platform, world.merchants, world.phones, DAY_START_NS)
            if options.promotions
            else []
        )
        timing["setup_seconds"] = time.perf_counter() - started
        rng = random.Random(options.seed)
        events = day_of_traffic(rng, network, options.days)
        run = _Run(world, random.Random(options.seed + 1), app=_App(platform))
        run.issuer_of = {card.index: ISSUER_CODES[card.issuer] for card in network.cards}
        traffic_started = time.perf_counter()
        done = 0
        # Without promotions the pipeline runs with no stage at all: the baseline of the
        # side-by-side throughput (docs/benchmarks.md, issue 15).
        with nullcontext() if options.promotions else stages.only():
            for window in _windows(events):
                # The window's requests reach the switch together, at its last event's time.
                clock.set_ns(max(clock.now_ns(), DAY_START_NS + window[-1].at_s * NS_PER_SECOND))
                _window(run, window)
                done += len(window)
                if progress is not None:
                    progress(done, len(events))
            _late_codes(run)
            _refunds(run)
        if run.app is not None:
            run.app.close()
        clock.set_ns(clock.now_ns() + 5 * 3600 * NS_PER_SECOND)  # unreleased holds expire
        platform.ledger.expire_pending_transfers()
        timing["traffic_seconds"] = time.perf_counter() - traffic_started
        transit: dict[str, Any] | None = None
        if options.transit:
            transit_started = time.perf_counter()
            phones = dict(zip(world.user_ids, world.phones, strict=True))
            transit = run_transit_day(
                platform, clock, world.merchants, sorted(world.wallet_cards.values()),
                seed=options.seed, pin=PIN, phones=phones,
            )  # fmt: skip
            timing["transit_seconds"] = time.perf_counter() - transit_started
        # The ledger check recomputes every balance from every transfer: it runs on the other
        # core, in its own process (a read-only reader of the database), while this one appends
        # the day to the audit log and has it co-signed.
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as checker:
            checking = checker.submit(check, url)
            books = check_books(platform=platform)
            positions = net_positions(platform=platform)
            audit_summary = witnesses.cosign(platform.ledger) if witnesses is not None else None
            report = checking.result()
        promotions = theme_summary(platform, theme)
        if audit_summary is not None:
            timing["audit_seconds"] = audit_summary.seconds
    finally:
        if witnesses is not None:
            witnesses.close()
        platform.close()
    (data_directory / "ground-truth.jsonl").write_text(
        "".join(json.dumps(row, sort_keys=True) + "\n" for row in run.truth)
    )
    attempted = sum(run.by_mode.values())
    posted = attempted + sum(run.transfers.values())  # QR payments and P2P transfers
    timing["total_seconds"] = time.perf_counter() - started
    timing["payments_per_second"] = posted / max(timing["traffic_seconds"], 1e-9)
    summary = {
        "seed": options.seed,
        "users": options.users,
        "cards": len(network.cards),
        "merchants": options.merchants,
        "payments_and_transfers": posted,
        "payments": {
            "attempted": attempted,
            "by_mode": dict(sorted(run.by_mode.items())),
            "outcomes": dict(sorted(run.outcomes.items())),
            "decline_reasons": dict(sorted(run.reasons.items())),
        },
        "scenes": {
            s: {"count": run.count_by_scene[s], "volume_fen": run.volume_by_scene[s]}
            for s in sorted(run.volume_by_scene)
        },
        "paid_by_issuer_fen": dict(sorted(run.volume_by_issuer.items())),
        "net_positions": [
            {
                "institution": p.code,
                "name": p.name,
                "role": p.kind.value,
                "net_fen": p.net,
                "income_fen": p.income,
            }
            for p in positions
        ],
        "transfers": dict(sorted(run.transfers.items())),
        "refunds": {"count": run.refunds, "volume_fen": run.refunded_fen},
        "http": {
            "payments": run.app.requests if run.app else 0,
            "retries_with_the_same_key": run.app.retries if run.app else 0,
            "retries_replayed_identically": run.app.replayed if run.app else 0,
        },
        "anomalies_injected": dict(
            sorted(Counter(t["anomaly"] for t in run.truth if t["anomaly"]).items())
        ),
        "ledger_check": {"ok": report.ok, "problems": [str(p) for p in report.problems[:20]]},
        "books_balance": not books,
        "book_problems": books[:20],
        "promotions": promotions,
        "transit": transit,
    }
    return LiveResult(summary, timing, audit_summary)
