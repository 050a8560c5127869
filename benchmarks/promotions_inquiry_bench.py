"""The discount inquiry at 1,000 active campaigns against 10, over HTTP on PostgreSQL (issue 15).

Builds two fresh PostgreSQL databases with the default network, 50 merchants over the ten
scenes and three cities, and 16 wallet users with three debit cards each (BOC, ICBC, CMB). One
gets 1,000 active campaigns, the other 10, drawn by the same recipe: issuer campaigns by scene
(some by city, BIN or card kind), merchant campaigns at one merchant, network campaigns by city
and scene, acquirer campaigns by scene; amount off, percentages, random draws, fixed prices;
daily windows on some. Both run ``flashpay serve --workers N`` at once; ``wrk`` then drives one
at a time, alternating, at each concurrency level, with

    GET /v1/promotions/discounts?merchant_id=M&amount=A    (a user's bearer token)

— "what applies to me here" for one of the 50 merchants, with the user's three cards — and
reports requests/s and p50/p99 per database and level. Every answer is first checked once: the
same merchant's offers from the 1,000 campaigns are exactly the campaigns that can apply there.

    cd benchmarks && ../.venv/bin/python promotions_inquiry_bench.py --seconds 10 \
        --concurrency 1 4 16 --json inquiry.json

The target of issue 15: p99 ≤ 10 ms with 1,000 active campaigns.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from api_p2p_bench import (
    ADMIN_URL_DEFAULT,
    P2P_PASSWORD,
    Result,
    _drop_database,
    _fresh_database,
    _start_server,
)
from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import issue_card
from flashpay.clock import NS_PER_SECOND, SystemClock
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.merchants.service import Scene, onboard_merchant
from flashpay.notify import RecordingNotifier
from flashpay.platform import Platform
from flashpay.promotions.definition import parse_campaign
from flashpay.promotions.errors import PromotionError
from flashpay.promotions.storage import change_state, create_campaign
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.registration import register
from flashpay.wallet.sessions import login

MERCHANTS = 50
USERS = 8
CITIES = ("Beijing", "Shanghai", "Guangzhou")
CARDS = (("BOC", "621661"), ("ICBC", "622202"), ("CMB", "622588"))
ISSUERS = ("BOC", "ICBC", "CCB", "CMB", "ABC")
ACQUIRERS = ("UMS", "LKL", "BOCMS")
TARGET_P99_MS = 10.0
DAY_NS = 86_400 * NS_PER_SECOND
# a busy shared machine starts the workers slowly: wait up to 3 minutes for ``flashpay serve``
sys.modules["api_p2p_bench"].STARTUP_SECONDS_MAX = 180.0

_LUA = r"""
local users, shops = {}, {}
for line in io.lines("@@DIR@@/users.tsv") do users[#users + 1] = line end
for line in io.lines("@@DIR@@/shops.tsv") do shops[#shops + 1] = line end
local counter = 0
function request()
  counter = counter + 1
  local user = users[(counter % #users) + 1]
  local shop = shops[((counter * 7) % #shops) + 1]
  local amount = 10 + (counter % 90)
  return wrk.format("GET", "/v1/promotions/discounts?merchant_id=" .. shop .. "&amount="
    .. amount .. ".00", {["Authorization"] = "Bearer " .. user})
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f %f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True, slots=True)
class Shop:
    id: int
    scene: str
    city: str
    acquirer: str


def _ids(platform: Platform, codes: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for code in codes:
        found = get_institution(platform=platform, code=code)
        assert found is not None
        out[code] = found.id
    return out


def _shops(platform: Platform) -> list[Shop]:
    scenes, shops = list(Scene), []
    for n in range(MERCHANTS):
        code = ACQUIRERS[n % 3]
        acquirer = get_institution(platform=platform, code=code)
        assert acquirer is not None
        city, scene = CITIES[n % 3], scenes[n % 10]
        merchant = onboard_merchant(platform=platform, acquirer=acquirer,
                                    legal_name=f"Merchant {n} Co", display_name=f"Shop {n}",
                                    city=city, mcc="5411", scene=scene)  # fmt: skip
        shops.append(Shop(merchant.id, scene.value, city, code))
    return shops


def _users(platform: Platform, notifier: RecordingNotifier) -> list[str]:
    """``USERS`` wallet users with three bound debit cards each; their bearer tokens."""
    tokens = []
    for n in range(USERS):
        phone, id_number = f"1370000{n:04d}", f"1101011990020{n:04d}X"
        user = register(platform=platform, phone=phone, name=f"User {n}", id_number=id_number,
                        password=P2P_PASSWORD)  # fmt: skip
        for bank, prefix in CARDS:
            issuer = get_institution(platform=platform, code=bank)
            assert issuer is not None
            pan = generate_card_number(prefix, 16)
            issue_card(platform=platform, issuer=issuer, card=pan, expiry="3012",
                       holder_name=f"User {n}", holder_id_number=id_number, phone=phone,
                       opening_balance=1_000_000)  # fmt: skip
            binding = start_binding(platform=platform, user_id=user.id, card_number=pan,
                                    expiry="12/30")  # fmt: skip
            otp = notifier.last_code("card_binding", str(binding.id))
            confirm_binding(platform=platform, user_id=user.id, binding_id=binding.id, otp=otp)
        tokens.append(login(platform=platform, phone=phone, password=P2P_PASSWORD).token)
    return tokens


def _benefit(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(("amount_off", "amount_off", "percent_off", "random_off", "fixed_price"))
    if kind == "amount_off":
        return {"kind": kind, "off_minor": rng.choice((100, 300, 500, 1000)),
                "threshold_minor": rng.choice((0, 2000, 5000))}  # fmt: skip
    if kind == "percent_off":
        return {"kind": kind, "rate_bps": rng.choice((500, 1000, 2000)), "cap_minor": 1500}
    if kind == "random_off":
        return {"kind": kind, "low_minor": 100, "high_minor": 500}
    return {"kind": kind, "price_minor": 100}


def _definitions(
    count: int, shops: list[Shop], ids: dict[str, int], now_ns: int
) -> list[dict[str, Any]]:
    """``count`` campaign definitions across scenes, merchants, cities and banks (seeded)."""
    rng = random.Random(15)
    scenes = [s.value for s in Scene]
    out = []
    for n in range(count):
        roll = rng.random()
        eligibility: dict[str, Any] = {}
        if roll < 0.45:  # an issuer's campaign by scene, some by city, BIN or card kind
            funder = {"kind": "issuer", "id": ids[rng.choice(ISSUERS)]}
            eligibility["scenes"] = rng.sample(scenes, rng.choice((1, 1, 2)))
            if rng.random() < 0.3:
                eligibility["cities"] = [rng.choice(CITIES)]
            if rng.random() < 0.2:
                eligibility["card_kinds"] = ["credit"]
        elif roll < 0.75:  # a merchant's own campaign
            shop = rng.choice(shops)
            funder = {"kind": "merchant", "id": shop.id}
        elif roll < 0.9:  # the network's by city and scene
            funder = {"kind": "network", "id": ids["CUP"]}
            eligibility["cities"] = [rng.choice(CITIES)]
            eligibility["scenes"] = [rng.choice(scenes)]
        else:  # an acquirer's by scene
            funder = {"kind": "acquirer", "id": ids[rng.choice(ACQUIRERS)]}
            eligibility["scenes"] = [rng.choice(scenes)]
        body: dict[str, Any] = {
            "name": f"Campaign {n}",
            "funder": funder,
            "starts_at": _iso(now_ns - DAY_NS),
            "ends_at": _iso(now_ns + 30 * DAY_NS),
            "eligibility": eligibility,
            "benefit": _benefit(rng),
            "budget": {"money_minor": rng.choice((50_000, 500_000)), "uses": 10_000},
            "caps": {"user_per_day": rng.choice((1, 2, 5))},
            "stacking": "stackable" if rng.random() < 0.8 else "exclusive",
            "priority": rng.randrange(0, 100),
        }
        if body["benefit"]["kind"] == "fixed_price":
            body["stacking"] = "exclusive"
        if rng.random() < 0.15:
            body["windows"] = [{"start": "00:00", "end": "23:59"}]
        out.append(body)
    return out


def _iso(at_ns: int) -> str:
    return datetime.fromtimestamp(at_ns // NS_PER_SECOND, UTC).isoformat()


def _campaigns(
    platform: Platform, definitions: list[dict[str, Any]], now_ns: int
) -> dict[int, dict[str, Any]]:
    """Create and activate every one. An exclusive one that clashes with another exclusive
    campaign of its funder (refused ``promo_overlapping_exclusive``) is ended and made again as
    a stackable amount off, so that all ``len(definitions)`` run. The active ones' definitions,
    by campaign id."""
    active = {}
    for body in definitions:
        for attempt in (body, {**body, "stacking": "stackable",
                               "benefit": {"kind": "amount_off", "off_minor": 200}}):  # fmt: skip
            with platform.engine.begin() as connection:
                campaign = create_campaign(connection, spec=parse_campaign(attempt), now_ns=now_ns)
            try:
                with platform.engine.begin() as connection:
                    change_state(connection, campaign_id=campaign.id, action="activate",
                                 now_ns=now_ns)  # fmt: skip
            except PromotionError:
                with platform.engine.begin() as connection:
                    change_state(connection, campaign_id=campaign.id, action="end", now_ns=now_ns)
                continue
            active[campaign.id] = attempt
            break
    return active


def _can_apply(body: dict[str, Any], shop: Shop) -> bool:
    """What the index must admit at ``shop``: scene, merchant (a merchant's own) and city."""
    rules, funder = body["eligibility"], body["funder"]
    return (
        shop.scene in rules.get("scenes", [shop.scene])
        and shop.city in rules.get("cities", [shop.city])
        and (funder["kind"] != "merchant" or funder["id"] == shop.id)
    )


def _prepare(
    url: str, data_dir: Path, campaigns: int
) -> tuple[dict[int, dict[str, Any]], list[Shop], list[str]]:
    notifier = RecordingNotifier()
    platform = Platform.open(url, data_directory=data_dir, notifier=notifier)
    try:
        load_network(platform=platform, definition=default_definition())
        ids = _ids(platform, ("CUP", *ISSUERS, *ACQUIRERS))
        shops = _shops(platform)
        tokens = _users(platform, notifier)
        now_ns = SystemClock().now_ns()
        active = _campaigns(platform, _definitions(campaigns, shops, ids, now_ns), now_ns)
    finally:
        platform.close()
    return active, shops, tokens


def _wrk(base_url: str, data_dir: Path, *, seconds: int, concurrency: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA.replace("@@DIR@@", str(data_dir)))
    threads = min(2, concurrency)
    run = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s",
         "-s", script.name, base_url],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    os.unlink(script.name)
    if "RESULT " not in run.stdout:
        raise RuntimeError(f"wrk failed:\n{run.stdout}\n{run.stderr}")
    requests, errors, duration_us, p50_us, p99_us = next(
        line for line in run.stdout.splitlines() if line.startswith("RESULT ")
    ).split()[1:]
    took = int(duration_us) / 1e6
    return Result("", int(requests), int(errors), round(took, 3), round(int(requests) / took, 1),
                  round(float(p50_us) / 1000, 2), round(float(p99_us) / 1000, 2))  # fmt: skip


def _sample(
    base_url: str, token: str, shops: list[Shop], active: dict[int, dict[str, Any]]
) -> tuple[int, int]:
    """Warm up and check: at every shop the offers are exactly the active campaigns that can
    apply there (scene, merchant, city); (offers in all, offers that apply to a card)."""
    offers = applying = 0
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for shop in shops:
            response = client.get(
                f"/v1/promotions/discounts?merchant_id={shop.id}&amount=60.00",
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            body = response.json()
            expected = {i for i, b in active.items() if _can_apply(b, shop)}
            if {o["campaign_id"] for o in body} != expected:
                raise AssertionError(f"shop {shop.id}: the index answered other campaigns")
            offers += len(body)
            applying += sum(1 for o in body if o["why_not"] is None)
    return offers, applying


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("FLASHPAY_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    admin_url = args.admin_url or ADMIN_URL_DEFAULT
    runs: dict[int, dict[str, Any]] = {}
    servers = []
    urls = []
    try:
        for count in (1_000, 10):
            url = _fresh_database(admin_url)
            urls.append(url)
            data_dir = Path(tempfile.mkdtemp(prefix=f"flashpay-inquiry-{count}-"))
            active, shops, tokens = _prepare(url, data_dir, count)
            (data_dir / "users.tsv").write_text("".join(f"{t}\n" for t in tokens))
            (data_dir / "shops.tsv").write_text("".join(f"{s.id}\n" for s in shops))
            server, base_url = _start_server(url, args.workers, data_dir)
            servers.append(server)
            offers, applying = _sample(base_url, tokens[0], shops, active)
            runs[count] = {"active": len(active), "base_url": base_url, "data_dir": data_dir,
                           "offers_per_merchant": round(offers / len(shops), 1),
                           "applying_per_merchant": round(applying / len(shops), 1),
                           "results": {}}  # fmt: skip
        for concurrency in args.concurrency:
            for run in runs.values():  # side by side: 1,000 then 10 at each level
                result = _wrk(run["base_url"], run["data_dir"], seconds=args.seconds,
                              concurrency=concurrency)  # fmt: skip
                run["results"][concurrency] = result
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=15)
        for url in urls:
            _drop_database(admin_url, url)
    print(f"Discount inquiry on PostgreSQL, flashpay serve --workers {args.workers}, wrk, "
          f"{args.seconds} s per run, {MERCHANTS} merchants, {USERS} users × 3 cards")  # fmt: skip
    print(f"{'campaigns':>10}{'offers/merchant':>17}{'conns':>7}{'req/s':>9}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")  # fmt: skip
    for concurrency in args.concurrency:
        for run in runs.values():
            r = run["results"][concurrency]
            print(f"{run['active']:>10}{run['offers_per_merchant']:>17}{concurrency:>7}"
                  f"{r.per_second:>9.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}")  # fmt: skip
    print(f"target (issue 15): p99 ≤ {TARGET_P99_MS} ms with 1,000 active campaigns")
    if args.json:
        out = {
            str(count): {
                "active": run["active"],
                "offers_per_merchant": run["offers_per_merchant"],
                "applying_per_merchant": run["applying_per_merchant"],
                "results": {str(c): asdict(r) for c, r in run["results"].items()},
            }
            for count, run in runs.items()
        }
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
