"""``Annotated`` dependencies of the payment routers: the worker's payment and transfer switches.

The composition root (``flashpay.app.create_platform_app``) opens one of each per worker on
``app.state``; a router takes ``SwitchDep`` or ``TransferSwitchDep`` and gets it, or a 503
``service_unavailable`` in an app that has no payments (``flashpay.api.deps.app_service``).
They live with payments, not in the HTTP kernel, because the kernel imports no domain.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from flashpay.api.deps import app_service
from flashpay.payments.switch import PaymentSwitch, TransferSwitch


async def get_payment_switch(request: Request) -> PaymentSwitch:
    """The worker's payment switch (group commit of concurrent payment requests)."""
    return cast(PaymentSwitch, app_service(request, "payment_switch"))


async def get_transfer_switch(request: Request) -> TransferSwitch:
    """The worker's P2P switch (group commit of concurrent transfer requests)."""
    return cast(TransferSwitch, app_service(request, "transfer_switch"))


SwitchDep = Annotated[PaymentSwitch, Depends(get_payment_switch)]
TransferSwitchDep = Annotated[TransferSwitch, Depends(get_transfer_switch)]
