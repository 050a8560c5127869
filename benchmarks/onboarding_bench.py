"""The demo's set-up alone: the network, the merchants, the users and their bound cards.

Times ``flashpay.sim.live._build`` — what ``flashpay demo`` does before the traffic, through
the public services (``load_network``, ``onboard_merchant``, ``register``, ``set_pin``,
``issue_cards``, ``start_binding``/``confirm_binding`` and ``enrol_cards``) — on a fresh
database, with the demo's platform (fake clock, recording notifier, the demo password policy),
and checks that every card ended up in its holder's wallet. Prints wall and CPU time (CPU counts
every thread: on a shared machine it is the steadier figure).

    .venv/bin/python benchmarks/onboarding_bench.py                     # 5,000 users, SQLite
    .venv/bin/python benchmarks/onboarding_bench.py --users 300 --runs 3
    .venv/bin/python benchmarks/onboarding_bench.py --db postgresql://postgres@127.0.0.1/empty

The target of issue 7: 5,000 users with ~9,500 bound cards and 300 merchants in ≤ 12 s on
SQLite on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from flashpay.sim import live
from flashpay.sim.network import build_network
from flashpay.wallet.models import wallet_cards


def one_run(url: str, directory: Path, users: int, merchants: int, seed: int) -> dict[str, float]:
    platform, clock, notifier = live.open_demo_platform(url, directory)
    try:
        network = build_network(seed=seed, users=users, merchants=merchants)
        started, cpu = time.perf_counter(), time.process_time()
        world = live._build(platform, clock, notifier, network, seed)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        with platform.engine.connect() as connection:
            bound = connection.execute(sa.select(sa.func.count()).select_from(wallet_cards))
            bound_cards = int(bound.scalar_one())
    finally:
        platform.close()
    assert bound_cards == len(network.cards) == len(world.wallet_cards), "a card was not bound"
    return {"users": users, "cards": bound_cards, "wall_seconds": wall, "cpu_seconds": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--merchants", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--db", help="an empty database (default: a fresh SQLite file per run)")
    parser.add_argument("--json", type=Path, help="write the runs as JSON here")
    args = parser.parse_args()
    if args.db and args.runs > 1:
        parser.error("--runs needs a fresh database per run: leave out --db")
    runs = []
    for _ in range(args.runs):
        directory = Path(tempfile.mkdtemp(prefix="flashpay-onboarding-"))
        url = args.db or f"sqlite:///{directory}/flashpay.db"
        runs.append(one_run(url, directory, args.users, args.merchants, args.seed))
        r = runs[-1]
        print(
            f"{r['users']:,} users, {r['cards']:,} cards, {args.merchants} merchants: "
            f"{r['wall_seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s CPU"
        )
    if len(runs) > 1:
        walls = [r["wall_seconds"] for r in runs]
        print(f"wall: median {statistics.median(walls):.2f} s, best {min(walls):.2f} s")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2) + "\n")


if __name__ == "__main__":
    main()
