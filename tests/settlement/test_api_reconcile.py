"""``/v1/settlement`` over the ASGI app with real API keys (per-member authorization), and
reconciliation's breaks (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flashpay.app import create_platform_app
from flashpay.auth.service import PrincipalKind, create_api_key
from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.institutions.service import get_institution
from flashpay.platform import Platform
from flashpay.settlement.close import close_window
from flashpay.settlement.reconcile import BreakKind, compare
from flashpay.settlement.windows import Schedule, next_cutoff

from .world import World

SCHEDULE = Schedule(close_delay_seconds=5)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _closed(platform: Platform, directory: Path) -> int:
    clock = platform.clock
    assert isinstance(clock, FakeClock)
    w = World(platform)
    w.person("ann", "BOC")
    w.person("bo", "ICBC")
    w.shop("Wumart", "UMS")
    w.shop("Canteen", "LKL")
    paid = w.pay("ann", "Wumart", 10_000)
    w.pay("bo", "Wumart", 2_000)
    w.pay("ann", "Canteen", 3_000)
    w.refund("Wumart", paid, 1_000)
    cut = next_cutoff(SCHEDULE, clock.now_ns())
    clock.set_ns(cut + 10 * NS_PER_SECOND)
    return close_window(platform=platform, end_ns=cut, schedule=SCHEDULE,
                        directory=directory).window.id  # fmt: skip


def _key(platform: Platform, code: str, *, admin: bool = False) -> str:
    inst = get_institution(platform=platform, code=code)
    assert inst is not None
    return create_api_key(platform=platform, kind=PrincipalKind.INSTITUTION,
                          principal_id=inst.id, network_admin=admin).key  # fmt: skip


async def test_a_member_reads_its_own_files_and_positions_only(
    service_platform: Platform, tmp_path: Path
) -> None:
    platform = service_platform
    window_id = _closed(platform, tmp_path)
    boc, ums, cup = _key(platform, "BOC"), _key(platform, "UMS"), _key(platform, "CUP", admin=True)
    app = create_platform_app(platform, request_hash_key=b"k" * 32)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        base = f"/v1/settlement/windows/{window_id}"
        listed = await client.get("/v1/settlement/windows", headers={"X-Api-Key": boc})
        assert listed.status_code == 200
        assert [w["id"] for w in listed.json()] == [window_id]
        own = await client.get(f"{base}/positions/BOC", headers={"X-Api-Key": boc})
        assert own.status_code == 200
        assert own.json()["net_fen"] < 0  # BOC's cardholder paid: it owes
        other = await client.get(f"{base}/positions/UMS", headers={"X-Api-Key": boc})
        assert other.status_code == 404
        assert other.json()["error"]["code"] == "not_found"
        files = await client.get(f"{base}/files/UMS", headers={"X-Api-Key": ums})
        assert {f["kind"] for f in files.json()} == {
            "clearing_csv", "clearing_json", "camt053", "report",
        }  # fmt: skip
        csv = await client.get(f"{base}/files/UMS/clearing_csv", headers={"X-Api-Key": ums})
        assert csv.status_code == 200
        assert csv.text.startswith("transaction_id,")
        stolen = await client.get(f"{base}/files/UMS/clearing_csv", headers={"X-Api-Key": boc})
        assert stolen.status_code == 404
        admin = await client.get(f"{base}/positions/UMS", headers={"X-Api-Key": cup})
        assert admin.status_code == 200
        anonymous = await client.get(f"{base}/positions/UMS")
        assert anonymous.status_code == 401
        clean = await client.post(f"{base}/reconciliation/UMS", headers={"X-Api-Key": ums},
                                  json={"record_csv": csv.text})  # fmt: skip
        assert clean.status_code == 200
        assert clean.json()["breaks"] == []
        theirs = await client.post(f"{base}/reconciliation/UMS", headers={"X-Api-Key": boc},
                                   json={"record_csv": csv.text})  # fmt: skip
        assert theirs.status_code == 404
        settle = await client.post(f"{base}/settle", headers={"X-Api-Key": boc})
        assert settle.status_code == 403
        settled = await client.post(f"{base}/settle", headers={"X-Api-Key": cup})
        assert settled.status_code == 200
        assert settled.json()["state"] == "settled"


def test_reconciliation_finds_each_injected_break_and_nothing_else(
    service_platform: Platform, tmp_path: Path
) -> None:
    window_id = _closed(service_platform, tmp_path)
    ours = (tmp_path / str(window_id) / "UMS.clearing.csv").read_text()
    assert compare(ours, ours) == []
    header, *rows = ours.strip().splitlines()
    assert len(rows) == 3  # two purchases and a refund at UMS
    first, second, third = (r.split(",") for r in rows)
    second[4] = str(int(second[4]) + 1)  # gross_fen
    third[6] = str(int(third[6]) + 2)  # network_fee_fen
    unknown = ["999", *first[1:]]
    record = "\n".join([header, ",".join(first), ",".join(first), ",".join(second),
                        ",".join(third), ",".join(unknown)]) + "\n"  # fmt: skip
    breaks = compare(ours, record)
    assert [(b.kind, b.transaction_id, b.field) for b in breaks] == [
        (BreakKind.DUPLICATE, int(first[0]), None),
        (BreakKind.MISSING_IN_FLASHPAY, 999, None),
        (BreakKind.AMOUNT_MISMATCH, int(second[0]), "gross_fen"),
        (BreakKind.FEE_MISMATCH, int(third[0]), "network_fee_fen"),
    ]
    dropped = "\n".join([header, rows[0], rows[1]]) + "\n"
    assert [(b.kind, b.transaction_id) for b in compare(ours, dropped)] == [
        (BreakKind.MISSING_IN_MEMBER, int(third[0]))
    ]
