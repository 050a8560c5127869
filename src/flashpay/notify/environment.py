"""``notifier_from_environment``: the one place that decides where a process's messages go.

| ``FLASHPAY_ENV``      | ``FLASHPAY_SMS_GATEWAY_URL`` | notifier                               |
|-----------------------|------------------------------|----------------------------------------|
| development (default) | unset                        | ``OutboxNotifier`` (``/dev/messages``) |
| development           | set                          | ``HttpSmsGateway``                     |
| production            | set                          | ``HttpSmsGateway``                     |
| production            | unset                        | refused: ``ConfigError``               |

``FLASHPAY_SMS_GATEWAY_TOKEN`` (optional) is sent as a bearer token to the gateway. Decision 0015
explains the choice; ``flashpay serve`` checks the settings before it starts its workers, and
``create_app_from_environment`` (each worker) builds its notifier here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sqlalchemy.engine import Engine

from flashpay.clock import Clock
from flashpay.config import ConfigError, Environment, environment
from flashpay.notify import Notifier
from flashpay.notify.gateway import HttpSmsGateway
from flashpay.notify.outbox import OutboxNotifier

SMS_GATEWAY_URL_ENV = "FLASHPAY_SMS_GATEWAY_URL"
SMS_GATEWAY_TOKEN_ENV = "FLASHPAY_SMS_GATEWAY_TOKEN"
SMS_GATEWAY_URL_CHARS_MAX = 2_048


def sms_gateway_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``$FLASHPAY_SMS_GATEWAY_URL``, checked (``None`` when unset)."""
    url = (os.environ if environ is None else environ).get(SMS_GATEWAY_URL_ENV, "").strip()
    if not url:
        return None
    if len(url) > SMS_GATEWAY_URL_CHARS_MAX or not url.startswith(("https://", "http://")):
        raise ConfigError(f"{SMS_GATEWAY_URL_ENV} must be an http:// or https:// URL")
    return url


def check_notifier_settings(environ: Mapping[str, str] | None = None) -> Environment:
    """The environment, once its notifier settings are known to work; else ``ConfigError``."""
    env = environment(environ)
    url = sms_gateway_url(environ)
    if env is Environment.PRODUCTION and url is None:
        raise ConfigError(
            f"FLASHPAY_ENV=production needs a real SMS gateway: set {SMS_GATEWAY_URL_ENV} "
            "(the development outbox is never used in production)"
        )
    return env


def notifier_from_environment(
    *, engine: Engine, clock: Clock, environ: Mapping[str, str] | None = None
) -> Notifier:
    """The notifier the settings select (see the table in the module docstring)."""
    check_notifier_settings(environ)
    url = sms_gateway_url(environ)
    if url is not None:
        token = (os.environ if environ is None else environ).get(SMS_GATEWAY_TOKEN_ENV) or None
        return HttpSmsGateway(url=url, token=token)
    return OutboxNotifier(engine=engine, clock=clock)
