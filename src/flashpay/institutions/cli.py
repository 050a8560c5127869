"""``flashpay network``: load a network definition, list the institutions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flashpay.cli.common import DataDirOption, DbOption, console, err_console, resolve_db
from flashpay.db import upgrade
from flashpay.institutions.definition import DefinitionError, default_definition, load_toml
from flashpay.institutions.service import NetworkLoadError, list_institutions, load_network
from flashpay.platform import Platform

app = typer.Typer(help="The network: institutions and BIN ranges.", no_args_is_help=True)


@app.command("load")
def load(
    definition: Annotated[
        Path | None,
        typer.Argument(exists=True, dir_okay=False, help="A TOML file (default: the shipped one)."),
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Load a network definition (idempotent); migrates the database first."""
    url = resolve_db(db, data_dir)
    try:
        parsed = load_toml(definition) if definition is not None else default_definition()
    except DefinitionError as exc:
        err_console.print(f"invalid network definition: {exc}", highlight=False)
        raise typer.Exit(2) from exc
    upgrade(url)
    platform = Platform.open(url, data_directory=data_dir)
    try:
        summary = load_network(platform=platform, definition=parsed)
    except NetworkLoadError as exc:
        err_console.print(f"cannot load: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    console.print(
        f"loaded: {summary.institutions_created} institutions created, "
        f"{summary.institutions_updated} updated, {summary.bin_ranges} BIN ranges, "
        f"{summary.accounts_created} ledger accounts opened",
        soft_wrap=True,  # one line whatever the terminal width, for scripts
    )


@app.command("show")
def show(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """List the institutions (use the id with `flashpay apikey create --institution ID`)."""
    platform = Platform.open(resolve_db(db, data_dir), data_directory=data_dir)
    try:
        table = Table("id", "code", "kind", "name", "IIN")
        for inst in list_institutions(platform=platform):
            table.add_row(str(inst.id), inst.code, inst.kind.value, inst.name, inst.iin)
        console.print(table)
    finally:
        platform.close()
