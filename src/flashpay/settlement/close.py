"""Close a window: positions by set-based SQL, member files, results digest — once.

``close_window`` for the window ending at cut-off ``end_ns`` (it starts where the last closed
window ended):

1. refused (``window_not_due``) before ``end_ns`` plus the close delay;
2. if the window is already closed, its stored result is returned (idempotent);
3. reads the window's pair sums (one ``GROUP BY``) and writes every member's files (one more),
   deterministically, each file renamed into place;
4. checks the figures (positions sum to zero; each member's own books agree; every file's lines
   add up to the member's position) — a failure is a broken invariant, not a refusal;
5. in ONE transaction inserts the window (``closed``), its positions, its cleared moves and its
   files' digests. The window's id is derived from its start, so two closers racing insert the
   same primary key and one of them fails and rereads. Commit point: before it, a kill leaves
   nothing but files that a rerun rewrites to the same bytes; after it, the close is done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from flashpay.clock import NS_PER_SECOND
from flashpay.errors import invariant
from flashpay.institutions.chart import TransferCode
from flashpay.ledger.ids import derive_id
from flashpay.ledger.windows import window_pair_sums
from flashpay.platform import Platform
from flashpay.settlement import camt053
from flashpay.settlement.chart import SettlementChart, settlement_chart
from flashpay.settlement.clearing import WrittenFile, file_record, write_clearing_files
from flashpay.settlement.errors import SettlementError, SettlementRefusal
from flashpay.settlement.models import (
    settlement_files,
    settlement_moves,
    settlement_positions,
    settlement_windows,
)
from flashpay.settlement.positions import Position, moves, positions
from flashpay.settlement.queries import Window, last_window, window_by_id
from flashpay.settlement.windows import Schedule

RESULTS_RECIPE = "flashpay.settlement.results.v1"


def window_id_for(start_ns: int) -> int:
    return derive_id("flashpay.settlement.window", str(start_ns))


@dataclass(frozen=True, slots=True)
class CloseResult:
    window: Window
    positions: tuple[Position, ...]
    created: bool  # False: it was closed already


def results_digest(window_id: int, start_ns: int, end_ns: int, figures: list[Position],
                   files: list[WrittenFile]) -> str:  # fmt: skip
    """SHA-256 over the canonical JSON of the window's results (sorted keys, no spaces):
    ``{"recipe", "window", "start_ns", "end_ns", "positions": [...], "files": {member: {kind:
    sha256}}}``. The settlement chain's commitment is these 32 bytes, so the audit log binds
    every settled window's figures; a member recomputes it from its report."""
    doc = {
        "recipe": RESULTS_RECIPE,
        "window": window_id,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "positions": [asdict(p) for p in figures],
        "files": {},
    }
    by_member: dict[str, dict[str, str]] = {}
    for f in files:
        by_member.setdefault(f.member, {})[f.kind] = f.sha256
    doc["files"] = by_member
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def close_window(
    *, platform: Platform, end_ns: int, schedule: Schedule, directory: Path
) -> CloseResult:
    """Close the window ending at ``end_ns`` (see the module docstring)."""
    chart = settlement_chart(platform=platform)
    now = platform.clock.now_ns()
    if now < end_ns + schedule.close_delay_seconds * NS_PER_SECOND:
        raise SettlementError(
            SettlementRefusal.WINDOW_NOT_DUE,
            f"the window ending {end_ns} may close {schedule.close_delay_seconds} s after it",
        )
    with platform.engine.connect() as connection:
        last = last_window(connection)
        if last is not None and end_ns <= last.end_ns:
            found = _closed_ending(connection, end_ns)
            invariant(found is not None, f"{end_ns} is inside a closed window, not a cut-off")
            assert found is not None
            return CloseResult(found, _positions(connection, found.id), created=False)
    start_ns = 0 if last is None else last.end_ns
    invariant(end_ns > start_ns, "a window ends after it starts")
    window_id = window_id_for(start_ns)
    out = directory / f"{window_id}"
    header = {"layout": "flashpay.clearing.v1", "window": window_id, "start_ns": start_ns,
              "end_ns": end_ns, "currency": "CNY"}  # fmt: skip
    with platform.engine.connect() as connection:
        sums = window_pair_sums(
            connection, chain_id_min=start_ns, chain_id_max=end_ns, account_ids=chart.read,
            exclude_codes=(int(TransferCode.SETTLEMENT),),
        )  # fmt: skip
        files, counts, file_nets = write_clearing_files(
            connection, chart=chart, directory=out, start_ns=start_ns, end_ns=end_ns,
            header=header,
        )  # fmt: skip
        connection.rollback()
    figures = positions(chart, sums, counts)
    cleared = moves(chart, sums)
    _check(chart, figures, file_nets)
    files += _statements(chart, window_id, start_ns, end_ns, figures, out)
    digest = results_digest(window_id, start_ns, end_ns, figures, files)
    files.append(_report(window_id, start_ns, end_ns, figures, digest, out))
    total = sum(counts.values())
    try:
        with platform.engine.begin() as connection:
            connection.execute(
                settlement_windows.insert().values(
                    id=window_id, start_ns=start_ns, end_ns=end_ns, state="closed",
                    closed_at_ns=now, results_digest=digest, transactions=total,
                )
            )  # fmt: skip
            connection.execute(
                settlement_positions.insert(),
                [{"window_id": window_id, **asdict(p)} for p in figures],
            )
            owners = chart.cleared
            if cleared:
                connection.execute(
                    settlement_moves.insert(),
                    [{"window_id": window_id, "account_id": a, "member": owners[a],
                      "net_debit_fen": d} for a, d in cleared.items()],
                )  # fmt: skip
            connection.execute(
                settlement_files.insert(),
                [{"window_id": window_id, "member": f.member, "kind": f.kind,
                  "path": str(f.path), "sha256": f.sha256, "bytes": f.size_bytes}
                 for f in files],
            )  # fmt: skip
            # commit point: the window is closed
    except sa.exc.IntegrityError:
        with platform.engine.connect() as connection:  # another closer won the race
            found = window_by_id(connection, window_id)
            invariant(found is not None and found.end_ns == end_ns, "a rival closed it otherwise")
            assert found is not None
            return CloseResult(found, _positions(connection, window_id), created=False)
    with platform.engine.connect() as connection:
        window = window_by_id(connection, window_id)
    assert window is not None
    return CloseResult(window, tuple(figures), created=True)


def _check(chart: SettlementChart, figures: list[Position], file_nets: dict[str, int]) -> None:
    invariant(sum(p.net_fen for p in figures) == 0, "positions do not sum to zero")
    for p in figures:
        invariant(p.net_fen == p.books_net_fen,
                  f"{p.member}: position {p.net_fen} != its books {p.books_net_fen}")  # fmt: skip
        invariant(
            file_nets.get(p.member, 0) == p.net_fen,
            f"{p.member}: clearing file adds to {file_nets.get(p.member)}, not {p.net_fen}",
        )
    invariant(len(figures) == len(chart.members), "a position per member")


def _statements(chart: SettlementChart, window_id: int, start_ns: int, end_ns: int,
                figures: list[Position], out: Path) -> list[WrittenFile]:  # fmt: skip
    files = []
    for p in figures:
        data = camt053.statement(
            window_id=window_id, start_ns=start_ns, end_ns=end_ns, position=p,
            account=str(chart.member(p.member).bank_account), bank=chart.bank,
        )  # fmt: skip
        path = out / f"{p.member}.camt053.xml"
        _write(path, data)
        files.append(file_record(p.member, "camt053", path))
    return files


def _report(window_id: int, start_ns: int, end_ns: int, figures: list[Position], digest: str,
            out: Path) -> WrittenFile:  # fmt: skip
    """The settlement report: every member's figures and the results digest (one file, the
    same for all members: positions are multilateral, each member sees all nets)."""
    doc = {"layout": "flashpay.settlement-report.v1", "window": window_id, "start_ns": start_ns,
           "end_ns": end_ns, "results_digest": digest,
           "positions": [asdict(p) for p in figures],
           "sum_of_positions_fen": sum(p.net_fen for p in figures)}  # fmt: skip
    path = out / "report.json"
    _write(path, (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode())
    return file_record("*", "report", path)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _closed_ending(connection: sa.Connection, end_ns: int) -> Window | None:
    row = connection.execute(
        sa.select(settlement_windows.c.id).where(settlement_windows.c.end_ns == end_ns)
    ).first()
    return None if row is None else window_by_id(connection, int(row.id))


def _positions(connection: sa.Connection, window_id: int) -> tuple[Position, ...]:
    from flashpay.settlement.queries import window_positions

    return tuple(window_positions(connection, window_id))
