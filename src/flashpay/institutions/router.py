"""``/v1/institutions`` (the network's members) and ``/v1/admin/network`` (load a definition)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from flashpay.api.deps import CurrentNetworkAdmin, ServicesDep
from flashpay.institutions.definition import parse_definition
from flashpay.institutions.schemas import InstitutionOut, NetworkLoadOut
from flashpay.institutions.service import list_institutions, load_network

router = APIRouter(tags=["network"])


@router.get("/v1/institutions", response_model=list[InstitutionOut])
def institutions(platform: ServicesDep) -> list[InstitutionOut]:
    """The network operator, its issuers and its acquirers (public)."""
    return [
        InstitutionOut(id=i.id, code=i.code, name=i.name, kind=i.kind.value, iin=i.iin)
        for i in list_institutions(platform=platform)
    ]


@router.put("/v1/admin/network", response_model=NetworkLoadOut)
def put_network(
    platform: ServicesDep,
    _admin: CurrentNetworkAdmin,
    definition: dict[str, Any] = Body(description="The network definition, as in the TOML file."),
) -> NetworkLoadOut:
    """Load a network definition (idempotent; see docs/reference/wallet.md)."""
    parsed = parse_definition(definition)
    summary = load_network(platform=platform, definition=parsed)
    return NetworkLoadOut(
        institutions_created=summary.institutions_created,
        institutions_updated=summary.institutions_updated,
        bin_ranges=summary.bin_ranges,
        accounts_created=summary.accounts_created,
    )
