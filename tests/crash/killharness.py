"""Kill -9 harness (issue 12): idempotent payments through a server whose processes die at random.

One *round*:

1. a fresh, migrated database (PostgreSQL: ``CREATE DATABASE``; SQLite: a file) — or one the
   caller made — and a small network built with the platform's service functions (no back-door
   writes): the default institutions, ``MERCHANTS`` merchants with a static code and an API key,
   one wallet user per client with a PIN, a session token and one bound debit card of known
   opening balance (issuers rotate, so most transfers are cross-bank);
2. ``flashpay serve --workers 2`` on 127.0.0.1, in its own process group;
3. ``clients`` threads (httpx), each a user sending, one after another, P2P transfers
   (``POST /v1/transfers``), static-code payments (``POST /v1/payments/qr``) and payment-code
   collections by a merchant (``POST /v1/merchant/payments``), every one with a unique
   ``Idempotency-Key``. A request that times out, cannot connect, answers 5xx or 409
   ``idempotency_request_in_progress`` is sent again with the *same* key and body, with capped
   exponential backoff, until it has a final answer (2xx, or any other 4xx) or
   ``retry_seconds_max`` has passed;
4. a killer thread: every ``kill_every_seconds`` (uniform), SIGKILL either the whole process group
   (master and workers; then start the server again and wait for ``/v1/health``) or one worker
   (uvicorn's supervisor starts a new one);
5. after ``traffic_seconds`` no new operation starts; those in flight keep retrying (no more kills).
   Then the server is killed one last time, ``flashpay pay recover --older-than 0`` settles what
   it left, the server is started once more to read every balance through the API, and stopped.

Every operation is identifiable in the database without trusting any answer: its amount in fen is
``AMOUNT_BASE_FEN + n`` for the user's n-th operation — unique per paying user across transfers
and payments — and a transfer's memo is its key. The checks (``check_round``):

- *duplicates*: keys with two or more completed (or authorized) effects; *extra records*: keys with
  two or more records of any status (a second run of the route that happened to decline);
- *losses*: answered operations whose effect is missing, or is not the answer's id and status,
  and effects left ``created`` after recovery;
- *phantoms*: records no operation asked for;
- each record against the ledger: a completed record has its chain (``user_data_64`` = its id),
  any other has none, and no chain lacks its record;
- every user's balance from the API equals the ledger account's, and the opening balance moved by
  the completed records; ``flashpay ledger check``, ``flashpay chain append`` + ``chain audit``
  and ``institutions.check_books`` pass.

The lease after which a retry takes over a dead request's claim is 60 s in production; the round
sets ``FLASHPAY_IDEMPOTENCY_LEASE_SECONDS`` (``lease_seconds``) so takeovers happen within a
bounded run. Used by ``tests/crash/test_kill9.py`` (one bounded round per database) and
``benchmarks/kill9_soak.py`` (many rounds, a table).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa

from flashpay import db
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.books import check_books
from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import issue_card
from flashpay.chain.audit import audit
from flashpay.chain.service import ChainLog
from flashpay.clock import SystemClock
from flashpay.institutions.chart import TransferCode
from flashpay.institutions.definition import CardType, default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.keys import KeyRing
from flashpay.ledger.check import check as ledger_check
from flashpay.ledger.service import Ledger
from flashpay.merchants.service import Scene, onboard_merchant, static_payload, terminal_by_code
from flashpay.money import Money
from flashpay.notify import RecordingNotifier
from flashpay.passwords import DEMO_PASSWORD_POLICY
from flashpay.payments.models import p2p_transfers, payments
from flashpay.payments.recovery import recover_payments
from flashpay.payments.transfer_queries import recover_transfers
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.models import wallet_cards
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import register
from flashpay.wallet.sessions import login

POSTGRES_ADMIN_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
LEASE_ENV = "FLASHPAY_IDEMPOTENCY_LEASE_SECONDS"
PASSWORD = "kill9-password-1"
PIN = "135790"
ISSUER_CODES = ("BOC", "ICBC", "CMB")
MERCHANTS = 4
OPENING_FEN = 10_000_000  # ¥100,000 per card: no transfer or payment declines for funds
AMOUNT_BASE_FEN = 100  # the n-th operation of a user moves AMOUNT_BASE_FEN + n fen
OPERATIONS_PER_CLIENT_MAX = 20_000  # keeps amounts far below every per-payment limit
KIND_WEIGHTS = {"transfer": 50, "scan": 30, "collect": 20}
BACKOFF_FIRST_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 1.0
STARTUP_SECONDS_MAX = 60.0
STOP_SECONDS_MAX = 15.0
CLI_SECONDS_MAX = 300.0
FINAL_STATES = frozenset({"completed", "authorized"})


@dataclass(frozen=True, slots=True)
class Options:
    traffic_seconds: float = 25.0
    clients: int = 16
    workers: int = 2
    kill_every_seconds: tuple[float, float] = (2.0, 5.0)
    group_kill_percent: int = 50  # the rest kill one worker
    lease_seconds: int | None = 2  # None: the server's default (60 s today)
    retry_seconds_max: float = 60.0  # per operation, from its first attempt
    request_timeout_seconds: float = 10.0
    seed: int | None = None
    postgres_admin_url: str = POSTGRES_ADMIN_URL_DEFAULT
    # Recovery, the ledger check and the chain audit through the ``flashpay`` commands (a new
    # process each, seconds apiece on a busy 2-core machine) instead of the service functions
    # those commands call.
    cli_tools: bool = False


@dataclass(frozen=True, slots=True)
class Member:
    index: int
    user_id: int
    phone: str
    token: str
    wallet_card_id: int
    ledger_account_id: int


@dataclass(frozen=True, slots=True)
class Shop:
    merchant_id: int
    api_key: str
    static_code: str


@dataclass(frozen=True, slots=True)
class Network:
    members: tuple[Member, ...]
    shops: tuple[Shop, ...]


@dataclass(slots=True)
class Operation:
    key: str
    kind: str  # transfer | scan | collect
    member: int
    amount_fen: int
    attempts: int = 0
    status_code: int | None = None  # the final answer's, None while unanswered
    answer_id: int | None = None
    answer_status: str | None = None
    answer_error: str | None = None
    replayed: bool = False


@dataclass(slots=True)
class Report:
    database: str
    operations: int = 0
    answered: int = 0
    unanswered: int = 0
    retries: int = 0
    replayed: int = 0
    kills: int = 0
    worker_kills: int = 0
    restarts: int = 0
    duplicates: int = 0
    duplicate_transfers: int = 0
    duplicate_payments: int = 0
    extra_records: int = 0
    losses: int = 0
    phantoms: int = 0
    traffic_seconds: float = 0.0
    wall_seconds: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    problems: list[str] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        """The counts, for a table or JSON."""
        return {
            "db": self.database,
            "operations": self.operations,
            "answered": self.answered,
            "unanswered": self.unanswered,
            "retries": self.retries,
            "replayed": self.replayed,
            "kills": self.kills,
            "worker_kills": self.worker_kills,
            "duplicates": self.duplicates,
            "dup_transfers": self.duplicate_transfers,
            "dup_payments": self.duplicate_payments,
            "extra_records": self.extra_records,
            "losses": self.losses,
            "phantoms": self.phantoms,
            "problems": len(self.problems),
            "wall_s": round(self.wall_seconds, 1),
        }


# -- the database -------------------------------------------------------------------------------
def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def fresh_database(
    kind: str, work_dir: Path, *, admin_url: str = POSTGRES_ADMIN_URL_DEFAULT
) -> tuple[str, Callable[[], None]]:
    """A new, migrated database of ``kind`` (``sqlite`` | ``postgresql``) and its dropper."""
    if kind == "sqlite":
        url = f"sqlite:///{work_dir / f'kill9-{uuid.uuid4().hex[:8]}.db'}"
        db.upgrade(url)
        return url, lambda: None
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    name = f"flashpay_kill9_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(admin_url, name)
    db.upgrade(url)

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


def _debit_prefix(issuer_code: str) -> str:
    for issuer in default_definition().issuers:
        if issuer.code == issuer_code:
            for bin_range in issuer.bins:
                if bin_range.card_type is CardType.DEBIT:
                    return bin_range.prefix
    raise LookupError(f"no debit BIN for {issuer_code}")


def build_network(url: str, data_dir: Path, *, users: int) -> Network:
    """The institutions, merchants and users of a round, through the service functions."""
    notifier = RecordingNotifier()
    platform = Platform.open(
        url,
        clock=SystemClock(),
        keys=KeyRing.load(data_dir),
        notifier=notifier,
        password_policy=DEMO_PASSWORD_POLICY,
    )
    try:
        load_network(platform=platform, definition=default_definition())
        acquirer = get_institution(platform=platform, code="UMS")
        assert acquirer is not None
        shops = []
        for n in range(MERCHANTS):
            merchant = onboard_merchant(platform=platform, acquirer=acquirer,
                                        legal_name=f"Kill Nine Shop {n} Co., Ltd.",
                                        display_name=f"Shop {n}", city="Beijing", mcc="5411",
                                        scene=Scene.SUPERMARKET)  # fmt: skip
            terminal = terminal_by_code(platform=platform, merchant_id=merchant.id, code="T0001")
            assert terminal is not None
            key = create_api_key(platform=platform, kind=PrincipalKind.MERCHANT,
                                 principal_id=merchant.id)  # fmt: skip
            code = static_payload(platform=platform, merchant=merchant, terminal=terminal)
            shops.append(Shop(merchant.id, key.key, code))
        members = []
        for n in range(users):
            issuer = get_institution(platform=platform, code=ISSUER_CODES[n % len(ISSUER_CODES)])
            assert issuer is not None
            phone, id_number = f"137{n:08d}", f"{110101_19800101_000 + n:017d}X"
            user = register(platform=platform, phone=phone, name=f"User {n}",
                                   id_number=id_number, password=PASSWORD)  # fmt: skip
            set_pin(platform=platform, user_id=user.id, pin=PIN, password=PASSWORD)
            pan = generate_card_number(_debit_prefix(issuer.code), 16)
            issued = issue_card(platform=platform, issuer=issuer, card=pan, expiry="3012",
                                holder_name=f"User {n}", holder_id_number=id_number, phone=phone,
                                opening_balance=OPENING_FEN)  # fmt: skip
            binding = start_binding(platform=platform, user_id=user.id,
                                           card_number=pan, expiry="12/30")  # fmt: skip
            otp = notifier.last_code("card_binding", str(binding.id))
            card = confirm_binding(platform=platform, user_id=user.id,
                                          binding_id=binding.id, otp=otp)  # fmt: skip
            session = login(platform=platform, phone=phone, password=PASSWORD)
            members.append(Member(n, user.id, phone, session.token, card.id,
                                  issued.card.ledger_account_id))  # fmt: skip
        return Network(tuple(members), tuple(shops))
    finally:
        platform.close()


# -- the server ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == pid and b"spawn_main" in cmdline:
            out.append(int(entry.name))
    return out


class KillableServer:
    """``flashpay serve`` in its own process group, killed with SIGKILL and started again."""

    def __init__(
        self, url: str, data_dir: Path, *, workers: int, lease_seconds: int | None
    ) -> None:
        self.url = url
        self.data_dir = data_dir
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"server-{self.port}.log"
        self.env = dict(os.environ)
        self.env.pop("FLASHPAY_API_HASH_KEY", None)  # the data dir's key file, shared by all
        if lease_seconds is not None:
            self.env[LEASE_ENV] = str(lease_seconds)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS_MAX
        while True:  # the port can stay taken for a moment after a SIGKILL
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "flashpay.cli", "serve", "--db", self.url,
                     "--data-dir", str(self.data_dir), "--port", str(self.port),
                     "--workers", str(self.workers), "--no-access-log"],
                    stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
                )  # fmt: skip
            self.starts += 1
            if self._wait_healthy(deadline):
                return
            self.kill()
            if time.monotonic() > deadline:
                raise RuntimeError(f"flashpay serve did not start; see {self.log_path}")
            time.sleep(0.2)

    def _wait_healthy(self, deadline: float) -> bool:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base_url}/v1/health", timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                time.sleep(0.05)
        return False

    def kill(self) -> None:
        """SIGKILL the master and every worker (the whole process group)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + STOP_SECONDS_MAX
        while time.monotonic() < deadline:  # the workers die with the group; wait until gone
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        self.process = None

    def kill_worker(self, rng: random.Random) -> bool:
        """SIGKILL one worker; the master starts another. False if none was found."""
        if self.process is None:
            return False
        workers = _children(self.process.pid)
        if not workers:
            return False
        try:
            os.kill(rng.choice(workers), signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=STOP_SECONDS_MAX)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
        self.kill()


def _flashpay(*args: str, url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flashpay.cli", *args, "--db", url, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=CLI_SECONDS_MAX,
    )  # fmt: skip


# -- the traffic --------------------------------------------------------------------------------
def _fen_text(fen: int) -> str:
    return Money.of(fen, "CNY").decimal_text()


def _transient(response: httpx.Response) -> bool:
    if response.status_code >= 500:
        return True
    if response.status_code == 409:
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return True
        return bool(code == "idempotency_request_in_progress")
    return False


class _Client:
    """One user's thread: operations one after another, each retried until final."""

    def __init__(self, member: Member, network: Network, base_url: str, options: Options,
                 stop: threading.Event, tag: str, rng: random.Random) -> None:  # fmt: skip
        self.member = member
        self.network = network
        self.options = options
        self.stop = stop
        self.tag = tag
        self.rng = rng
        self.operations: list[Operation] = []
        self.http = httpx.Client(base_url=base_url, timeout=options.request_timeout_seconds)
        self.bearer = {"Authorization": f"Bearer {member.token}"}

    def run(self) -> None:
        kinds, weights = zip(*KIND_WEIGHTS.items(), strict=True)
        try:
            for n in range(1, OPERATIONS_PER_CLIENT_MAX + 1):
                if self.stop.is_set():
                    return
                kind = self.rng.choices(kinds, weights=weights)[0]
                key = f"k9-{self.tag}-u{self.member.index:02d}-{n:05d}"
                operation = Operation(key, kind, self.member.index, AMOUNT_BASE_FEN + n)
                self.operations.append(operation)
                self._perform(operation)
        finally:
            self.http.close()

    def _request(self, operation: Operation) -> tuple[str, dict[str, Any], dict[str, str]] | None:
        m, amount = self.member, _fen_text(operation.amount_fen)
        if operation.kind == "transfer":
            others = [p for p in self.network.members if p.index != m.index]
            to = others[operation.amount_fen % len(others)]
            body = {"from_card_id": m.wallet_card_id, "amount": amount, "pin": PIN,
                    "to_phone": to.phone, "memo": operation.key}  # fmt: skip
            return "/v1/transfers", body, self.bearer
        shop = self.network.shops[operation.amount_fen % len(self.network.shops)]
        if operation.kind == "scan":
            body = {"payload": shop.static_code, "card_id": m.wallet_card_id, "amount": amount,
                    "pin": PIN}  # fmt: skip
            return "/v1/payments/qr", body, self.bearer
        code = self._payment_code(operation)
        if code is None:
            return None
        return (
            "/v1/merchant/payments",
            {"code": code, "amount": amount},
            {"X-Api-Key": shop.api_key},
        )

    def _payment_code(self, operation: Operation) -> str | None:
        """A one-time code from the user's app (not idempotent, not needed to be: a code that is
        never collected moves nothing)."""
        deadline = time.monotonic() + self.options.retry_seconds_max
        delay = BACKOFF_FIRST_SECONDS
        while time.monotonic() < deadline:
            try:
                response = self.http.post(
                    f"/v1/cards/{self.member.wallet_card_id}/payment-code", headers=self.bearer
                )
                if response.status_code == 201:
                    return str(response.json()["numeric"])
                if response.status_code < 500:
                    raise AssertionError(f"payment code: {response.status_code} {response.text}")
            except httpx.TransportError:
                pass
            time.sleep(delay * self.rng.uniform(0.5, 1.5))
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)
        return None

    def _perform(self, operation: Operation) -> None:
        request = self._request(operation)
        if request is None:
            return  # never sent: no effect may exist
        path, body, headers = request
        headers = headers | {"Idempotency-Key": operation.key}
        deadline = time.monotonic() + self.options.retry_seconds_max
        delay = BACKOFF_FIRST_SECONDS
        while True:
            operation.attempts += 1
            try:
                response = self.http.post(path, json=body, headers=headers)
            except httpx.TransportError:
                response = None
            if response is not None and not _transient(response):
                operation.status_code = response.status_code
                operation.replayed = response.headers.get("idempotent-replayed") == "true"
                answer = response.json()
                if 200 <= response.status_code < 300:
                    operation.answer_id = int(answer["id"])
                    operation.answer_status = str(answer["status"])
                else:
                    operation.answer_error = str(answer.get("error", {}).get("code"))
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(delay * self.rng.uniform(0.5, 1.5))
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)


def _killer(server: KillableServer, options: Options, stop: threading.Event,
            rng: random.Random, report: Report) -> None:  # fmt: skip
    low, high = options.kill_every_seconds
    while not stop.wait(rng.uniform(low, high)):
        if rng.randrange(100) < options.group_kill_percent:
            server.kill()
            report.kills += 1
            server.start()
            report.restarts += 1
        elif server.kill_worker(rng):
            report.worker_kills += 1


# -- the round ----------------------------------------------------------------------------------
def run_round(
    options: Options, work_dir: Path, *, database: str = "sqlite", database_url: str | None = None
) -> Report:
    """One round on ``database_url`` (migrated, empty) or on a fresh database of ``database``."""
    started = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if database_url is None:
        database_url, drop = fresh_database(
            database, work_dir, admin_url=options.postgres_admin_url
        )
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    report = Report(kind)
    rng = random.Random(options.seed)
    tag = uuid.uuid4().hex[:6]
    data_dir = work_dir / f"data-{tag}"
    data_dir.mkdir()
    server = KillableServer(
        database_url, data_dir, workers=options.workers, lease_seconds=options.lease_seconds
    )
    try:
        KeyRing.load(data_dir)  # the key file, before the server and the set-up both read it
        booting = threading.Thread(target=server.start, name="first-start")
        booting.start()  # the server boots (seconds of imports) while the network is built
        network = build_network(database_url, data_dir, users=options.clients)
        report.timing["setup"] = time.perf_counter() - started
        booting.join()
        if server.process is None:
            raise RuntimeError(f"flashpay serve did not start; see {server.log_path}")
        report.timing["first_start"] = time.perf_counter() - started - report.timing["setup"]
        stop_traffic, stop_killer = threading.Event(), threading.Event()
        clients = [
            _Client(m, network, server.base_url, options, stop_traffic, tag,
                    random.Random(rng.getrandbits(64)))
            for m in network.members
        ]  # fmt: skip
        threads = [threading.Thread(target=c.run, name=f"client-{c.member.index}") for c in clients]
        killer = threading.Thread(
            target=_killer, args=(server, options, stop_killer, rng, report), name="killer"
        )
        traffic_started = time.perf_counter()
        for thread in threads:
            thread.start()
        killer.start()
        time.sleep(options.traffic_seconds)
        stop_killer.set()
        killer.join()
        stop_traffic.set()  # in-flight operations keep retrying against a live server
        stopped = time.perf_counter()
        for thread in threads:
            thread.join()
        report.traffic_seconds = time.perf_counter() - traffic_started
        report.timing["drain"] = time.perf_counter() - stopped
        finishing = time.perf_counter()
        operations = [op for c in clients for op in c.operations]
        server.kill()
        _recover(report, database_url, data_dir, cli=options.cli_tools)
        server.start()
        balances = _api_balances(server.base_url, network)
        server.kill()
        report.timing["recover_restart"] = time.perf_counter() - finishing
        checking = time.perf_counter()
        check_round(report, database_url, data_dir, network, operations, balances,
                    cli=options.cli_tools)  # fmt: skip
        report.timing["checks"] = time.perf_counter() - checking
    finally:
        server.stop()
        drop()
    report.wall_seconds = time.perf_counter() - started
    return report


def _api_balances(base_url: str, network: Network) -> dict[int, int]:
    out = {}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for m in network.members:
            response = http.get(
                f"/v1/cards/{m.wallet_card_id}/balance",
                headers={"Authorization": f"Bearer {m.token}"},
            )
            response.raise_for_status()
            out[m.index] = Money.parse(response.json()["available"], "CNY").amount_minor
    return out


# -- the checks ---------------------------------------------------------------------------------
def check_round(
    report: Report,
    url: str,
    data_dir: Path,
    network: Network,
    operations: list[Operation],
    api_balances: dict[int, int],
    *,
    cli: bool = False,
) -> None:
    """Fill ``report``'s counts and problems from the database (see the module docstring)."""
    report.operations = len(operations)
    report.kinds = dict(Counter(op.kind for op in operations))
    report.answered = sum(op.status_code is not None for op in operations)
    report.unanswered = report.operations - report.answered
    report.retries = sum(max(op.attempts - 1, 0) for op in operations)
    report.replayed = sum(op.replayed for op in operations)
    problems = report.problems
    for op in operations:
        if op.status_code is not None and not 200 <= op.status_code < 300:
            problems.append(f"{op.key}: final answer {op.status_code} {op.answer_error}")

    by_user = {m.user_id: m for m in network.members}
    by_key = {op.key: op for op in operations}
    by_user_amount = {(op.member, op.amount_fen): op for op in operations}
    platform = Platform.open(url, keys=KeyRing.load(data_dir))
    try:
        with platform.engine.connect() as connection:
            transfer_rows = connection.execute(
                sa.select(
                    p2p_transfers.c.id,
                    p2p_transfers.c.user_id,
                    p2p_transfers.c.amount,
                    p2p_transfers.c.status,
                    p2p_transfers.c.memo,
                    p2p_transfers.c.to_card_id,
                )
            ).all()
            payment_rows = connection.execute(
                sa.select(
                    payments.c.id,
                    payments.c.user_id,
                    payments.c.amount,
                    payments.c.status,
                    payments.c.kind,
                )
            ).all()
            chains = connection.execute(
                sa.text(
                    "SELECT code, user_data_64, count(*) FROM ledger_transfers "
                    "WHERE code IN (:p2p, :purchase, :hold) GROUP BY code, user_data_64"
                ),
                {"p2p": int(TransferCode.P2P), "purchase": int(TransferCode.PURCHASE),
                 "hold": int(TransferCode.PURCHASE_HOLD)},
            ).all()  # fmt: skip
        posted = {(int(code), int(record)) for code, record, _ in chains}
        effects: dict[str, list[tuple[str, int, str]]] = defaultdict(list)  # key -> (table, id, st)
        moved: Counter[int] = Counter()  # member index -> net fen out of the card
        card_of_member: dict[int, list[int]] = {}
        for row in transfer_rows:
            member = by_user.get(int(row.user_id))
            op = by_key.get(str(row.memo))
            if member is None or op is None or op.kind != "transfer" or (
                op.member, op.amount_fen) != (member.index, int(row.amount)):  # fmt: skip
                report.phantoms += 1
                problems.append(f"transfer {row.id} ({row.memo}, {row.amount}) asked by no one")
                continue
            effects[op.key].append(("transfer", int(row.id), str(row.status)))
            has_chain = (int(TransferCode.P2P), int(row.id)) in posted
            if (row.status == "completed") != has_chain:
                problems.append(f"transfer {row.id} {row.status} but chain posted: {has_chain}")
            if row.status == "completed":
                moved[member.index] += int(row.amount)
                card_of_member.setdefault(int(row.to_card_id), []).append(int(row.amount))
        for row in payment_rows:
            member = by_user.get(int(row.user_id)) if row.user_id is not None else None
            op = by_user_amount.get((member.index, int(row.amount))) if member else None
            if member is None or op is None or op.kind not in ("scan", "collect"):
                report.phantoms += 1
                problems.append(f"payment {row.id} ({row.user_id}, {row.amount}) asked by no one")
                continue
            effects[op.key].append(("payment", int(row.id), str(row.status)))
            has_chain = (int(TransferCode.PURCHASE), int(row.id)) in posted
            if (row.status in FINAL_STATES) != has_chain:
                problems.append(f"payment {row.id} {row.status} but chain posted: {has_chain}")
            if row.status in FINAL_STATES:
                moved[member.index] += int(row.amount)
        known = {(t, int(r.id)) for t, rows in (("p", transfer_rows), ("q", payment_rows))
                 for r in rows}  # fmt: skip
        for code, record, _ in chains:
            table = "p" if int(code) == int(TransferCode.P2P) else "q"
            if (table, int(record)) not in known:
                problems.append(f"ledger chain of code {code} for record {record}: no record")

        for op in operations:
            found = effects.get(op.key, [])
            done = [e for e in found if e[2] in FINAL_STATES]
            if len(done) > 1:
                report.duplicates += 1
                if op.kind == "transfer":
                    report.duplicate_transfers += 1
                else:
                    report.duplicate_payments += 1
                problems.append(f"{op.key}: {len(done)} completed effects {done}")
            if len(found) > 1:
                report.extra_records += 1
                if len(done) <= 1:
                    problems.append(f"{op.key}: {len(found)} records {found}")
            if any(e[2] == "created" for e in found):
                report.losses += 1
                problems.append(f"{op.key}: left created after recovery {found}")
            if op.answer_id is not None:
                mine = [e for e in found if e[1] == op.answer_id]
                if not mine or mine[0][2] != op.answer_status:
                    report.losses += 1
                    problems.append(
                        f"{op.key}: answered {op.answer_id} {op.answer_status}, found {found}"
                    )

        # Balances: the API, the ledger account, and the opening balance moved by the records.
        received: Counter[int] = Counter()
        card_ids = _card_ids(platform, network)
        for card_id, amounts in card_of_member.items():
            member_index = card_ids.get(card_id)
            if member_index is None:
                problems.append(f"a transfer went to card {card_id}, no member's")
            else:
                received[member_index] += sum(amounts)
        accounts = {
            a.id: a
            for a in platform.ledger.lookup_accounts([m.ledger_account_id for m in network.members])
        }
        for m in network.members:
            account = accounts[m.ledger_account_id]
            in_ledger = account.credits_posted - account.debits_posted
            expected = OPENING_FEN - moved[m.index] + received[m.index]
            if not api_balances.get(m.index) == in_ledger == expected:
                problems.append(
                    f"user {m.index}: API {api_balances.get(m.index)}, ledger {in_ledger}, "
                    f"records {expected}"
                )
        books = check_books(platform=platform)
        problems.extend(f"books: {b}" for b in books)
    finally:
        platform.close()

    if cli:
        for args in (("ledger", "check"), ("chain", "append"), ("chain", "audit")):
            done = _flashpay(*args, url=url, data_dir=data_dir)
            if done.returncode != 0:
                out = (done.stdout + done.stderr)[-2000:]
                problems.append(f"flashpay {' '.join(args)}: {out}")
        return
    ledger_report = ledger_check(url)  # `flashpay ledger check`
    problems.extend(f"ledger check: {p}" for p in ledger_report.problems)
    with Ledger.open(url) as ledger, ChainLog.open(url) as log:  # `flashpay chain append, audit`
        log.sync_from_ledger(ledger)
        audited = audit(log, ledger)
    problems.extend(f"chain audit: {f}" for f in audited.findings)


def _recover(report: Report, url: str, data_dir: Path, *, cli: bool) -> None:
    """``flashpay pay recover --older-than 0``: settle what the last kill left ``created``."""
    if cli:
        done = _flashpay("pay", "recover", "--older-than", "0", url=url, data_dir=data_dir)
        if done.returncode != 0:
            report.problems.append(f"flashpay pay recover: {done.stderr[-2000:]}")
        return
    platform = Platform.open(url, keys=KeyRing.load(data_dir))
    try:
        recover_transfers(platform=platform, older_than_seconds=0)
        recover_payments(platform=platform, older_than_seconds=0)
    finally:
        platform.close()


def _card_ids(platform: Platform, network: Network) -> dict[int, int]:
    """Issuer card id -> member index (the transfers' ``to_card_id``)."""
    ids = [m.wallet_card_id for m in network.members]
    with platform.engine.connect() as connection:
        rows = connection.execute(
            sa.select(wallet_cards.c.id, wallet_cards.c.card_id).where(wallet_cards.c.id.in_(ids))
        ).all()
    member_of_wallet_card = {m.wallet_card_id: m.index for m in network.members}
    return {int(r.card_id): member_of_wallet_card[int(r.id)] for r in rows}
