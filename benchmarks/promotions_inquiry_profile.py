"""One discount inquiry at 1,000 campaigns, profiled in-process (issue 15): statements, rows and
Python time per step, so the cuts are chosen by measurement and not by guess.

Builds one fresh PostgreSQL database with the inquiry benchmark's recipe
(``promotions_inquiry_bench``: 50 merchants, 8 users × 3 cards, 1,000 campaigns), opens the full
app in this process and sends ``GET /v1/promotions/discounts?merchant_id=M&amount=A`` through
the ASGI stack (``fastapi.testclient``: the app's whole request path, without a socket). It
counts the statements and the rows they return per request (SQLAlchemy's cursor events), times
``--requests`` requests, and the time spent in each step of the request (each step's function
wrapped with a timer; the app runs in the test client's thread, which ``cProfile`` does not see).

    cd benchmarks && PYTHONPATH=../src ../.venv/bin/python promotions_inquiry_profile.py
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api_p2p_bench import ADMIN_URL_DEFAULT, _drop_database, _fresh_database
from flashpay import promotions_api
from flashpay.api import security
from flashpay.app import create_platform_app
from flashpay.notify import RecordingNotifier
from flashpay.platform import Platform
from flashpay.promotions import inquiry, schemas, storage
from promotions_inquiry_bench import _prepare

STEPS: dict[str, list[float]] = {}


def _timed(owner: Any, name: str, label: str) -> None:
    """Wrap ``owner.name`` with a timer adding to ``STEPS[label]``."""
    inner = getattr(owner, name)
    STEPS[label] = [0.0, 0]

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            STEPS[label][0] += time.perf_counter() - started
            STEPS[label][1] += 1

    is_class_method = isinstance(owner, type) and isinstance(owner.__dict__.get(name), classmethod)
    setattr(owner, name, staticmethod(wrapper) if is_class_method else wrapper)


def _instrument() -> None:
    _timed(promotions_api, "_active_cards", "  the user's cards")
    _timed(promotions_api, "_user_keys", "  the user (phone)")
    _timed(promotions_api, "_merchant", "  the merchant")
    _timed(promotions_api, "discounts_for", "  discounts_for")
    _timed(inquiry, "active_campaigns", "    campaigns (index query + definitions)")
    _timed(inquiry, "usage_for", "    usage + budgets")
    _timed(storage, "budgets", "      budgets")
    _timed(schemas.OfferOut, "of", "  OfferOut.of")
    _timed(security.Authenticator, "authenticate", "bearer token (session read)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("FLASHPAY_TEST_POSTGRES_URL"))
    parser.add_argument("--campaigns", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    url = _fresh_database(args.admin_url or ADMIN_URL_DEFAULT)
    try:
        data_dir = Path(tempfile.mkdtemp(prefix="flashpay-inquiry-profile-"))
        _, shops, tokens = _prepare(url, data_dir, args.campaigns)
        platform = Platform.open(url, data_directory=data_dir, notifier=RecordingNotifier())
        statements: list[tuple[str, int]] = []

        @sa.event.listens_for(platform.engine, "after_cursor_execute")
        def _count(_c: Any, cursor: Any, statement: str, *_: Any) -> None:
            statements.append((statement.split()[0], max(cursor.rowcount, 0)))

        _instrument()
        app = create_platform_app(platform, request_hash_key=b"k" * 32)
        rng = random.Random(15)
        with TestClient(app) as client:

            def one() -> int:
                shop = rng.choice(shops)
                amount = f"{rng.randint(10, 99)}.00"
                response = client.get(
                    f"/v1/promotions/discounts?merchant_id={shop.id}&amount={amount}",
                    headers={"Authorization": f"Bearer {rng.choice(tokens)}"},
                )
                response.raise_for_status()
                return len(response.json())

            for _ in range(20):  # warm the caches of parsed definitions
                one()
            statements.clear()
            offers = sum(one() for _ in range(args.requests))
            per = len(statements) / args.requests
            rows = sum(r for _, r in statements) / args.requests
            kinds: dict[str, int] = {}
            for kind, _ in statements:
                kinds[kind] = kinds.get(kind, 0) + 1
            for step in STEPS.values():
                step[:] = [0.0, 0]
            started = time.perf_counter()
            for _ in range(args.requests):
                one()
            took_ms = (time.perf_counter() - started) * 1000 / args.requests
        platform.close()
    finally:
        _drop_database(args.admin_url or ADMIN_URL_DEFAULT, url)
    print(f"{args.campaigns} campaigns, {args.requests} requests, "
          f"{offers / args.requests:.1f} offers a request")  # fmt: skip
    by_kind = ", ".join(f"{k} {v / args.requests:.1f}" for k, v in sorted(kinds.items()))
    print(f"statements a request: {per:.1f} ({by_kind}); rows: {rows:.1f}")
    print(f"in-process time a request: {took_ms:.2f} ms")
    for label, (seconds, calls) in STEPS.items():
        print(f"{label:<48}{seconds * 1000 / args.requests:>8.2f} ms{calls / args.requests:>6.1f}×")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
