"""Response shapes of the network's endpoints: the institutions (``/v1/institutions``) and
loading the network definition (``PUT /v1/admin/network``)."""

from __future__ import annotations

from pydantic import BaseModel


class InstitutionOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    iin: str


class NetworkLoadOut(BaseModel):
    institutions_created: int
    institutions_updated: int
    bin_ranges: int
    accounts_created: int
