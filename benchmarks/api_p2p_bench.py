"""HTTP API throughput and latency against a real ``flashpay serve`` on PostgreSQL.

Starts ``flashpay serve --workers N`` on a fresh PostgreSQL database, drives it with a load
generator — ``wrk`` (C, ``apt-get install wrk``; the default when installed, so the generator takes
little of the 2 cores) or an asyncio httpx client (one keep-alive connection per virtual client) —
and reports requests/s and p50/p99 latency per scenario:

- ``health``: ``GET /v1/health`` — the floor of FastAPI + uvicorn, no database;
- ``auth_get``: ``GET /v1/admin/api-keys?limit=1`` with an API key — authentication (one query)
  plus one keyset page query;
- ``idempotent_post``: ``POST /v1/admin/api-keys/{id}/revoke`` with an API key and an
  ``Idempotency-Key`` — the full write path of a POST: authentication, the idempotency claim
  (INSERT), the write, the stored response (UPDATE). A P2P transfer is this path plus the
  payments service's own work, so this is the ceiling the HTTP layer leaves for transfers;
- ``p2p``: ``POST /v1/transfers`` with a bearer token, the payment PIN and an
  ``Idempotency-Key`` — a cross-bank P2P transfer of ¥0.01 between 64 wallet users (BOC and ICBC
  debit cards), each posting the three linked ledger transfers of §4.

    .venv/bin/python benchmarks/api_p2p_bench.py --workers 2 --concurrency 32 --seconds 10
    .venv/bin/python benchmarks/api_p2p_bench.py --load httpx --requests 3000
    .venv/bin/python benchmarks/api_p2p_bench.py --json results.json --profile profile.txt

The target of issue 4: ≥ 1,000 transfers/s with p99 ≤ 50 ms on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psycopg
import sqlalchemy as sa

from flashpay import db
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.auth.models import api_keys
from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import issue_card
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.notify import RecordingNotifier
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import register
from flashpay.wallet.sessions import login

ADMIN_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_PER_SECOND = 1_000
TARGET_P99_MS = 50.0
STARTUP_SECONDS_MAX = 30.0
WARMUP_REQUESTS = 300
WRK_RATE_MAX = 4_000  # keys prepared per second of a wrk run (revoking one twice would be a 409)
PROFILE_SECONDS = 8
P2P_USERS = 64
P2P_PIN = "135790"
P2P_PASSWORD = "bench password 1"


@dataclass(frozen=True, slots=True)
class Member:
    token: str
    card_id: int
    phone: str


def _p2p_members(url: str, data_dir: Path, count: int) -> list[Member]:
    """``count`` wallet users with a bound debit card each (half BOC, half ICBC), logged in,
    PIN set — made through the services (the same key file as the server's data directory)."""
    notifier = RecordingNotifier()
    platform = Platform.open(url, data_directory=data_dir, notifier=notifier)
    try:
        load_network(platform=platform, definition=default_definition())
        members = []
        for n in range(count):
            bank, prefix = ("BOC", "621661") if n % 2 == 0 else ("ICBC", "622202")
            issuer = get_institution(platform=platform, code=bank)
            assert issuer is not None
            phone, id_number = f"1390000{n:04d}", f"1101011990010{n:04d}X"
            user = register(platform=platform, phone=phone, name=f"User {n}",
                                   id_number=id_number, password=P2P_PASSWORD)  # fmt: skip
            set_pin(platform=platform, user_id=user.id, pin=P2P_PIN, password=P2P_PASSWORD)
            pan = generate_card_number(prefix, 16)
            issue_card(platform=platform, issuer=issuer, card=pan, expiry="3012",
                       holder_name=f"User {n}", holder_id_number=id_number, phone=phone,
                       opening_balance=10_000_000)  # fmt: skip
            binding = start_binding(platform=platform, user_id=user.id,
                                           card_number=pan, expiry="12/30")  # fmt: skip
            otp = notifier.last_code("card_binding", str(binding.id))
            card = confirm_binding(platform=platform, user_id=user.id,
                                          binding_id=binding.id, otp=otp)  # fmt: skip
            session = login(platform=platform, phone=phone, password=P2P_PASSWORD)
            members.append(Member(session.token, card.id, phone))
        return members
    finally:
        platform.close()


@dataclass(frozen=True, slots=True)
class Result:
    scenario: str
    requests: int
    errors: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fresh_database(admin_url: str) -> str:
    name = f"flashpay_bench_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rpartition("/")[0] + "/" + name
    db.upgrade(url)
    return url


def _drop_database(admin_url: str, url: str) -> None:
    name = url.rpartition("/")[2]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start_server(url: str, workers: int, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "flashpay.cli", "serve", "--db", url, "--port", str(port)),
            *("--workers", str(workers), "--no-access-log", "--data-dir", str(data_dir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=(data_dir / "server.log").open("wb"),
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS_MAX
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/v1/ready", timeout=1).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("flashpay serve did not become ready")


Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def _drive(
    base_url: str, request: Request, *, first: int, count: int, concurrency: int
) -> Result:
    latencies: list[float] = []
    errors = 0
    next_index = first
    end = first + count

    async def client_loop() -> None:
        nonlocal errors, next_index
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
            while next_index < end:
                index = next_index
                next_index += 1
                started = time.perf_counter()
                response = await request(client, index)
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 400:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return Result(
        scenario="",
        requests=len(latencies),
        errors=errors,
        seconds=round(seconds, 3),
        per_second=round(len(latencies) / seconds, 1),
        p50_ms=round(quantiles[49] * 1000, 2),
        p99_ms=round(quantiles[98] * 1000, 2),
    )


def _scenarios(admin_key: str, revoke_ids: list[int], members: list[Member]) -> dict[str, Request]:
    headers = {"X-Api-Key": admin_key}

    async def p2p(client: httpx.AsyncClient, index: int) -> httpx.Response:
        sender = members[index % len(members)]
        receiver = members[(index + 1) % len(members)]
        return await client.post(
            "/v1/transfers",
            json={"from_card_id": sender.card_id, "amount": "0.01", "to_phone": receiver.phone,
                  "pin": P2P_PIN},
            headers={"Authorization": f"Bearer {sender.token}",
                     "Idempotency-Key": f"bench-p2p-{index}"},
        )  # fmt: skip

    async def health(client: httpx.AsyncClient, _index: int) -> httpx.Response:
        return await client.get("/v1/health")

    async def auth_get(client: httpx.AsyncClient, _index: int) -> httpx.Response:
        return await client.get("/v1/admin/api-keys", params={"limit": 1}, headers=headers)

    async def idempotent_post(client: httpx.AsyncClient, index: int) -> httpx.Response:
        return await client.post(
            f"/v1/admin/api-keys/{revoke_ids[index]}/revoke",
            headers=headers | {"Idempotency-Key": f"bench-{index}"},
        )

    return {
        "health": health,
        "auth_get": auth_get,
        "idempotent_post": idempotent_post,
        "p2p": p2p,
    }


_WRK_SCRIPT = """
local first_id, threads, admin_key = %d, %d, "%s"
local members = {%s}
local counter = 0
local next_tid = 0
tid = 0  -- a global: setup() sets it per thread with thread:set("tid", n)
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end
function request()
  local index = tid + counter * threads
  counter = counter + 1
  local headers = {["X-Api-Key"] = admin_key}
  if "%s" == "p2p" then
    local sender = members[(index %% #members) + 1]
    local receiver = members[((index + 1) %% #members) + 1]
    headers = {["Authorization"] = "Bearer " .. sender[1],
               ["Idempotency-Key"] = "wrk-p2p-" .. tid .. "-" .. counter,
               ["Content-Type"] = "application/json"}
    local body = string.format(
      '{"from_card_id": %%d, "amount": "0.01", "to_phone": "%%s", "pin": "%s"}',
      sender[2], receiver[3])
    return wrk.format("POST", "/v1/transfers", headers, body)
  elseif "%s" == "idempotent_post" then
    headers["Idempotency-Key"] = "wrk-" .. tid .. "-" .. counter
    return wrk.format("POST", "/v1/admin/api-keys/" .. (first_id + index) .. "/revoke", headers)
  elseif "%s" == "auth_get" then
    return wrk.format("GET", "/v1/admin/api-keys?limit=1", headers)
  end
  return wrk.format("GET", "/v1/health")
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%f %%f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""
WRK_THREADS = 2


def _wrk(
    base_url: str,
    scenario: str,
    *,
    first_id: int,
    admin_key: str,
    seconds: int,
    concurrency: int,
    members: list[Member],
) -> Result:
    """One ``wrk`` run; the Lua script walks distinct key ids and Idempotency-Keys per thread."""
    table = ", ".join(f'{{"{m.token}", {m.card_id}, "{m.phone}"}}' for m in members)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            _WRK_SCRIPT
            % (first_id, WRK_THREADS, admin_key, table, scenario, P2P_PIN, scenario, scenario)
        )
    out = subprocess.run(
        [
            *("wrk", "-t", str(WRK_THREADS), "-c", str(concurrency), "-d", f"{seconds}s"),
            *("-s", script.name, base_url),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    requests, errors, duration_us, p50_us, p99_us = line.split()[1:]
    seconds_run = int(duration_us) / 1e6
    return Result(
        scenario=scenario,
        requests=int(requests),
        errors=int(errors),
        seconds=round(seconds_run, 3),
        per_second=round(int(requests) / seconds_run, 1),
        p50_ms=round(float(p50_us) / 1000, 2),
        p99_ms=round(float(p99_us) / 1000, 2),
    )


def _profile(pid: int, seconds: int, path: Path) -> subprocess.Popen[bytes]:
    """py-spy (``pip install py-spy``) on one worker, flat top-functions report."""
    return subprocess.Popen(
        [
            *(str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid)),
            *("--duration", str(seconds), "--format", "raw", "--output", str(path)),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes (multiprocessing children running ``spawn_main``)."""
    out = subprocess.run(
        ["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False
    ).stdout
    pids = [int(pid) for pid in out.split()]
    return [pid for pid in pids if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _bulk_keys(runtime: Platform, count: int) -> list[int]:
    """``count`` merchant keys to revoke, inserted in one statement (their secrets are unused)."""
    now_ns = runtime.clock.now_ns()
    rows = [
        {
            "key_hash": secrets.token_bytes(32),
            "key_prefix": "fpk_bench",
            "principal_kind": PrincipalKind.MERCHANT.value,
            "principal_id": 2,
            "network_admin": False,
            "created_at_ns": now_ns,
            "revoked_at_ns": None,
        }
        for _ in range(count)
    ]
    with runtime.engine.begin() as connection:
        connection.execute(api_keys.insert(), rows)
        ids = connection.execute(
            sa.select(api_keys.c.id).where(api_keys.c.key_prefix == "fpk_bench").order_by("id")
        )
        return [int(key_id) for key_id in ids.scalars()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("FLASHPAY_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--load", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx"
    )
    parser.add_argument("--seconds", type=int, default=10, help="per scenario (wrk)")
    parser.add_argument("--requests", type=int, default=4000, help="per scenario (httpx)")
    parser.add_argument("--scenario", action="append", help="run only these (repeatable)")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    parser.add_argument("--profile", type=Path, help="py-spy a worker during p2p")
    args = parser.parse_args()
    admin_url = args.admin_url or ADMIN_URL_DEFAULT

    url = _fresh_database(admin_url)
    data_dir = Path(tempfile.mkdtemp(prefix="flashpay-bench-"))
    runtime = Platform.open(url, data_directory=data_dir)
    server: subprocess.Popen[bytes] | None = None
    try:
        admin = create_api_key(
            platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=1, network_admin=True
        )
        planned = args.requests if args.load == "httpx" else WRK_RATE_MAX * args.seconds
        revoke_ids = _bulk_keys(runtime, WARMUP_REQUESTS + planned)
        members = _p2p_members(url, data_dir, P2P_USERS)
        server, base_url = _start_server(url, args.workers, data_dir)
        scenarios = _scenarios(admin.key, revoke_ids, members)
        chosen = args.scenario or list(scenarios)
        results: list[Result] = []
        for name in chosen:
            request = scenarios[name]
            asyncio.run(_drive(base_url, request, first=0, count=WARMUP_REQUESTS, concurrency=8))
            profiler = None
            if args.profile is not None and name == "p2p":
                profiler = _profile(_worker_pids(server.pid)[0], PROFILE_SECONDS, args.profile)
                time.sleep(1)
            if args.load == "wrk":
                result = _wrk(
                    base_url,
                    name,
                    first_id=revoke_ids[WARMUP_REQUESTS],
                    admin_key=admin.key,
                    seconds=args.seconds,
                    concurrency=args.concurrency,
                    members=members,
                )
            else:
                result = asyncio.run(
                    _drive(
                        base_url,
                        request,
                        first=WARMUP_REQUESTS,
                        count=args.requests,
                        concurrency=args.concurrency,
                    )
                )
            results.append(Result(**(asdict(result) | {"scenario": name})))
            if profiler is not None:
                profiler.wait()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        runtime.close()
        _drop_database(admin_url, url)

    print(
        f"HTTP API on PostgreSQL, flashpay serve --workers {args.workers}, "
        f"{args.concurrency} concurrent connections, load generator {args.load}"
    )
    print(f"{'scenario':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for r in results:
        print(
            f"{r.scenario:<18}{r.per_second:>10.1f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}"
        )
    print(f"{'target (issue 4)':<18}{TARGET_PER_SECOND:>10}{'':>10}{TARGET_P99_MS:>10.2f}")
    if args.json is not None:
        payload = {
            "workers": args.workers,
            "concurrency": args.concurrency,
            "load": args.load,
            "target": {"per_second": TARGET_PER_SECOND, "p99_ms": TARGET_P99_MS},
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
