"""``flashpay qr``: decode, validate and build EMVCo QR payloads (MPM and CPM); render and read
QR code images."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flashpay.cli.common import console, err_console
from flashpay.money import Money, MoneyError
from flashpay.qr.cpm import CpmDecodeError, CpmPayload, decode_cpm, validate_cpm
from flashpay.qr.images import Symbology, kind_of, read_codes, render_barcode, render_qr
from flashpay.qr.merchant_codes import MerchantCodeFields, dynamic_code, static_code
from flashpay.qr.mpm import MpmDecodeError, MpmPayload, QrError, decode_mpm, validate_mpm

app = typer.Typer(help="EMVCo QR codes: MPM and CPM payloads, images.", no_args_is_help=True)


class Mode(StrEnum):
    MPM = "mpm"
    CPM = "cpm"
    AUTO = "auto"


ModeOption = Annotated[
    Mode, typer.Option("--mode", help="mpm, cpm, or auto (MPM text starts with 00, CPM is Base64).")
]


def _mode_of(payload: str, mode: Mode) -> Mode:
    if mode is not Mode.AUTO:
        return mode
    return Mode.MPM if payload[:2] == "00" and payload[:4].isdigit() else Mode.CPM


def _decode_or_exit(payload: str, mode: Mode) -> MpmPayload | CpmPayload:
    actual = _mode_of(payload, mode)
    try:
        return decode_mpm(payload) if actual is Mode.MPM else decode_cpm(payload)
    except (MpmDecodeError, CpmDecodeError) as exc:
        err_console.print(f"invalid {actual.upper()} payload: {exc}", highlight=False)
        raise typer.Exit(2) from exc


@app.command("decode")
def decode(payload: str, mode: ModeOption = Mode.AUTO) -> None:
    """Print every data object as JSON (MPM: id, name, value; CPM: tag, name, value, hex;
    templates nested); exit 2 if the payload is malformed, naming the tag and its position."""
    decoded = _decode_or_exit(payload, mode)
    typer.echo(json.dumps(decoded.as_json(), ensure_ascii=False, indent=2))


@app.command("validate")
def validate(payload: str, mode: ModeOption = Mode.AUTO) -> None:
    """Print every EMVCo rule the payload breaks; exit 1 if any, 2 if it does not decode."""
    decoded = _decode_or_exit(payload, mode)
    violations = validate_mpm(decoded) if isinstance(decoded, MpmPayload) else validate_cpm(decoded)
    kind = "MPM" if isinstance(decoded, MpmPayload) else "CPM"
    if not violations:
        console.print(f"[green]valid[/green]: no EMVCo {kind} violations")
        return
    for violation in violations:
        typer.echo(str(violation))
    raise typer.Exit(1)


@app.command("render")
def render(
    payload: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="file.png or file.svg")],
    barcode: Annotated[
        bool, typer.Option(help="Render a numeric payment code as a Code 128 barcode.")
    ] = False,
    scale: Annotated[int, typer.Option(min=1, max=40, help="Pixels per module.")] = 8,
) -> None:
    """Write ``payload`` as a QR code (or, with --barcode, a 1-D barcode) image."""
    try:
        kind = kind_of(output.name)
        image = (
            render_barcode(payload, kind, scale=max(1, scale // 3))
            if barcode
            else render_qr(payload, kind, scale=scale)
        )
    except QrError as exc:
        err_console.print(f"cannot render: {exc}", highlight=False)
        raise typer.Exit(2) from exc
    output.write_bytes(image)
    console.print(f"wrote {output} ({len(image):,} bytes)", highlight=False)


@app.command("read")
def read(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="PNG/JPEG image.")],
    decode_payload: Annotated[
        bool, typer.Option("--decode", help="Decode each code found as MPM or CPM JSON.")
    ] = False,
) -> None:
    """Print the payload of every QR code or barcode in an image; exit 2 if there is none."""
    try:
        codes = read_codes(image.read_bytes())
    except QrError as exc:
        err_console.print(f"cannot read {image}: {exc}", highlight=False)
        raise typer.Exit(2) from exc
    if not codes:
        err_console.print(f"no code found in {image}", highlight=False)
        raise typer.Exit(2)
    for code in codes:
        if decode_payload and code.symbology is Symbology.QR:
            decoded = _decode_or_exit(code.text, Mode.AUTO)
            typer.echo(json.dumps(decoded.as_json(), ensure_ascii=False, indent=2))
        else:
            typer.echo(code.text)


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
