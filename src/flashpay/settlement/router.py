"""``/v1/settlement``: windows, positions, member files, reconciliation (thin; see
docs/reference/settlement.md).

Any institution key lists the windows. A member reads only its own positions and files, and
reconciles only its own record: asking for another member's is a 404 (the API's rule for another
caller's resource). The network operator's admin key reads every member's and closes and settles
windows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.responses import Response

from flashpay.api.deps import CurrentInstitution, CurrentNetworkAdmin, ServicesDep
from flashpay.api.errors import not_found
from flashpay.api.security import Principal
from flashpay.institutions.service import institution_code
from flashpay.platform import Platform
from flashpay.settlement.close import close_window
from flashpay.settlement.errors import SettlementError, SettlementRefusal
from flashpay.settlement.queries import (
    WINDOWS_PAGE_MAX,
    list_windows,
    window_by_id,
    window_files,
    window_positions,
)
from flashpay.settlement.reconcile import reconcile_window
from flashpay.settlement.schemas import (
    BreakOut,
    CloseIn,
    FileOut,
    PositionOut,
    ReconciliationIn,
    ReconciliationOut,
    WindowOut,
)
from flashpay.settlement.service import files_directory, schedule_from_environment
from flashpay.settlement.settle import settle_window

router = APIRouter(tags=["settlement"])
_MEDIA = {"clearing_csv": "text/csv", "clearing_json": "application/json",
          "camt053": "application/xml", "report": "application/json"}  # fmt: skip


def _member(platform: Platform, caller: Principal, member: str) -> None:
    """404 unless ``caller`` is ``member`` or the network's admin."""
    if caller.network_admin:
        return
    if institution_code(platform=platform, institution_id=caller.id) != member:
        raise not_found("member")


def _window(platform: Platform, window_id: int) -> WindowOut:
    with platform.engine.connect() as connection:
        found = window_by_id(connection, window_id)
    if found is None:
        raise SettlementError(SettlementRefusal.WINDOW_NOT_FOUND, f"no window {window_id}")
    return WindowOut(**dataclasses.asdict(found))


@router.get("/v1/settlement/windows", response_model=list[WindowOut])
def windows(
    platform: ServicesDep,
    _caller: CurrentInstitution,
    limit: int = Query(default=50, ge=1, le=WINDOWS_PAGE_MAX),
) -> list[WindowOut]:
    """The closed and settled windows, oldest first."""
    with platform.engine.connect() as connection:
        found = list_windows(connection, limit=limit)
    return [WindowOut(**dataclasses.asdict(w)) for w in found]


@router.get("/v1/settlement/windows/{window_id}", response_model=WindowOut)
def window(platform: ServicesDep, _caller: CurrentInstitution, window_id: int) -> WindowOut:
    return _window(platform, window_id)


@router.get("/v1/settlement/windows/{window_id}/positions/{member}", response_model=PositionOut)
def position(
    platform: ServicesDep, caller: CurrentInstitution, window_id: int, member: str
) -> PositionOut:
    """One member's figures for the window (the member itself, or the network's admin)."""
    _member(platform, caller, member)
    _window(platform, window_id)
    with platform.engine.connect() as connection:
        found = [p for p in window_positions(connection, window_id) if p.member == member]
    if not found:
        raise not_found("member")
    return PositionOut(**dataclasses.asdict(found[0]))


@router.get("/v1/settlement/windows/{window_id}/files/{member}", response_model=list[FileOut])
def files(
    platform: ServicesDep, caller: CurrentInstitution, window_id: int, member: str
) -> list[FileOut]:
    _member(platform, caller, member)
    _window(platform, window_id)
    with platform.engine.connect() as connection:
        found = window_files(connection, window_id)
    return [FileOut(member=f.member, kind=f.kind, sha256=f.sha256, size_bytes=f.size_bytes)
            for f in found if f.member in (member, "*")]  # fmt: skip


@router.get("/v1/settlement/windows/{window_id}/files/{member}/{kind}")
def file(
    platform: ServicesDep, caller: CurrentInstitution, window_id: int, member: str, kind: str
) -> Response:
    """The file's bytes (``clearing_csv``, ``clearing_json``, ``camt053``, ``report``)."""
    _member(platform, caller, member)
    with platform.engine.connect() as connection:
        found = [f for f in window_files(connection, window_id)
                 if f.kind == kind and f.member in (member, "*")]  # fmt: skip
    if not found:
        raise not_found("file")
    return Response(Path(found[0].path).read_bytes(), media_type=_MEDIA.get(kind))


@router.post(
    "/v1/settlement/windows/{window_id}/reconciliation/{member}",
    response_model=ReconciliationOut,
)
def reconcile(
    platform: ServicesDep,
    caller: CurrentInstitution,
    window_id: int,
    member: str,
    body: ReconciliationIn,
) -> ReconciliationOut:
    """Compare the member's record (clearing CSV layout) with its clearing file."""
    _member(platform, caller, member)
    _window(platform, window_id)
    with platform.engine.connect() as connection:
        breaks = reconcile_window(connection, window_id=window_id, member=member,
                                  record=body.record_csv)  # fmt: skip
    return ReconciliationOut(
        window_id=window_id,
        member=member,
        breaks=[BreakOut(**{**dataclasses.asdict(b), "kind": b.kind.value}) for b in breaks],
    )


@router.post("/v1/settlement/close", response_model=WindowOut)
def close(platform: ServicesDep, _admin: CurrentNetworkAdmin, body: CloseIn) -> WindowOut:
    """Close the window ending at the cut-off ``end_ns`` (idempotent)."""
    result = close_window(
        platform=platform,
        end_ns=body.end_ns,
        schedule=schedule_from_environment(),
        directory=files_directory(),
    )
    return WindowOut(**dataclasses.asdict(result.window))


@router.post("/v1/settlement/windows/{window_id}/settle", response_model=WindowOut)
def settle(platform: ServicesDep, _admin: CurrentNetworkAdmin, window_id: int) -> WindowOut:
    """Settle a closed window (idempotent)."""
    return WindowOut(**dataclasses.asdict(settle_window(platform=platform, window_id=window_id)))
