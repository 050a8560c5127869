"""``flashpay webhooks``: run the delivery worker, derive events, look at endpoints and
deliveries from the terminal.

    flashpay webhooks deliver [--lease-seconds 60] [--concurrency 8]   # the worker (derives too)
    flashpay webhooks derive [--full]                                   # one derivation pass
    flashpay webhooks rederive --since-seconds 3600                     # re-read a window
    flashpay webhooks endpoints --merchant 3                            # a merchant's endpoints
    flashpay webhooks deliveries --merchant 3 [--limit 20]              # its delivery log
"""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated, Any

import sqlalchemy as sa
import typer

from flashpay.cli.common import DataDirOption, DbOption, resolve_db
from flashpay.clock import NS_PER_SECOND
from flashpay.platform import Platform
from flashpay.webhooks import endpoints, feed
from flashpay.webhooks.delivery import CONCURRENCY, LEASE_SECONDS
from flashpay.webhooks.derive import LEDGER_CURSOR, Deriver
from flashpay.webhooks.models import webhook_cursors
from flashpay.webhooks.runner import run_worker

app = typer.Typer(help="Merchant webhooks: the delivery worker and the event feed.",
                  no_args_is_help=True)  # fmt: skip
MerchantOption = Annotated[int, typer.Option("--merchant", help="The merchant's id.")]


def _open(db: str | None, data_dir: Any) -> Platform:
    return Platform.open(resolve_db(db, data_dir), data_directory=data_dir)


@app.command("deliver")
def deliver(
    db: DbOption = None,
    data_dir: DataDirOption = None,
    lease_seconds: Annotated[
        float, typer.Option(help="A claim lapses after this.")
    ] = LEASE_SECONDS,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = CONCURRENCY,
    derive: Annotated[bool, typer.Option(help="Derive events in this process too.")] = True,
) -> None:
    """Run the delivery worker until SIGINT or SIGTERM (kill -9 is safe: leases lapse)."""
    platform = _open(db, data_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    typer.echo("webhooks: delivering", err=True)
    try:
        run_worker(platform, stop, lease_seconds=lease_seconds, concurrency=concurrency,
                   derive=derive)  # fmt: skip
    finally:
        platform.close()


@app.command("derive")
def derive(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """One full derivation pass; prints what it did as JSON."""
    platform = _open(db, data_dir)
    try:
        report = Deriver(platform).run_once(full=True)
        typer.echo(
            json.dumps(
                {
                    "chains": report.chains,
                    "events": report.events,
                    "deliveries": report.deliveries,
                    "low_water": report.low_water,
                }
            )
        )
    finally:
        platform.close()


@app.command("rederive")
def rederive(
    since_seconds: Annotated[int, typer.Option(min=1, help="Move the low-water mark back.")],
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Move the ledger cursor back ``since_seconds`` and derive again (harmless: event ids are
    stable, existing events are skipped) — for a chain that committed later than the settle
    window allows."""
    platform = _open(db, data_dir)
    try:
        back = platform.clock.now_ns() - since_seconds * NS_PER_SECOND
        with platform.engine.begin() as connection:
            connection.execute(
                webhook_cursors.update()
                .where(webhook_cursors.c.name == LEDGER_CURSOR,
                       webhook_cursors.c.position > back)
                .values(position=sa.literal(max(back, 0)))
            )  # fmt: skip
        report = Deriver(platform).run_once(full=True)
        typer.echo(json.dumps({"chains": report.chains, "events": report.events}))
    finally:
        platform.close()


@app.command("endpoints")
def list_endpoints(
    merchant: MerchantOption, db: DbOption = None, data_dir: DataDirOption = None
) -> None:
    """The merchant's endpoints as JSON lines (no secrets)."""
    platform = _open(db, data_dir)
    try:
        for e in endpoints.list_endpoints(platform=platform, merchant_id=merchant):
            typer.echo(
                json.dumps(
                    {
                        "id": e.id,
                        "url": e.url,
                        "status": e.status.value,
                        "event_types": [t.value for t in e.event_types],
                    }
                )
            )
    finally:
        platform.close()


@app.command("deliveries")
def list_deliveries(
    merchant: MerchantOption,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The merchant's latest deliveries as JSON lines, with their attempts."""
    platform = _open(db, data_dir)
    try:
        for d in feed.list_deliveries(platform=platform, merchant_id=merchant, limit=limit):
            typer.echo(json.dumps({
                "id": d.id, "event_id": d.event_id, "type": d.event_type,
                "endpoint_id": d.endpoint_id, "round": d.round, "state": d.state,
                "attempts": [{"n": a.n, "outcome": a.outcome, "status_code": a.status_code,
                              "latency_ms": a.latency_ms, "error": a.error} for a in d.attempts],
            }))  # fmt: skip
    finally:
        platform.close()
