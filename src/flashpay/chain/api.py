"""``/v1/chain/*``: the audit log's read API for members, witnesses and auditors.

``mount(app, log)`` puts a ``ChainLog`` on ``app.state.chain_log`` and includes ``router``; the
router reads the log through the ``ChainLogDep`` dependency (``flashpay.chain.deps``), so any app
(the network's API, the ``flashpay chain serve`` log server, a test) can mount it. Routes:

* ``GET /v1/chain/checkpoint`` — the latest final checkpoint with its cosignatures (text/plain;
  ``?final=false`` for the latest signed one, final or not);
* ``GET /v1/chain/proof/inclusion?index=&size=`` and ``/proof/consistency?first=&second=`` —
  proof hashes as base64;
* ``GET /v1/chain/leaves?start=&limit=`` — leaves (base64) in log order;
* ``GET /v1/chain/receipts/{chain_id}`` — a ledger chain's receipt
  (``/v1/payments/{id}/receipt`` will map a payment to its chain once payments exist).

The leaves carry account ids and amounts but no personal data; the routes are read-only and not
authenticated here (the members' network is the audience — see docs/decisions/0006-audit-log.md).
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import PlainTextResponse

from flashpay.api.errors import ApiError
from flashpay.api.types import ID_MAX, IdPath
from flashpay.chain.deps import ChainLogDep
from flashpay.chain.receipt import build_receipt
from flashpay.chain.service import LEAVES_PAGE_MAX, ChainLog

router = APIRouter(prefix="/v1/chain", tags=["chain"])


def mount(app: FastAPI, log: ChainLog) -> None:
    """Serve ``log`` under ``/v1/chain`` in ``app``."""
    app.state.chain_log = log
    app.include_router(router)


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(log: ChainLogDep, final: bool = True) -> PlainTextResponse:
    latest = log.latest_checkpoint(final_only=final)
    if latest is None:
        raise ApiError(status_code=404, code="not_found", message="no checkpoint yet")
    return PlainTextResponse(latest.cosigned_note())


@router.get("/proof/inclusion")
def inclusion(
    log: ChainLogDep,
    index: Annotated[int, Query(ge=0, le=ID_MAX)],
    size: Annotated[int, Query(ge=1, le=ID_MAX)],
) -> dict[str, Any]:
    # A size or index no proof exists for is the chain's refusal: invalid_tree_size (400).
    proof = log.inclusion_proof(index, size)
    return {"leaf_index": index, "tree_size": size, "proof": _b64(proof)}


@router.get("/proof/consistency")
def consistency(
    log: ChainLogDep,
    first: Annotated[int, Query(ge=0, le=ID_MAX)],
    second: Annotated[int, Query(ge=0, le=ID_MAX)],
) -> dict[str, Any]:
    proof = log.consistency_proof(first, second)
    return {"first": first, "second": second, "proof": _b64(proof)}


@router.get("/leaves")
def leaves(
    log: ChainLogDep,
    start: Annotated[int, Query(ge=0, le=ID_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=LEAVES_PAGE_MAX)] = 100,
) -> dict[str, Any]:
    rows = log.leaves(start, limit)
    return {
        "leaves": [
            {"leaf_index": i, "chain_id": c, "data": base64.b64encode(d).decode()}
            for i, c, d in rows
        ]
    }


@router.get("/receipts/{chain_id}")
def receipt(log: ChainLogDep, chain_id: IdPath) -> dict[str, Any]:
    found = build_receipt(log, chain_id)
    if found is None:
        raise ApiError(
            status_code=404,
            code="not_found",
            message=f"chain {chain_id} is not in a final checkpoint yet",
        )
    return found
