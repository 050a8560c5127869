"""P2P transfers through the payments service, one by one vs in batches (``create_transfers``).

For each database (a scratch SQLite file and a scratch PostgreSQL database, both fresh and
migrated): 2,000 wallet users sign up with a PIN and bind a debit card (BOC, ICBC or CMB in turn:
most transfers are cross-bank, three linked ledger postings), made through the services. Then the
same 4,000 transfers (random sender and receiver, ¥1–¥200, four in five by phone, one in five by
card number) run twice on the same world: one ``create_transfer`` call each, then
``create_transfers`` in batches of 500. In-process, one thread, no HTTP; the clock is the system's.

    .venv/bin/python benchmarks/p2p_batch_bench.py
    .venv/bin/python benchmarks/p2p_batch_bench.py --users 2000 --transfers 4000 --batch 500 \\
        --db sqlite --db postgresql --json p2p_batch.json

PostgreSQL comes from ``--admin-url`` (default ``$FLASHPAY_TEST_POSTGRES_URL`` or the local
server); the scratch database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from flashpay import db
from flashpay.cards.numbers import CardNumber, generate_card_number
from flashpay.cards.service import issue_card
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.keys import KeyRing
from flashpay.money import Money
from flashpay.notify import RecordingNotifier
from flashpay.payments.transfer_records import P2PRequest, P2PTransfer
from flashpay.payments.transfers import create_transfer, create_transfers
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import register

ADMIN_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench password 1"
PIN = "135790"
BANKS = (("BOC", "621661"), ("ICBC", "622202"), ("CMB", "622588"))
OPENING_BALANCE = 10_000_00  # fen: ¥10,000 a card, far more than a user sends here
AMOUNT_MAX = 200_00  # fen
BY_CARD_EVERY = 5  # one transfer in five names the recipient's card number
SIGNUP_THREADS = 4  # the password's Argon2id releases the GIL
WARMUP_TRANSFERS = 20


@dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    wallet_card_id: int
    phone: str
    number: CardNumber


@dataclass(frozen=True, slots=True)
class Result:
    database: str
    mode: str
    transfers: int
    seconds: float
    per_second: float
    completed: int


def _members(platform: Platform, count: int) -> list[Member]:
    """``count`` wallet users with a PIN and one bound debit card each, through the services."""
    notifier = platform.notifier
    assert isinstance(notifier, RecordingNotifier)
    phones = [f"139{n:08d}" for n in range(count)]
    id_numbers = [f"{110101_19900101_000 + n:017d}X" for n in range(count)]

    def signup(n: int) -> int:
        user = register(platform=platform, phone=phones[n], name=f"User {n}",
                               id_number=id_numbers[n], password=PASSWORD)  # fmt: skip
        set_pin(platform=platform, user_id=user.id, pin=PIN, password=PASSWORD)
        return user.id

    with ThreadPoolExecutor(max_workers=SIGNUP_THREADS) as pool:
        user_ids = list(pool.map(signup, range(count)))
    members = []
    for n, user_id in enumerate(user_ids):
        bank, prefix = BANKS[n % len(BANKS)]
        issuer = get_institution(platform=platform, code=bank)
        assert issuer is not None
        number = generate_card_number(prefix, 16)
        issue_card(platform=platform, issuer=issuer, card=number, expiry="3012",
                   holder_name=f"User {n}", holder_id_number=id_numbers[n], phone=phones[n],
                   opening_balance=OPENING_BALANCE)  # fmt: skip
        binding = start_binding(platform=platform, user_id=user_id,
                                       card_number=number, expiry="12/30")  # fmt: skip
        otp = notifier.last_code("card_binding", str(binding.id))
        card = confirm_binding(platform=platform, user_id=user_id,
                                      binding_id=binding.id, otp=otp)  # fmt: skip
        members.append(Member(user_id, card.id, phones[n], number))
    notifier.messages.clear()
    return members


def _requests(members: list[Member], count: int, seed: int) -> list[tuple[int, P2PRequest]]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        sender, receiver = rng.sample(members, 2)
        to = (
            {"to_card_number": receiver.number.reveal()}
            if n % BY_CARD_EVERY == 0
            else {"to_phone": receiver.phone}
        )
        amount = rng.randint(100, AMOUNT_MAX)
        out.append((sender.user_id, P2PRequest(sender.wallet_card_id, Money.of(amount), PIN, **to)))
    return out


def _one_by_one(platform: Platform, requests: list[tuple[int, P2PRequest]]) -> Counter[str]:
    statuses: Counter[str] = Counter()
    for user_id, request in requests:
        transfer = create_transfer(platform=platform, user_id=user_id, request=request)
        statuses[transfer.status.value] += 1
    return statuses


def _batched(platform: Platform, requests: list[tuple[int, P2PRequest]], size: int) -> Counter[str]:
    statuses: Counter[str] = Counter()
    for start in range(0, len(requests), size):
        for answer in create_transfers(platform=platform, requests=requests[start : start + size]):
            assert isinstance(answer, P2PTransfer), answer
            statuses[answer.status.value] += 1
    return statuses


def _run(label: str, url: str, args: argparse.Namespace) -> list[Result]:
    platform = Platform.open(url, keys=KeyRing.generate(), notifier=RecordingNotifier())
    try:
        load_network(platform=platform, definition=default_definition())
        started = time.perf_counter()
        members = _members(platform, args.users)
        print(f"{label}: {args.users} users in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)  # fmt: skip
        _one_by_one(platform, _requests(members, WARMUP_TRANSFERS, seed=1))
        requests = _requests(members, args.transfers, seed=2)
        results = []
        for mode, work in (
            ("one by one", lambda: _one_by_one(platform, requests)),
            (f"batches of {args.batch}", lambda: _batched(platform, requests, args.batch)),
        ):
            started = time.perf_counter()
            statuses = work()
            seconds = time.perf_counter() - started
            results.append(Result(label, mode, len(requests), round(seconds, 2),
                                  round(len(requests) / seconds, 1),
                                  statuses["completed"]))  # fmt: skip
            print(f"{label}: {mode}: {seconds:.2f} s", file=sys.stderr)
        return results
    finally:
        platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--admin-url", default=os.environ.get("FLASHPAY_TEST_POSTGRES_URL"))
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--transfers", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    results: list[Result] = []
    for label in args.db or ["sqlite", "postgresql"]:
        if label == "sqlite":
            with tempfile.TemporaryDirectory(prefix="flashpay-bench-") as scratch:
                url = f"sqlite:///{scratch}/bench.db"
                db.upgrade(url)
                results += _run(label, url, args)
            continue
        admin_url = args.admin_url or ADMIN_URL_DEFAULT
        name = f"flashpay_bench_p2p_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"{admin_url.rpartition('/')[0]}/{name}"
            db.upgrade(url)
            results += _run(label, url, args)
        finally:
            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"P2P transfers through the service: {args.transfers} among {args.users} users")
    print(f"{'database':<12}{'mode':<18}{'transfers':>10}{'seconds':>10}{'transfers/s':>13}"
          f"{'completed':>11}")  # fmt: skip
    for r in results:
        print(f"{r.database:<12}{r.mode:<18}{r.transfers:>10}{r.seconds:>10.2f}"
              f"{r.per_second:>13.1f}{r.completed:>11}")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
