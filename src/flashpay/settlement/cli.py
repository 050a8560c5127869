"""``flashpay settlement close|settle|report|reconcile`` (``payout``: not built yet)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flashpay.cli.common import DataDirOption, DbOption, console, err_console, resolve_db
from flashpay.errors import RefusedError
from flashpay.platform import Platform
from flashpay.settlement.close import close_window
from flashpay.settlement.payouts import payouts
from flashpay.settlement.queries import list_windows, window_positions
from flashpay.settlement.reconcile import reconcile_window
from flashpay.settlement.service import close_due, files_directory, schedule_from_environment
from flashpay.settlement.settle import settle_closed, settle_window

app = typer.Typer(help="Clearing and settlement: windows, positions, files.", no_args_is_help=True)


def _open(db: str | None, data_dir: Path | None) -> Platform:
    return Platform.open(resolve_db(db, data_dir), data_directory=data_dir)


@app.command("close")
def close(
    db: DbOption = None,
    data_dir: DataDirOption = None,
    end_ns: Annotated[
        int | None, typer.Option(help="The cut-off (default: every due one).")
    ] = None,
) -> None:
    """Close the due windows (or the one ending at --end-ns); idempotent."""
    platform = _open(db, data_dir)
    try:
        schedule, directory = schedule_from_environment(), files_directory(data_dir)
        results = (
            [close_window(platform=platform, end_ns=end_ns, schedule=schedule, directory=directory)]
            if end_ns is not None
            else close_due(platform=platform, schedule=schedule, directory=directory)
        )
    except RefusedError as exc:
        err_console.print(f"{exc.code}: {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    for r in results:
        console.print(
            f"window {r.window.id} [{r.window.start_ns}, {r.window.end_ns}) "
            f"{r.window.state}: {r.window.transactions} lines",
            highlight=False,
        )


@app.command("settle")
def settle(
    db: DbOption = None,
    data_dir: DataDirOption = None,
    window: Annotated[int | None, typer.Option(help="A window id (default: every closed).")] = None,
) -> None:
    """Post the settlement chain of the closed windows (or one); idempotent."""
    platform = _open(db, data_dir)
    try:
        done = (
            [settle_window(platform=platform, window_id=window)]
            if window is not None
            else settle_closed(platform=platform)
        )
    except RefusedError as exc:
        err_console.print(f"{exc.code}: {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    for w in done:
        console.print(f"window {w.id} {w.state}: chain {w.settlement_chain_id}", highlight=False)


@app.command("report")
def report(
    db: DbOption = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables.")] = False,
) -> None:
    """Every window with each member's position."""
    platform = _open(db, data_dir)
    try:
        with platform.engine.connect() as connection:
            windows = [(w, window_positions(connection, w.id)) for w in list_windows(connection)]
    finally:
        platform.close()
    if as_json:
        doc = [{"window": w.id, "state": w.state, "start_ns": w.start_ns, "end_ns": w.end_ns,
                "results_digest": w.results_digest,
                "positions": {p.member: p.net_fen for p in ps}} for w, ps in windows]  # fmt: skip
        typer.echo(json.dumps(doc, indent=1))
        return
    for w, ps in windows:
        table = Table("member", "kind", "owes", "owed", "net (fen)", title=f"window {w.id} "
                      f"({w.state})")  # fmt: skip
        for p in ps:
            table.add_row(p.member, p.kind, str(p.owes_fen), str(p.owed_fen), str(p.net_fen))
        table.add_row("sum", "", "", "", str(sum(p.net_fen for p in ps)))
        console.print(table)


@app.command("reconcile")
def reconcile(
    window: Annotated[int, typer.Argument(help="The window id.")],
    member: Annotated[str, typer.Argument(help="The member's code.")],
    record: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Its record (CSV).")],
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Report every break between a member's record and its clearing file (exit 3 if any)."""
    platform = _open(db, data_dir)
    try:
        with platform.engine.connect() as connection:
            breaks = reconcile_window(connection, window_id=window, member=member,
                                      record=record.read_text(encoding="utf-8"))  # fmt: skip
    except RefusedError as exc:
        err_console.print(f"{exc.code}: {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    for b in breaks:
        console.print(
            f"{b.kind.value} {b.transaction_id} {b.field or ''} "
            f"{b.flashpay_value or ''} {b.member_value or ''}".rstrip(),
            highlight=False,
        )
    console.print(f"{len(breaks)} breaks", highlight=False)
    if breaks:
        raise typer.Exit(3)


@app.command("payout")
def payout(
    db: DbOption = None,
    data_dir: DataDirOption = None,
    window: Annotated[
        int | None, typer.Option(help="A window id (default: every settled).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables.")] = False,
) -> None:
    """Merchant payouts of the settled windows (or one, and the earlier ones first); idempotent."""
    platform = _open(db, data_dir)
    try:
        with platform.engine.connect() as connection:
            ids = [window] if window is not None else [
                w.id for w in sorted(list_windows(connection), key=lambda w: w.end_ns)
                if w.state == "settled"
            ]  # fmt: skip
        done = [(wid, payouts(platform=platform, window_id=wid)) for wid in ids]
    except RefusedError as exc:
        err_console.print(f"{exc.code}: {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(p) for _, ps in done for p in ps], indent=1))
        return
    for wid, ps in done:
        columns = ("merchant", "acquirer", "value date", "payments", "refunds", "fees",
                   "carried in", "payout", "carried out")  # fmt: skip
        table = Table(*columns, title=f"window {wid} payouts")
        for p in ps:
            table.add_row(str(p.merchant_id), p.acquirer, p.value_date, str(p.payments_fen),
                          str(p.refunds_fen), str(p.fees_fen), str(p.carried_in_fen),
                          str(p.payout_fen), str(p.carried_out_fen))  # fmt: skip
        console.print(table)
