"""The composition root of the HTTP API: ``create_app(platform)`` wires routers, errors and
idempotency.

This is the one module that imports every domain's router (and the CLI's root,
``flashpay.cli.main``, the one that imports every domain's commands): the HTTP kernel below it
(``flashpay.api``) imports no domain, and no domain imports a router or this module
(docs/reference/architecture.md, enforced by ``lint-imports``). What the kernel needs from a
domain is handed in here: the API-key verifier (``flashpay.auth.principals``), the wallet's
bearer-token verifier, the payment switches and the audit log on ``app.state``.

Routers are included one line each, below; a domain adds its router by adding its line. Every
route lives under ``/v1``; the OpenAPI document is served at ``/openapi.json``. The app does not
own the platform: whoever opened it closes it (``create_app_from_environment``, the factory that
``flashpay serve`` runs in each uvicorn worker, does so in the lifespan).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from flashpay import __version__, config
from flashpay.api import health
from flashpay.api import metrics as api_metrics
from flashpay.api.body_limit import BodyLimitMiddleware
from flashpay.api.errors import ErrorResponse, install_error_handlers
from flashpay.api.idempotency import IdempotencyMiddleware
from flashpay.api.idempotency_batch import BatchedIdempotencyStore
from flashpay.api.models import IDEMPOTENCY_KEY_CHARS_MAX
from flashpay.api.runtime import request_hash_key
from flashpay.api.security import Authenticator, UserTokenVerifier, no_user_tokens
from flashpay.auth import router as auth_router
from flashpay.auth.principals import api_key_verifier
from flashpay.cards import router as cards_router
from flashpay.chain import api as chain_api
from flashpay.chain.service import ChainLog
from flashpay.institutions import router as institutions_router
from flashpay.merchants import router as merchants_router
from flashpay.notify import router as dev_pages
from flashpay.notify.environment import check_notifier_settings, notifier_from_environment
from flashpay.notify.gateway import HttpSmsGateway
from flashpay.payments import qr_router as qr_payments_router
from flashpay.payments import router as payments_router
from flashpay.payments.history import new_user_facts
from flashpay.payments.recovery import recover_payments
from flashpay.payments.switch import payment_switch, transfer_switch
from flashpay.payments.transfer_queries import recover_transfers
from flashpay.platform import Platform, Runtime
from flashpay.promotions_api import router as promotions_router
from flashpay.settlement import payout_router as settlement_payout_router
from flashpay.settlement import router as settlement_router
from flashpay.transit import router as transit_router
from flashpay.wallet import enrolment_router
from flashpay.wallet import router as wallet_router
from flashpay.wallet.sessions import authenticate
from flashpay.web import router as web_router
from flashpay.webhooks import router as webhooks_router
from flashpay.webhooks.runner import start_deriver

_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    "4XX": {"model": ErrorResponse, "description": "error object"},
    "5XX": {"model": ErrorResponse, "description": "error object"},
}

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    platform: Runtime,
    *,
    request_hash_key: bytes,
    verify_user_token: UserTokenVerifier = no_user_tokens,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    """The HTTP API over ``platform``.

    ``request_hash_key`` keys the idempotency request hashes (the same in every worker);
    ``verify_user_token`` maps a wallet bearer token to a user id (the wallet service's
    ``authenticate``; without a wallet, no bearer token is valid).
    """
    app = FastAPI(
        title="flashpay",
        version=__version__,
        description="An open-source mobile payment network. See docs/reference/http-api.md.",
        openapi_url="/openapi.json",
        responses=_ERROR_RESPONSES,
        lifespan=lifespan,
    )
    authenticator = Authenticator(
        verify_api_key=api_key_verifier(platform), verify_user_token=verify_user_token
    )
    app.state.platform = platform
    app.state.authenticator = authenticator
    install_error_handlers(app)
    app.add_middleware(
        IdempotencyMiddleware,
        platform=platform,
        authenticator=authenticator,
        hash_key=request_hash_key,
        store=BatchedIdempotencyStore(platform),  # claims and answers in batches (decision 0025)
    )
    app.add_middleware(BodyLimitMiddleware)  # outside idempotency, sees every request
    # added last: the outermost, so it times the others too (and serves GET /metrics)
    api_metrics.install(app, api_metrics.Metrics(pools={"domain": platform.engine.pool}))

    app.include_router(health.router)
    app.include_router(auth_router.router)
    app.include_router(institutions_router.router)
    app.include_router(cards_router.router)
    app.include_router(wallet_router.router)
    app.include_router(payments_router.router)
    app.include_router(merchants_router.router)
    app.include_router(promotions_router)
    app.include_router(qr_payments_router.router)
    app.include_router(enrolment_router.router)
    app.include_router(webhooks_router.router)
    app.include_router(transit_router.router)
    app.include_router(web_router.router)
    app.include_router(settlement_router.router)
    app.include_router(settlement_payout_router.router)
    _declare_idempotency_key(app)
    return app


_IDEMPOTENCY_KEY_PARAMETER: dict[str, object] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A key of 1..255 printable characters, unique per request you mean once. A retry with "
        "the same key and the same request is answered with the first answer (replayed, or "
        "rebuilt from the effect the first try committed); the same key with another request "
        "is a 422 idempotency_key_reused. Kept 24 h. See docs/reference/http-api.md."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_CHARS_MAX},
}


def _declare_idempotency_key(app: FastAPI) -> None:
    """Every POST honours ``Idempotency-Key`` (the middleware sits in front of all of them), so
    every POST declares it in the OpenAPI document — added here, once, so a new route cannot
    forget it."""
    build = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        paths = schema.get("paths", {})
        assert isinstance(paths, dict)
        for operations in paths.values():
            post = operations.get("post")
            if post is None:
                continue
            parameters = post.setdefault("parameters", [])
            if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                parameters.append(dict(_IDEMPOTENCY_KEY_PARAMETER))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_platform_app(
    platform: Platform, *, request_hash_key: bytes, chain_log: ChainLog | None = None
) -> FastAPI:
    """The app over a full platform: the wallet's session tokens as bearer tokens, and the audit
    log's read API (``/v1/chain``) over ``chain_log`` (one over the platform's database if not
    given; its owner closes it)."""

    def verify(token: str) -> int | None:
        return authenticate(platform=platform, token=token)

    app = create_app(platform, request_hash_key=request_hash_key, verify_user_token=verify)
    metrics: api_metrics.Metrics = app.state.metrics

    def declined(reason: str) -> None:
        metrics.decline("declined", reason)

    app.state.payment_switch = payment_switch(
        platform, on_batch=metrics.batch_recorder("payments"), on_decline=declined
    )
    app.state.transfer_switch = transfer_switch(
        platform, on_batch=metrics.batch_recorder("transfers"), on_decline=declined
    )
    # The quote's new-user facts, read as the payment stage reads them (promotions_api may not
    # import payments: a sibling layer).
    app.state.new_user_facts = new_user_facts
    log = chain_log or ChainLog.open(platform.database_url, clock=platform.clock)
    chain_api.mount(app, log)

    def audit() -> api_metrics.AuditSnapshot:
        return api_metrics.AuditSnapshot(
            size=log.size(), lag_chains=platform.ledger.outbox_backlog()
        )

    metrics.add_pool("ledger", platform.ledger.engine.pool)
    metrics.audit = audit
    return app


def create_app_from_environment() -> FastAPI:
    """The app over ``$FLASHPAY_DATABASE_URL`` (uvicorn factory for ``flashpay serve``).

    The notifier comes from ``notifier_from_environment`` (``$FLASHPAY_ENV``,
    ``$FLASHPAY_SMS_GATEWAY_URL``; decision 0015); only a development app has the ``/dev``
    pages that show the development outbox."""
    env = check_notifier_settings()
    opened = Platform.open(config.database_url())
    # The development outbox writes through the platform's engine: chosen once the engine exists.
    notifier = notifier_from_environment(engine=opened.engine, clock=opened.clock)
    platform = dataclasses.replace(opened, notifier=notifier)
    chain_log = ChainLog.open(platform.database_url, clock=platform.clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Settle what a crashed process left half-way (idempotent; each worker may run it).
        await to_thread.run_sync(lambda: recover_transfers(platform=platform))
        await to_thread.run_sync(lambda: recover_payments(platform=platform))
        stop_deriver = start_deriver(platform)  # the merchants' event feed (decision 0024)
        yield
        await to_thread.run_sync(stop_deriver)
        chain_log.close()
        if isinstance(notifier, HttpSmsGateway):
            notifier.close()
        platform.close()

    app = create_platform_app(platform, request_hash_key=request_hash_key(), chain_log=chain_log)
    app.router.lifespan_context = lifespan
    if env is config.Environment.DEVELOPMENT:
        dev_pages.mount(app)
    return app
