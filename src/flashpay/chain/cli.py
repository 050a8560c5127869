"""``flashpay chain`` (the network's log) and ``flashpay witness`` (a member's witness)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Annotated

import typer

from flashpay.chain import note
from flashpay.chain.audit import audit
from flashpay.chain.publisher import Publisher, WitnessEndpoint
from flashpay.chain.receipt import (
    ReceiptError,
    build_receipt,
    load_receipt,
    parse_trust,
    verify_receipt,
)
from flashpay.chain.service import DEFAULT_ORIGIN, ChainLog
from flashpay.cli.common import DataDirOption, DbOption, console, err_console, resolve_db
from flashpay.ledger.service import Ledger

app = typer.Typer(help="The consortium audit log: append, publish, audit, receipts.")
witness_app = typer.Typer(help="A member institution's witness of the audit log.")
FINDINGS_SHOWN_MAX = 50

KeyFile = Annotated[Path, typer.Option("--key", help="File holding a PRIVATE+KEY+… signer key.")]
OriginOption = Annotated[
    str, typer.Option("--origin", help="The log's origin (its checkpoint key name).")
]


def _write_key(out: Path, skey: str, vkey: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(skey + "\n")
    out.with_name(out.name + ".pub").write_text(vkey + "\n")
    console.print(vkey)


def _read_key_text(value: str) -> str:
    """A key given inline or as a file holding it."""
    path = Path(value)
    return path.read_text().strip() if path.exists() else value.strip()


@app.command("keygen")
def keygen(
    name: Annotated[str, typer.Argument(help="Key name: the log's origin.")] = DEFAULT_ORIGIN,
    out: Annotated[Path, typer.Option("--out", help="Signer key file (0600).")] = Path("log.key"),
) -> None:
    """Generate the log's Ed25519 key; writes FILE and FILE.pub, prints the verifier key."""
    skey, vkey = note.generate_key(name)
    _write_key(out, skey, vkey)


@app.command("append")
def append_command(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Append every committed chain waiting in the ledger's outbox to the log."""
    url = resolve_db(db, data_dir)
    with Ledger.open(url) as ledger, ChainLog.open(url) as log:
        count = log.sync_from_ledger(ledger)
        console.print(f"appended {count:,} leaves; tree size {log.size():,}")


@app.command("publish")
def publish_command(
    key: KeyFile,
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="A witness as 'URL VERIFIER_KEY' (repeat per witness)."),
    ] = None,
    quorum: Annotated[int, typer.Option(help="Cosignatures that make a checkpoint final.")] = 0,
    every_seconds: Annotated[float, typer.Option(help="Publish at least this often.")] = 10.0,
    every_leaves: Annotated[int, typer.Option(help="…or after this many new leaves.")] = 10_000,
    once: Annotated[bool, typer.Option(help="Append, publish one checkpoint, exit.")] = False,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Append from the ledger and publish checkpoints, collecting witness cosignatures."""
    url = resolve_db(db, data_dir)
    signer = note.parse_signer(_read_key_text(str(key)))
    endpoints = []
    for spec in witness or []:
        wurl, _, vkey = spec.partition(" ")
        endpoints.append(WitnessEndpoint(wurl, note.parse_verifier(_read_key_text(vkey))))
    with Ledger.open(url) as ledger, ChainLog.open(url, origin=signer.name) as log:
        publisher = Publisher(log, signer=signer, witnesses=endpoints, quorum=quorum)
        try:
            if once:
                log.sync_from_ledger(ledger)
                checkpoint, outcomes = publisher.publish()
                for o in outcomes:
                    status = "cosigned" if o.cosigned else f"{o.status}: {o.detail.strip()}"
                    console.print(f"  {o.witness}: {status}")
                final = "final" if checkpoint.final_at_ns is not None else "not final"
                console.print(f"checkpoint {checkpoint.size:,} ({final})")
                return
            stop = threading.Event()
            try:
                publisher.run(
                    ledger, every_seconds=every_seconds, every_leaves=every_leaves, stop=stop
                )
            except KeyboardInterrupt:
                stop.set()
        finally:
            publisher.close()


@app.command("status")
def status_command(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Tree size, the latest checkpoint, and what each witness last cosigned."""
    url = resolve_db(db, data_dir)
    with ChainLog.open(url) as log:
        latest = log.latest_checkpoint(final_only=False)
        final = log.latest_checkpoint(final_only=True)
        console.print(f"tree size {log.size():,}")
        if latest is None:
            console.print("no checkpoint yet")
            return
        console.print(
            f"latest checkpoint {latest.size:,} root {latest.root_hash.hex()} "
            f"({'final' if latest.final_at_ns is not None else 'not final'})"
        )
        console.print(f"latest final checkpoint {final.size:,}" if final else "none final")
        for name, size in sorted(log.cosigned_sizes().items()):
            console.print(f"  witness {name}: cosigned up to {size:,}")


@app.command("audit")
def audit_command(
    keys: Annotated[
        Path | None, typer.Option("--keys", help="Keys file to verify checkpoint signatures.")
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Re-derive every leaf from the ledger, rebuild the tree, check every checkpoint; exit 1 on
    any difference, naming its position."""
    url = resolve_db(db, data_dir)
    trust = parse_trust(keys.read_text()) if keys else None
    with Ledger.open(url) as ledger, ChainLog.open(url) as log:
        report = audit(log, ledger, trust=trust)
    console.print(
        f"tree size {report.tree_size:,}, {report.leaves_checked:,} leaves, "
        f"{report.ledger_chains:,} ledger chains ({report.pending_in_outbox:,} in the outbox), "
        f"{report.checkpoints_checked:,} checkpoints"
    )
    if report.ok:
        console.print("[green]ok[/green]: the log matches the ledger and every checkpoint")
        return
    for finding in report.findings[:FINDINGS_SHOWN_MAX]:
        err_console.print(f"[red]{finding}[/red]", highlight=False)
    err_console.print(f"[red]{len(report.findings)} finding(s)[/red]")
    raise typer.Exit(1)


@app.command("receipt")
def receipt_command(
    chain_id: int,
    out: Annotated[Path | None, typer.Option("--out")] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print (or write) the receipt of a ledger chain once it is in a final checkpoint."""
    url = resolve_db(db, data_dir)
    with ChainLog.open(url) as log:
        found = build_receipt(log, chain_id)
    if found is None:
        err_console.print(f"chain {chain_id} is not in a final checkpoint yet")
        raise typer.Exit(1)
    text = json.dumps(found, indent=1)
    if out:
        out.write_text(text + "\n")
    else:
        typer.echo(text)


@app.command("verify-receipt")
def verify_receipt_command(
    receipt: Annotated[Path, typer.Argument(help="receipt.json")],
    keys: Annotated[Path, typer.Option("--keys", help="Keys file: log key, witness keys.")],
) -> None:
    """Verify a receipt offline with the public keys alone; exit 1 if it does not verify."""
    try:
        verified = verify_receipt(load_receipt(receipt.read_text()), parse_trust(keys.read_text()))
    except (ReceiptError, ValueError) as exc:
        err_console.print(f"[red]receipt does not verify[/red]: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    leaf = verified.leaf
    console.print(
        f"[green]ok[/green]: chain {leaf.chain_id} is leaf {leaf.leaf_index} of the tree of "
        f"{verified.checkpoint.size:,} leaves, cosigned by {', '.join(verified.cosigners) or '-'}",
        highlight=False,
    )
    for t in leaf.transfers:
        console.print(
            f"  transfer {t.id}: {t.amount} from {t.debit_account_id} to {t.credit_account_id} "
            f"(ledger {t.ledger}, code {t.code}, at {t.timestamp})",
            highlight=False,
        )


@app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option(help="TCP port.")] = 8100,
    host: Annotated[str, typer.Option(help="Interface.")] = "127.0.0.1",
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Serve the log's read API (/v1/chain/*) alone, e.g. for witnesses to fetch proofs."""
    import uvicorn
    from fastapi import FastAPI

    from flashpay.api.errors import install_error_handlers
    from flashpay.chain.api import mount

    url = resolve_db(db, data_dir)
    log = ChainLog.open(url)
    server_app = FastAPI(title="flashpay audit log")
    install_error_handlers(server_app)
    mount(server_app, log)
    try:
        uvicorn.run(server_app, host=host, port=port, log_level="warning")
    finally:
        log.close()


@witness_app.command("keygen")
def witness_keygen(
    name: Annotated[str, typer.Argument(help="Witness name, e.g. witness.bank-a.example.")],
    out: Annotated[Path, typer.Option("--out", help="Signer key file (0600).")] = Path(
        "witness.key"
    ),
) -> None:
    """Generate a witness's cosignature/v1 key; writes FILE and FILE.pub."""
    skey, vkey = note.generate_key(name, note.COSIGNATURE_V1)
    _write_key(out, skey, vkey)


@witness_app.command("serve")
def witness_serve(
    key: KeyFile,
    log_key: Annotated[str, typer.Option("--log-key", help="The log's verifier key (or file).")],
    state: Annotated[Path, typer.Option("--state", help="The witness's durable state file.")],
    log_url: Annotated[
        str | None, typer.Option("--log-url", help="The log's API, to fetch proofs from.")
    ] = None,
    port: Annotated[int, typer.Option(help="TCP port.")] = 8200,
    host: Annotated[str, typer.Option(help="Interface.")] = "127.0.0.1",
) -> None:
    """Run a witness: verify the log's checkpoints and consistency proofs, cosign, keep state."""
    import uvicorn

    from flashpay.chain.witness import Witness, create_app

    witness = Witness(
        signer=note.parse_signer(_read_key_text(str(key))),
        log_verifier=note.parse_verifier(_read_key_text(log_key)),
        state_path=state,
        log_url=log_url,
    )
    console.print(f"witness {witness.signer.name} of {witness.origin} at size {witness.state.size}")
    uvicorn.run(create_app(witness), host=host, port=port, log_level="warning")
