"""Gates' journals uploaded to the network: idempotent per (gate, tap sequence number).

A gate numbers its taps 1, 2, 3 … in its journal and uploads them in batches, retrying a batch
until the network answers. ``record_taps`` inserts each tap with ``ON CONFLICT DO NOTHING`` on
the primary key ``(gate_id, seq)``, so a batch sent twice (the answer to the first was lost, the
gate was killed mid-upload) adds nothing the second time, and the answer says how many were new.

The gate's clock may drift: the batch carries the gate's clock at sending, and each tap's
``corrected_at_ns`` is its time minus the gate's offset then (a gate that was offline all day
has drifted about as much at upload as at the taps; what remains is matched within
``trips.CLOCK_SKEW_SECONDS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flashpay.platform import Platform
from flashpay.transit.errors import TransitError, TransitRefusal
from flashpay.transit.models import transit_taps
from flashpay.transit.trips import TapKind

UPLOAD_TAPS_MAX = 5000
CLOCK_OFFSET_IGNORED_NS = 2 * 1_000_000_000  # below this the gate's clock is taken as is


@dataclass(frozen=True, slots=True)
class UploadedTap:
    seq: int
    token: str
    station: str
    kind: TapKind
    at_ns: int
    digest: bytes
    deny_version: int


@dataclass(frozen=True, slots=True)
class UploadResult:
    received: int
    new: int


def record_taps(
    *, platform: Platform, gate_id: str, gate_clock_ns: int, taps: Sequence[UploadedTap]
) -> UploadResult:
    if len(taps) > UPLOAD_TAPS_MAX:
        raise TransitError(TransitRefusal.TOO_MANY_TAPS, f"at most {UPLOAD_TAPS_MAX} per batch")
    if not taps:
        return UploadResult(0, 0)
    now = platform.clock.now_ns()
    offset = gate_clock_ns - now
    if abs(offset) < CLOCK_OFFSET_IGNORED_NS:
        offset = 0
    rows = [
        {
            "gate_id": gate_id,
            "seq": t.seq,
            "token": t.token,
            "station": t.station,
            "kind": t.kind.value,
            "at_ns": t.at_ns,
            "corrected_at_ns": t.at_ns - offset,
            "digest": t.digest,
            "deny_version": t.deny_version,
            "uploaded_at_ns": now,
        }
        for t in taps
    ]
    dialect = sqlite if platform.engine.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(transit_taps).on_conflict_do_nothing()
    seqs = sorted({t.seq for t in taps})
    with platform.engine.begin() as connection:
        known = connection.execute(
            sa.select(sa.func.count())
            .select_from(transit_taps)
            .where(transit_taps.c.gate_id == gate_id, transit_taps.c.seq.in_(seqs))
        ).scalar_one()
        for start in range(0, len(rows), 500):
            connection.execute(statement, rows[start : start + 500])
    return UploadResult(len(taps), len(seqs) - int(known))
