"""``flashpay qr``: decode, validate and build EMVCo merchant-presented QR payloads."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flashpay.cli.common import console, err_console
from flashpay.money import Money, MoneyError
from flashpay.qr.merchant_codes import MerchantCodeFields, dynamic_code, static_code
from flashpay.qr.mpm import MpmDecodeError, MpmPayload, QrError, decode_mpm, validate_mpm

app = typer.Typer(help="EMVCo QR codes (merchant-presented mode).", no_args_is_help=True)


def _decode_or_exit(payload: str) -> MpmPayload:
    try:
        return decode_mpm(payload)
    except MpmDecodeError as exc:
        err_console.print(f"invalid MPM payload: {exc}", highlight=False)
        raise typer.Exit(2) from exc


@app.command("decode")
def decode(payload: str) -> None:
    """Print every data object as JSON (tag id, name, value; templates nested); exit 2 if the
    payload is malformed, naming the tag and the character position."""
    decoded = _decode_or_exit(payload)
    typer.echo(json.dumps(decoded.as_json(), ensure_ascii=False, indent=2))


@app.command("validate")
def validate(payload: str) -> None:
    """Print every EMVCo rule the payload breaks; exit 1 if any, 2 if it does not decode."""
    violations = validate_mpm(_decode_or_exit(payload))
    if not violations:
        console.print("[green]valid[/green]: no EMVCo MPM violations")
        return
    for violation in violations:
        typer.echo(str(violation))
    raise typer.Exit(1)


@app.command("encode")
def encode(
    merchant_id: Annotated[str, typer.Option(help="15-character merchant ID.")],
    name: Annotated[str, typer.Option(help="Display name (≤ 25 characters).")],
    city: Annotated[str, typer.Option(help="City (≤ 15 characters).")],
    mcc: Annotated[str, typer.Option(help="Merchant category code (4 digits).")],
    terminal_id: Annotated[str, typer.Option(help="Terminal ID.")] = "T0001",
    acquirer_iin: Annotated[str, typer.Option(help="Acquirer IIN (8 digits).")] = "48020000",
    forwarding_iin: Annotated[str, typer.Option(help="Forwarding IIN (8 digits).")] = "00010000",
    amount: Annotated[str | None, typer.Option(help="Amount (makes a dynamic code).")] = None,
    currency: Annotated[str, typer.Option(help="Currency code.")] = "CNY",
    bill_number: Annotated[str | None, typer.Option(help="Bill number (dynamic).")] = None,
    reference: Annotated[str | None, typer.Option(help="Order reference (dynamic).")] = None,
) -> None:
    """Build a flashpay merchant code: static without --amount, dynamic with it."""
    fields = MerchantCodeFields(
        merchant_id, terminal_id, name, city, mcc, acquirer_iin, forwarding_iin
    )
    try:
        if amount is None:
            typer.echo(static_code(fields))
        else:
            money = Money.parse(amount, currency)
            typer.echo(
                dynamic_code(
                    fields,
                    amount=money,
                    bill_number=bill_number or "BILL0001",
                    reference=reference or bill_number or "BILL0001",
                )
            )
    except (QrError, MoneyError) as exc:
        err_console.print(f"cannot build the code: {exc}", highlight=False)
        raise typer.Exit(2) from exc
