"""The member's statement for a window in ISO 20022 camt.053 (BankToCustomerStatement, v08).

No camt.053 XSD ships in a package we can install here, so the statement is checked against the
structure documented below (``check_statement``), the subset of the message flashpay writes:

``Document/BkToCstmrStmt``
    ``GrpHdr``: ``MsgId`` (``FP<window id>-<member>``), ``CreDtTm`` (the window's end)
    ``Stmt``: ``Id``, ``CreDtTm``, ``FrToDt/FrDtTm``, ``FrToDt/ToDtTm``,
    ``Acct/Id/Othr/Id`` (the member's settlement account at the bank), ``Acct/Ccy`` (CNY),
    ``Acct/Svcr/FinInstnId/Othr/Id`` (the settlement bank's code),
    two ``Bal`` (``Tp/CdOrPrtry/Cd`` ``OPBD`` then ``CLBD``; ``Amt Ccy="CNY"``, ``CdtDbtInd``,
    ``Dt/DtTm``): the window's settlement sub-ledger opens at zero and closes at the net
    position,
    one ``Ntry`` per non-zero figure (gross owed, gross owed by it, interchange, network fee,
    MDR, promotion funding, other): ``Amt``, ``CdtDbtInd``, ``Sts/Cd`` ``BOOK``,
    ``BookgDt/DtTm``, ``ValDt/DtTm``,
    ``BkTxCd/Prtry/Cd`` (the figure's name), ``AddtlNtryInf``.

Amounts are yuan with two decimals, formatted from the integer fen (never a float).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from flashpay.settlement.positions import Position

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
ENTRY_CODES = ("OWED", "OWES", "INTERCHANGE", "NETWORK_FEE", "MDR", "PROMOTION", "OTHER")


def _yuan(fen: int) -> str:
    return f"{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _dt(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: ET.Element, path: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = parent
    for name in path.split("/"):
        node = ET.SubElement(node, f"{{{NAMESPACE}}}{name}")
    node.attrib.update(attrs)
    if text is not None:
        node.text = text
    return node


def statement(
    *, window_id: int, start_ns: int, end_ns: int, position: Position, account: str, bank: str
) -> bytes:
    """The camt.053 document of ``position`` (deterministic bytes)."""
    ET.register_namespace("", NAMESPACE)
    root = ET.Element(f"{{{NAMESPACE}}}Document")
    message = _sub(root, "BkToCstmrStmt")
    header = _sub(message, "GrpHdr")
    _sub(header, "MsgId", f"FP{window_id}-{position.member}")
    _sub(header, "CreDtTm", _dt(end_ns))
    stmt = _sub(message, "Stmt")
    _sub(stmt, "Id", f"{window_id}-{position.member}")
    _sub(stmt, "CreDtTm", _dt(end_ns))
    period = _sub(stmt, "FrToDt")
    _sub(period, "FrDtTm", _dt(start_ns))
    _sub(period, "ToDtTm", _dt(end_ns))
    acct = _sub(stmt, "Acct")
    _sub(acct, "Id/Othr/Id", account)
    _sub(acct, "Ccy", "CNY")
    _sub(acct, "Svcr/FinInstnId/Othr/Id", bank)
    for code, fen in (("OPBD", 0), ("CLBD", position.net_fen)):
        bal = _sub(stmt, "Bal")
        _sub(bal, "Tp/CdOrPrtry/Cd", code)
        _sub(bal, "Amt", _yuan(fen), Ccy="CNY")
        _sub(bal, "CdtDbtInd", "CRDT" if fen >= 0 else "DBIT")
        _sub(bal, "Dt/DtTm", _dt(end_ns))
    p = position
    figures = (
        ("OWED", p.owed_fen, "CRDT"),
        ("OWES", p.owes_fen, "DBIT"),
        ("INTERCHANGE", p.interchange_fen, "CRDT"),
        ("NETWORK_FEE", p.network_fee_fen, "CRDT"),
        ("MDR", p.mdr_fen, "CRDT"),
        ("PROMOTION", p.promotion_fen, "CRDT"),
        ("OTHER", p.other_fen, "CRDT"),
    )
    for code, fen, side in figures:
        if fen == 0:
            continue
        if fen < 0:
            side = "DBIT" if side == "CRDT" else "CRDT"
        entry = _sub(stmt, "Ntry")
        _sub(entry, "Amt", _yuan(fen), Ccy="CNY")
        _sub(entry, "CdtDbtInd", side)
        _sub(entry, "Sts/Cd", "BOOK")
        _sub(entry, "BookgDt/DtTm", _dt(end_ns))
        _sub(entry, "ValDt/DtTm", _dt(end_ns))
        _sub(entry, "BkTxCd/Prtry/Cd", code)
        _sub(entry, "AddtlNtryInf", f"window {window_id} {code.lower()}")
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _one(parent: ET.Element, path: str, where: str, problems: list[str]) -> ET.Element | None:
    found = parent.findall("/".join(f"{{{NAMESPACE}}}{p}" for p in path.split("/")))
    if len(found) != 1:
        problems.append(f"{where}/{path}: expected 1, found {len(found)}")
        return None
    return found[0]


def check_statement(data: bytes) -> list[str]:
    """Where ``data`` departs from the documented structure (empty: it conforms)."""
    problems: list[str] = []
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        return [f"not XML: {exc}"]
    if root.tag != f"{{{NAMESPACE}}}Document":
        return [f"root is {root.tag}, not camt.053.001.08 Document"]
    message = _one(root, "BkToCstmrStmt", "Document", problems)
    if message is None:
        return problems
    for path in ("GrpHdr/MsgId", "GrpHdr/CreDtTm"):
        _one(message, path, "BkToCstmrStmt", problems)
    stmt = _one(message, "Stmt", "BkToCstmrStmt", problems)
    if stmt is None:
        return problems
    for path in ("Id", "CreDtTm", "FrToDt/FrDtTm", "FrToDt/ToDtTm", "Acct/Id/Othr/Id",
                 "Acct/Ccy", "Acct/Svcr/FinInstnId/Othr/Id"):  # fmt: skip
        _one(stmt, path, "Stmt", problems)
    ns = f"{{{NAMESPACE}}}"
    balances = stmt.findall(f"{ns}Bal")
    codes = [b.findtext(f"{ns}Tp/{ns}CdOrPrtry/{ns}Cd") for b in balances]
    if codes != ["OPBD", "CLBD"]:
        problems.append(f"Stmt/Bal: expected OPBD then CLBD, found {codes}")
    for n, item in enumerate([*balances, *stmt.findall(f"{ns}Ntry")]):
        where = f"Stmt/{item.tag.removeprefix(ns)}[{n}]"
        amount = _one(item, "Amt", where, problems)
        if amount is not None:
            text = amount.text or ""
            whole, _, cents = text.partition(".")
            if not (whole.isdigit() and len(cents) == 2 and cents.isdigit()):
                problems.append(f"{where}/Amt: {text!r} is not an amount with 2 decimals")
            if amount.get("Ccy") != "CNY":
                problems.append(f"{where}/Amt: currency {amount.get('Ccy')!r}")
        side = item.findtext(f"{ns}CdtDbtInd")
        if side not in ("CRDT", "DBIT"):
            problems.append(f"{where}/CdtDbtInd: {side!r}")
        if item.tag == f"{ns}Ntry":
            if item.findtext(f"{ns}Sts/{ns}Cd") != "BOOK":
                problems.append(f"{where}/Sts/Cd: not BOOK")
            if item.findtext(f"{ns}BkTxCd/{ns}Prtry/{ns}Cd") not in ENTRY_CODES:
                problems.append(f"{where}/BkTxCd: unknown code")
    return problems


def closing_balance_fen(data: bytes) -> int:
    """The statement's closing balance in fen (signed: DBIT negative)."""
    ns = f"{{{NAMESPACE}}}"
    root = ET.fromstring(data)
    for bal in root.iter(f"{ns}Bal"):
        if bal.findtext(f"{ns}Tp/{ns}CdOrPrtry/{ns}Cd") == "CLBD":
            whole, _, cents = (bal.findtext(f"{ns}Amt") or "0.00").partition(".")
            fen = int(whole) * 100 + int(cents)
            return -fen if bal.findtext(f"{ns}CdtDbtInd") == "DBIT" else fen
    raise ValueError("no closing balance")


def sum_entries_fen(data: bytes, codes: Sequence[str] = ENTRY_CODES) -> int:
    """The signed sum of the statement's entries with these codes (CRDT positive)."""
    ns = f"{{{NAMESPACE}}}"
    total = 0
    for entry in ET.fromstring(data).iter(f"{ns}Ntry"):
        if entry.findtext(f"{ns}BkTxCd/{ns}Prtry/{ns}Cd") not in codes:
            continue
        whole, _, cents = (entry.findtext(f"{ns}Amt") or "0.00").partition(".")
        fen = int(whole) * 100 + int(cents)
        total += fen if entry.findtext(f"{ns}CdtDbtInd") == "CRDT" else -fen
    return total
