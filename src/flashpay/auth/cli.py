"""``flashpay apikey``: create, list and revoke API keys of institutions and merchants."""

from __future__ import annotations

from typing import Annotated

import typer

from flashpay.auth.service import (
    PrincipalKind,
    RevokeOutcome,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from flashpay.cli.common import DataDirOption, DbOption, console, err_console, resolve_db
from flashpay.clock import SystemClock
from flashpay.db import create_engine
from flashpay.errors import InvariantError

app = typer.Typer(help="API keys for institutions and merchants.", no_args_is_help=True)


class _Runtime:
    """Just the database and the clock: API keys need nothing else from the platform."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.clock = SystemClock()


@app.command("create")
def create(
    institution: Annotated[
        int | None, typer.Option("--institution", help="Institution id.")
    ] = None,
    merchant: Annotated[int | None, typer.Option("--merchant", help="Merchant id.")] = None,
    network_admin: Annotated[
        bool,
        typer.Option(
            "--network-admin", help="The network operator's key: may administer the network."
        ),
    ] = False,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    if (institution is None) == (merchant is None):
        err_console.print("give exactly one of --institution ID or --merchant ID")
        raise typer.Exit(2)
    if network_admin and institution is None:
        err_console.print("--network-admin needs --institution (the network operator)")
        raise typer.Exit(2)
    kind, principal_id = (
        (PrincipalKind.INSTITUTION, institution)
        if institution is not None
        else (PrincipalKind.MERCHANT, merchant)
    )
    if principal_id is None:
        raise InvariantError("the institution or merchant found has an id")
    runtime = _Runtime(resolve_db(db, data_dir))
    try:
        created = create_api_key(
            platform=runtime, kind=kind, principal_id=principal_id, network_admin=network_admin
        )
    finally:
        runtime.engine.dispose()
    err_console.print(
        f"API key {created.key_id} for {kind.value} {principal_id} (shown once, store it now):"
    )
    typer.echo(created.key)


@app.command("revoke")
def revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `flashpay apikey list`).")],
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    runtime = _Runtime(resolve_db(db, data_dir))
    try:
        outcome = revoke_api_key(platform=runtime, key_id=key_id)
    finally:
        runtime.engine.dispose()
    if outcome is not RevokeOutcome.REVOKED:
        err_console.print(f"key {key_id}: {outcome.value}")
        raise typer.Exit(1)
    console.print(f"key {key_id} revoked")


@app.command("list")
def list_keys(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """List keys (prefix, owner, state); the keys themselves are not stored."""
    runtime = _Runtime(resolve_db(db, data_dir))
    try:
        records = list_api_keys(platform=runtime)
    finally:
        runtime.engine.dispose()
    for record in records:
        state = "revoked" if record.revoked_at_ns is not None else "active"
        admin = "\tnetwork-admin" if record.network_admin else ""
        typer.echo(
            f"{record.key_id}\t{record.key_prefix}…\t{record.kind.value}\t"
            f"{record.principal_id}\t{state}{admin}"
        )
