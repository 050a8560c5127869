"""``flashpay transit``: run a gate, check a fare file, settle the day, show the deny list.

``flashpay transit gate serve`` is a gate process (``flashpay.transit.gate``): it journals every
tap durably before it answers and uploads to ``--network`` whenever it can reach it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flashpay.cli.common import DataDirOption, DbOption, console, err_console, resolve_db
from flashpay.platform import Platform
from flashpay.transit import gate as gate_process
from flashpay.transit.definition import FareDefinitionError, load_definition
from flashpay.transit.denylist import gate_trust
from flashpay.transit.settle import settle
from flashpay.transit.trips import TapKind

app = typer.Typer(
    help="Transit: gates, fares, the day's settle, the deny list.", no_args_is_help=True
)
gate_app = typer.Typer(help="A gate process.", no_args_is_help=True)
app.add_typer(gate_app, name="gate")


@gate_app.command("serve")
def serve_gate(
    gate_id: Annotated[str, typer.Option("--gate-id", help="This gate's id (unique).")],
    station: Annotated[str, typer.Option(help="The station or bus line (a definition id).")],
    kind: Annotated[TapKind, typer.Option(help="in, out (subway) or board (bus).")],
    directory: Annotated[Path, typer.Option("--dir", help="The gate's journal and trust.")],
    network: Annotated[str | None, typer.Option(help="The network's base URL.")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="FLASHPAY_GATE_API_KEY")] = None,
    port: Annotated[int, typer.Option(help="Local port for taps (0: any).")] = 0,
    sync_seconds: Annotated[float, typer.Option(help="Refresh and upload interval.")] = 5.0,
    clock_offset_seconds: Annotated[float, typer.Option(help="Simulated clock drift.")] = 0.0,
    upload_batch: Annotated[int, typer.Option(help="Taps per upload request.")] = 1000,
) -> None:
    """Answer taps on POST /tap, offline if need be; upload the journal when online."""
    config = gate_process.GateConfig(
        gate_id,
        station,
        kind,
        directory,
        network,
        api_key,
        sync_seconds,
        clock_offset_seconds,
        upload_batch,
    )
    gate_process.serve(config, port=port)


@app.command("check-fares")
def check_fares(
    path: Annotated[
        Path | None, typer.Argument(help="A fares TOML (default: the network's).")
    ] = None,
) -> None:
    """Validate a transit definition; print its stations and rules."""
    try:
        definition = load_definition(path)
    except FareDefinitionError as exc:
        err_console.print(f"refused: {exc.code}: {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    fares = definition.fares
    console.print(
        f"{len(definition.stations)} stations, {len(fares.leg_rules)} leg rules, "
        f"{len(fares.transfer_rules)} transfer rules, caps {fares.daily_cap_minor}/"
        f"{fares.weekly_cap_minor} fen"
    )


@app.command("settle")
def run_settle(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Match and price the uploaded taps and post the deferred debits."""
    platform = Platform.open(resolve_db(db, data_dir), data_directory=data_dir)
    try:
        report = settle(platform=platform, definition=load_definition())
    finally:
        platform.close()
    failed = sum(d.status.value == "failed" for d in report.debits)
    console.print(
        f"taps {report.taps}, trips {report.trips}, fares {report.fares_minor} fen, "
        f"capped {report.cap_discount_minor} fen, set aside {report.set_aside}, "
        f"debits {len(report.debits)} ({failed} failed)"
    )


@app.command("deny-list")
def deny_list(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """The deny list's version, digest and tokens (masked)."""
    platform = Platform.open(resolve_db(db, data_dir), data_directory=data_dir)
    try:
        snap = gate_trust(platform=platform)
    finally:
        platform.close()
    console.print(f"version {snap.deny.version} digest {snap.deny.digest.hex()}")
    for token in snap.denied_tokens:
        console.print(f"  {token[:6]}******{token[-4:]}")
