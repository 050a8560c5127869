"""QR payments through the HTTP API on PostgreSQL: half scan-to-pay (MPM), half show-to-pay (CPM).

Starts ``flashpay serve --workers N`` on a fresh PostgreSQL database with the default network,
50 merchants across the ten scenes (one hot merchant takes 20 % of the traffic), 64 wallet users
with a debit card each, and — right before the run, because a code lives 60 s — one payment code
per CPM request. Then ``wrk`` alternates:

- MPM: ``POST /v1/payments/qr`` with the user's bearer token, a merchant's static code and an
  amount of ¥1.00–¥4.99 (password-free: below the user's threshold);
- CPM: ``POST /v1/merchant/payments`` with the merchant's API key, a fresh payment code and an
  amount of ¥1.00–¥4.99;

every request with its own ``Idempotency-Key``. Each payment posts the six linked transfers of §4.

    .venv/bin/python benchmarks/api_qr_bench.py --seconds 10 --concurrency 8 --json qr.json

The target of issue 5: ≥ 1,000 payments/s with p99 ≤ 50 ms on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from api_p2p_bench import (
    ADMIN_URL_DEFAULT,
    P2P_USERS,
    Member,
    Result,
    _drop_database,
    _fresh_database,
    _p2p_members,
    _profile,
    _start_server,
    _worker_pids,
)
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.institutions.service import get_institution
from flashpay.merchants.service import Scene, onboard_merchant, static_payload, terminal_by_code
from flashpay.payments.codes import issue_code
from flashpay.platform import Platform
from flashpay.wallet.sessions import authenticate

MERCHANTS = 50
HOT_SHARE = 5  # every 5th request goes to merchant 0: 20 %
CODES_PER_SECOND = 400  # codes prepared per second of run (more than the server can take)
TARGET_PER_SECOND = 1_000
TARGET_P99_MS = 50.0

_LUA = r"""
local function rows(name)
  local out = {}
  for line in io.lines("@@DIR@@/" .. name) do
    local fields = {}
    for field in string.gmatch(line, "[^\t]+") do fields[#fields + 1] = field end
    out[#out + 1] = fields
  end
  return out
end
local members = rows("members.tsv")
local shops = rows("shops.tsv")
local codes = rows("codes.tsv")
local threads = 2
local counter = 0
local next_tid = 0
tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end
function request()
  local index = tid + counter * threads
  counter = counter + 1
  local shop = shops[1]
  if index % @@HOT@@ ~= 0 then shop = shops[(index % (#shops - 1)) + 2] end
  local amount = string.format("%d.%02d", 1 + index % 4, index % 100)
  if index % 2 == 0 then
    local member = members[(index % #members) + 1]
    local headers = {["Authorization"] = "Bearer " .. member[1],
                     ["Idempotency-Key"] = "wrk-mpm-" .. tid .. "-" .. counter,
                     ["Content-Type"] = "application/json"}
    local body = string.format('{"payload": "%s", "card_id": %d, "amount": "%s"}',
                               shop[2], member[2], amount)
    return wrk.format("POST", "/v1/payments/qr", headers, body)
  end
  local code = codes[(math.floor(index / 2) % #codes) + 1][1]
  local headers = {["X-Api-Key"] = shop[1],
                   ["Idempotency-Key"] = "wrk-cpm-" .. tid .. "-" .. counter,
                   ["Content-Type"] = "application/json"}
  local body = string.format('{"code": "%s", "amount": "%s"}', code, amount)
  return wrk.format("POST", "/v1/merchant/payments", headers, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f %f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def _shops(platform: Platform) -> list[tuple[str, str, int]]:
    """(API key, static payload, merchant id) for MERCHANTS merchants across the scenes."""
    out = []
    scenes = list(Scene)
    for n in range(MERCHANTS):
        acquirer = get_institution(platform=platform, code=("UMS", "LKL", "BOCMS")[n % 3])
        assert acquirer is not None
        merchant = onboard_merchant(platform=platform, acquirer=acquirer,
                                    legal_name=f"Merchant {n} Co", display_name=f"Shop {n}",
                                    city="Beijing", mcc="5411", scene=scenes[n % 10])  # fmt: skip
        terminal = terminal_by_code(platform=platform, merchant_id=merchant.id, code="T0001")
        assert terminal is not None
        key = create_api_key(platform=platform, kind=PrincipalKind.MERCHANT,
                             principal_id=merchant.id)  # fmt: skip
        payload = static_payload(platform=platform, merchant=merchant, terminal=terminal)
        out.append((key.key, payload, merchant.id))
    return out


def _codes(platform: Platform, members: list[Member], count: int) -> list[str]:
    user_ids = {}
    codes = []
    for n in range(count):
        member = members[n % len(members)]
        if member.phone not in user_ids:
            user_ids[member.phone] = authenticate(platform=platform, token=member.token)
        issued = issue_code(platform=platform, user_id=user_ids[member.phone],
                               wallet_card_id=member.card_id)  # fmt: skip
        codes.append(issued.qr_payload)
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("FLASHPAY_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path, help="py-spy one worker during the run")
    args = parser.parse_args()
    admin_url = args.admin_url or ADMIN_URL_DEFAULT
    url = _fresh_database(admin_url)
    data_dir = Path(tempfile.mkdtemp(prefix="flashpay-qr-bench-"))
    server = None
    try:
        members = _p2p_members(url, data_dir, P2P_USERS)
        platform = Platform.open(url, data_directory=data_dir)
        try:
            shops = _shops(platform)
            server, base_url = _start_server(url, args.workers, data_dir)
            codes = _codes(platform, members, CODES_PER_SECOND * args.seconds // 2)
            (data_dir / "codes.tsv").write_text("\n".join(codes) + "\n")
            (data_dir / "members.tsv").write_text(
                "".join(f"{m.token}\t{m.card_id}\n" for m in members)
            )
            (data_dir / "shops.tsv").write_text("".join(f"{k}\t{p}\n" for k, p, _ in shops))
        finally:
            platform.close()
        lua = _LUA.replace("@@DIR@@", str(data_dir)).replace("@@HOT@@", str(HOT_SHARE))
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(lua)
        profiler = None
        if args.profile is not None:
            profiler = _profile(_worker_pids(server.pid)[0], args.seconds - 2, args.profile)
        run = subprocess.run(
            ["wrk", "-t", "2", "-c", str(args.concurrency), "-d", f"{args.seconds}s",
             "-s", script.name, base_url],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        out = run.stdout
        if "RESULT " not in out:
            raise RuntimeError(f"wrk failed:\n{run.stdout}\n{run.stderr}")
        os.unlink(script.name)
        if profiler is not None:
            profiler.wait()
        requests, errors, duration_us, p50_us, p99_us = next(
            line for line in out.splitlines() if line.startswith("RESULT ")
        ).split()[1:]
        seconds = int(duration_us) / 1e6
        result = Result("qr_payments", int(requests), int(errors), round(seconds, 3),
                        round(int(requests) / seconds, 1), round(float(p50_us) / 1000, 2),
                        round(float(p99_us) / 1000, 2))  # fmt: skip
        check = Platform.open(url, data_directory=data_dir)
        try:
            import sqlalchemy as sa

            with check.engine.connect() as connection:
                statuses = dict(
                    connection.execute(
                        sa.text("SELECT coalesce(decline_reason, status), count(*) "
                                "FROM payments GROUP BY 1")
                    ).all()
                )  # fmt: skip
        finally:
            check.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        _drop_database(admin_url, url)
    print(f"QR payments on PostgreSQL, flashpay serve --workers {args.workers}, "
          f"{args.concurrency} connections, wrk, {args.seconds} s")  # fmt: skip
    print(f"{'payments/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    print(
        f"{result.per_second:>12.1f}{result.p50_ms:>10.2f}{result.p99_ms:>10.2f}{result.errors:>8}"
    )
    print(f"outcomes: {statuses}")
    print(f"target (issue 5): {TARGET_PER_SECOND}/s, p99 ≤ {TARGET_P99_MS} ms")
    if args.json:
        args.json.write_text(json.dumps({"result": asdict(result), "outcomes": statuses}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
