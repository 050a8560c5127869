"""``ChainLogDep``: the audit log an app serves, for any router that reads it.

``flashpay.chain.api.mount`` puts the ``ChainLog`` on ``app.state.chain_log``. The payment routers
read receipts through this dependency too; it lives apart from the chain's router so that they
need not import a router (domains import no router: docs/reference/architecture.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from flashpay.chain.service import ChainLog


async def get_chain_log(request: Request) -> ChainLog:
    log: ChainLog = request.app.state.chain_log
    return log


ChainLogDep = Annotated[ChainLog, Depends(get_chain_log)]
