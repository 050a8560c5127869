"""``/v1/health`` (the process is up) and ``/v1/ready`` (the database answers, schema at head)."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter
from pydantic import BaseModel

from flashpay.api.deps import PlatformDep
from flashpay.api.errors import ApiError
from flashpay.db import MIGRATIONS_DIR, alembic_config

router = APIRouter(prefix="/v1", tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    schema_heads: list[str]


@lru_cache(maxsize=1)
def expected_heads() -> frozenset[str]:
    """The head revision of every migration branch shipped with this code."""
    config = alembic_config("sqlite://")
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: answers as long as the process serves requests."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"description": "not ready"}})
def ready(platform: PlatformDep) -> Readiness:
    """Readiness: the database is reachable and its schema is at every branch's head."""
    try:
        with platform.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            heads = set(MigrationContext.configure(connection).get_current_heads())
    except sa.exc.SQLAlchemyError as exc:
        raise ApiError(
            status_code=503, code="database_unavailable", message="the database does not answer"
        ) from exc
    missing = expected_heads() - heads
    if missing:
        raise ApiError(
            status_code=503,
            code="schema_not_at_head",
            message="the database schema is behind this code: run `flashpay db upgrade`",
            details={"missing_heads": sorted(missing)},
        )
    return Readiness(status="ready", schema_heads=sorted(heads))
