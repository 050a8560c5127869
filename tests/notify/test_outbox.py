"""The development outbox on SQLite and PostgreSQL: newest first, filtered by phone, bounded in
count and age; and ``notifier_from_environment``, the one place a notifier is chosen."""

from __future__ import annotations

import pytest

from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.config import ConfigError, Environment, environment
from flashpay.db import create_engine
from flashpay.notify import Message
from flashpay.notify import outbox as outbox_module
from flashpay.notify.environment import check_notifier_settings, notifier_from_environment
from flashpay.notify.gateway import HttpSmsGateway
from flashpay.notify.outbox import OUTBOX_RETENTION_SECONDS, OutboxNotifier, list_messages

START_NS = 1_795_000_000 * NS_PER_SECOND


def _message(n: int, phone: str = "13800000001") -> Message:
    code = f"{n:06d}"
    return Message(phone=phone, purpose="card_binding", reference=str(n), code=code,
                   text=f"flashpay: {code} binds your card ending 6585.")  # fmt: skip


@pytest.fixture
def engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def test_messages_are_read_newest_first_and_by_phone(engine):
    clock = FakeClock(START_NS)
    outbox = OutboxNotifier(engine=engine, clock=clock)
    for n in range(5):
        outbox.send(_message(n, phone="13800000001" if n % 2 else "13900000002"))
        clock.advance(ns=NS_PER_SECOND)
    everything = list_messages(engine=engine)
    assert [m.code for m in everything] == ["000004", "000003", "000002", "000001", "000000"]
    assert everything[0].sent_at_ns == START_NS + 4 * NS_PER_SECOND
    assert everything[0].text == "flashpay: 000004 binds your card ending 6585."
    assert [m.reference for m in list_messages(engine=engine, phone="13800000001")] == ["3", "1"]
    assert [m.code for m in list_messages(engine=engine, limit=2)] == ["000004", "000003"]
    assert list_messages(engine=engine, phone="13700000000") == []


@pytest.mark.parametrize("limit", [0, outbox_module.LIST_LIMIT_MAX + 1])
def test_a_read_is_bounded(engine, limit):
    with pytest.raises(ValueError, match="limit"):
        list_messages(engine=engine, limit=limit)


def test_the_outbox_keeps_at_most_its_maximum(engine, monkeypatch):
    monkeypatch.setattr(outbox_module, "OUTBOX_MESSAGES_MAX", 3)
    outbox = OutboxNotifier(engine=engine, clock=FakeClock(START_NS))
    for n in range(7):
        outbox.send(_message(n))
    assert [m.code for m in list_messages(engine=engine)] == ["000006", "000005", "000004"]


def test_the_outbox_forgets_messages_older_than_its_retention(engine):
    clock = FakeClock(START_NS)
    outbox = OutboxNotifier(engine=engine, clock=clock)
    outbox.send(_message(1))
    clock.advance(ns=OUTBOX_RETENTION_SECONDS * NS_PER_SECOND - 1)
    outbox.send(_message(2))
    assert len(list_messages(engine=engine)) == 2
    clock.advance(ns=2)
    outbox.send(_message(3))
    assert [m.code for m in list_messages(engine=engine)] == ["000003", "000002"]


# -- choosing the notifier ------------------------------------------------------------------------
GATEWAY = "https://sms.example.test/send"


@pytest.mark.parametrize(
    ("environ", "chosen"),
    [
        pytest.param({}, OutboxNotifier, id="nothing set: development, the outbox"),
        pytest.param({"FLASHPAY_ENV": "development"}, OutboxNotifier, id="development"),
        pytest.param({"FLASHPAY_ENV": " Development "}, OutboxNotifier, id="case and spaces"),
        pytest.param(
            {"FLASHPAY_SMS_GATEWAY_URL": GATEWAY},
            HttpSmsGateway,
            id="development with a gateway: the gateway",
        ),
        pytest.param(
            {"FLASHPAY_ENV": "production", "FLASHPAY_SMS_GATEWAY_URL": GATEWAY},
            HttpSmsGateway,
            id="production: the gateway",
        ),
    ],
)
def test_the_settings_choose_the_notifier(sqlite_url, environ, chosen):
    engine = create_engine(sqlite_url)
    notifier = notifier_from_environment(engine=engine, clock=FakeClock(START_NS), environ=environ)
    assert type(notifier) is chosen
    if isinstance(notifier, HttpSmsGateway):
        assert notifier.url == GATEWAY
        notifier.close()
    engine.dispose()


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        pytest.param(
            {"FLASHPAY_ENV": "production"},
            "needs a real SMS gateway",
            id="production without a gateway",
        ),
        pytest.param(
            {"FLASHPAY_ENV": "staging"},
            "must be development or production",
            id="an unknown environment",
        ),
        pytest.param(
            {"FLASHPAY_SMS_GATEWAY_URL": "sms.example.test"},
            "http:// or https://",
            id="a gateway URL without a scheme",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused(environ, problem):
    with pytest.raises(ConfigError, match=problem):
        check_notifier_settings(environ)


def test_development_is_the_default():
    assert environment({}) is Environment.DEVELOPMENT
    assert environment({"FLASHPAY_ENV": "production"}) is Environment.PRODUCTION
