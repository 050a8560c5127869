"""Clearing files: per member and window, every transaction with its fees (CSV and JSON).

One pass over ``ledger.windows.window_chains`` (one ``GROUP BY chain_id`` over the window) gives
each chain's issuer, acquirer, amounts and fees; each chain becomes a line in the file of every
member it concerns (its issuer, its acquirer or receiving issuer, and the network). The layout
(``COLUMNS``, documented in docs/reference/settlement.md):

``transaction_id``  the chain id (the audit log's key of the transaction)
``record_id``       the payment's or transfer's id (``user_data_64``)
``kind``            ``purchase``, ``refund``, ``p2p_out``, ``p2p_in`` or ``other``
``counterparty``    the other member (the acquirer for an issuer, and so on)
``gross_fen``       what the cardholder paid (or got back: negative for a refund)
``interchange_fen`` the issuer's interchange in it
``network_fee_fen`` the network's fee in it
``net_fen``         what the line adds to this member's net position

Writing is deterministic (rows in chain order, no clock), so a close killed half-way and run
again writes the same bytes; each file goes to a temporary name and is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from flashpay.institutions.chart import TransferCode
from flashpay.institutions.definition import InstitutionKind
from flashpay.ledger.windows import window_chains
from flashpay.settlement.chart import SettlementChart

COLUMNS = (
    "transaction_id",
    "record_id",
    "kind",
    "counterparty",
    "gross_fen",
    "interchange_fen",
    "network_fee_fen",
    "net_fen",
)
LAYOUT = "flashpay.clearing.v1"


@dataclass(frozen=True, slots=True)
class WrittenFile:
    member: str
    kind: str  # clearing_csv, clearing_json, camt053, report
    path: Path
    sha256: str
    size_bytes: int


class _Out:
    """One member's lines being gathered (CSV and JSON forms), with the running totals."""

    def __init__(self, member: str) -> None:
        self.member = member
        self.csv: list[str] = []
        self.json: list[str] = []
        self.net = 0

    def add(self, cid: int, rid: int, kind: str, counterparty: str, gross: int,
            interchange: int, fee: int, net: int) -> None:  # fmt: skip
        values = f"{gross},{interchange},{fee},{net}"
        self.csv.append(f"{cid},{rid},{kind},{counterparty},{values}")
        # kind and counterparty are [a-z0-9_] / [A-Z0-9]: no JSON escaping needed
        self.json.append(f'[{cid},{rid},"{kind}","{counterparty}",{values}]')
        self.net += net

    def finish(self, directory: Path, header: dict[str, Any]) -> list[WrittenFile]:
        csv_path = directory / f"{self.member}.clearing.csv"
        json_path = directory / f"{self.member}.clearing.json"
        body = ",".join(COLUMNS) + "\n" + "".join(line + "\n" for line in self.csv)
        head = json.dumps({**header, "member": self.member, "columns": list(COLUMNS)},
                          sort_keys=True)  # fmt: skip
        rows = ",\n".join(self.json)
        document = head[:-1] + ', "transactions": [\n' + rows + "\n]}\n"
        out = []
        for kind, path, text in (("clearing_csv", csv_path, body),
                                 ("clearing_json", json_path, document)):  # fmt: skip
            tmp = path.with_suffix(path.suffix + ".tmp")
            data = text.encode()
            tmp.write_bytes(data)
            os.replace(tmp, path)
            out.append(WrittenFile(self.member, kind, path, hashlib.sha256(data).hexdigest(),
                                   len(data)))  # fmt: skip
        return out


def file_record(member: str, kind: str, path: Path) -> WrittenFile:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return WrittenFile(member, kind, path, digest.hexdigest(), path.stat().st_size)


def write_clearing_files(
    connection: sa.Connection,
    *,
    chart: SettlementChart,
    directory: Path,
    start_ns: int,
    end_ns: int,
    header: dict[str, Any],
) -> tuple[list[WrittenFile], dict[str, int], dict[str, int]]:
    """Write every member's clearing files for the window; the files, each member's
    transaction count and the sum of its lines' ``net_fen`` (which must equal its position)."""
    directory.mkdir(parents=True, exist_ok=True)
    members = {m.code: m for m in chart.members}
    issuers = [m for m in chart.members if m.kind is InstitutionKind.ISSUER]
    acquirers = [m for m in chart.members if m.kind is InstitutionKind.ACQUIRER]
    network = chart.members[0]
    who: dict[int, str] = {}
    for m in chart.members:
        for a in (*m.network_side, m.income):
            who[a] = m.code
    groups = [
        [m.network_side[0] for m in issuers],  # issuer_receivable: the paying issuer
        [m.network_side[1] for m in issuers],  # issuer_payable: a P2P's receiving issuer
        [m.network_side[0] for m in acquirers],  # acquirer_payable
        [m.income for m in issuers],  # interchange_income
        [network.income],  # fee_income
    ]
    outs = {code: _Out(code) for code in members}
    purchase_codes = (int(TransferCode.PURCHASE), int(TransferCode.PURCHASE_HOLD))
    p2p = int(TransferCode.P2P)
    fee_out = outs[network.code]
    for row in _chains(connection, start_ns, end_ns, groups):
        cid, rid, code, recv, to_network, pay, p2p_in, acq, acq_net, _ich, ich_net = row[:11]
        interchange, fee = -ich_net, -row[12]
        issuer = who.get(recv, "")
        receiver = who.get(pay, "")
        acquirer = who.get(acq, "")
        gross = to_network + interchange
        if code in purchase_codes and acq:
            kind = "purchase" if gross >= 0 else "refund"
        elif code == p2p and pay:
            kind = "p2p_out"
        else:
            kind = "other"
        if issuer:
            outs[issuer].add(cid, rid, kind, acquirer or receiver, gross, interchange, fee,
                             -to_network)  # fmt: skip
        if acquirer:
            outs[acquirer].add(cid, rid, kind, issuer, gross, interchange, fee, -acq_net)
        if receiver:
            outs[receiver].add(cid, rid, "p2p_in", issuer, -p2p_in, 0, 0, -p2p_in)
        if fee:
            fee_out.add(cid, rid, kind, issuer, gross, interchange, fee, fee)
    files: list[WrittenFile] = []
    counts: dict[str, int] = {}
    nets: dict[str, int] = {}
    for code, out in outs.items():
        files += out.finish(directory, header)
        counts[code] = len(out.csv)
        nets[code] = out.net
    return files, counts, nets


def _chains(
    connection: sa.Connection, start_ns: int, end_ns: int, groups: list[list[int]]
) -> Iterator[Any]:
    return window_chains(
        connection,
        chain_id_min=start_ns,
        chain_id_max=end_ns,
        groups=groups,
        exclude_codes=(int(TransferCode.SETTLEMENT),),
    )


def read_clearing_csv(text: str) -> list[dict[str, str]]:
    """The rows of a clearing CSV (the reconciliation's input), header checked by the caller."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
