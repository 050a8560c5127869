"""The login password's cost is the platform's ``PasswordPolicy``: hashes are made at it, any
policy verifies any hash, and a login re-hashes a password whose hash is not at the current
policy — on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from flashpay.keys import KeyRing
from flashpay.passwords import (
    DEFAULT_PASSWORD_POLICY,
    DEMO_PASSWORD_POLICY,
    OWASP_PASSWORD_POLICY,
    PasswordPolicy,
)
from flashpay.platform import Platform
from flashpay.wallet.errors import WalletError
from flashpay.wallet.models import wallet_users
from flashpay.wallet.pin import check_password, set_pin
from flashpay.wallet.registration import register
from flashpay.wallet.sessions import authenticate, login

PASSWORD = "correct horse battery"
PHONE = "13800000001"
OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"
DEMO_PREFIX = "$argon2id$v=19$m=64,t=1,p=1$"


def stored_hash(platform: Platform, user_id: int) -> str:
    with platform.engine.connect() as connection:
        return str(
            connection.execute(
                sa.select(wallet_users.c.password_hash).where(wallet_users.c.id == user_id)
            ).scalar_one()
        )


def demo_user(platform: Platform) -> tuple[Platform, int]:
    """A user registered on the demo's cheap policy: (that platform, the user's id)."""
    demo = dataclasses.replace(platform, password_policy=DEMO_PASSWORD_POLICY)
    user = register(
        platform=demo, phone=PHONE, name="Li Wei", id_number="11010119900101001X", password=PASSWORD
    )
    return demo, user.id


def test_the_default_is_owasps_minimum(sqlite_url):
    assert (OWASP_PASSWORD_POLICY.memory_kib, OWASP_PASSWORD_POLICY.time_cost) == (19_456, 2)
    assert DEFAULT_PASSWORD_POLICY is OWASP_PASSWORD_POLICY
    platform = Platform.open(sqlite_url, keys=KeyRing.generate())
    try:
        assert platform.password_policy is DEFAULT_PASSWORD_POLICY
    finally:
        platform.close()
    opened = Platform.open(
        sqlite_url, keys=KeyRing.generate(), password_policy=DEMO_PASSWORD_POLICY
    )
    try:
        assert opened.password_policy is DEMO_PASSWORD_POLICY
    finally:
        opened.close()


def test_a_login_under_a_stronger_policy_rehashes(service_platform):
    platform = service_platform  # the default policy, as `flashpay serve` runs
    demo, user_id = demo_user(platform)
    cheap = stored_hash(platform, user_id)
    assert cheap.startswith(DEMO_PREFIX)
    # Setting a PIN checks the password: any policy verifies any hash, and nothing is re-hashed.
    set_pin(platform=platform, user_id=user_id, pin="135790", password=PASSWORD)
    assert stored_hash(platform, user_id) == cheap
    session = login(platform=platform, phone=PHONE, password=PASSWORD)
    assert authenticate(platform=platform, token=session.token) == user_id
    strong = stored_hash(platform, user_id)
    assert strong.startswith(OWASP_PREFIX)
    PasswordHasher().verify(strong, PASSWORD)  # a plain argon2 hash of the same password
    assert not platform.password_policy.hasher.check_needs_rehash(strong)
    # At the policy now: the next login leaves it alone, and the password still works.
    login(platform=platform, phone=PHONE, password=PASSWORD)
    assert stored_hash(platform, user_id) == strong
    check_password(platform=demo, user_id=user_id, password=PASSWORD)


def test_a_login_never_lowers_the_cost(service_platform):
    """A login on a cheaper policy (only the demo opens one) leaves a stronger hash alone: a
    misconfigured or demo platform must not weaken real accounts."""
    demo, user_id = demo_user(service_platform)
    login(platform=service_platform, phone=PHONE, password=PASSWORD)
    strong = stored_hash(service_platform, user_id)
    assert strong.startswith(OWASP_PREFIX)
    login(platform=demo, phone=PHONE, password=PASSWORD)
    assert stored_hash(service_platform, user_id) == strong
    assert not DEMO_PASSWORD_POLICY.raises(strong)
    assert OWASP_PASSWORD_POLICY.raises(DEMO_PASSWORD_POLICY.dummy_hash())


def test_a_failed_login_changes_nothing(service_platform):
    platform = service_platform
    _, user_id = demo_user(platform)
    cheap = stored_hash(platform, user_id)
    for phone, password in ((PHONE, "not the password"), ("13999999999", PASSWORD)):
        with pytest.raises(WalletError) as refused:
            login(platform=platform, phone=phone, password=password)
        assert refused.value.code == "invalid_login"  # a 401 at the API (test_wallet_flows)
    assert stored_hash(platform, user_id) == cheap
    with pytest.raises(WalletError) as wrong:
        check_password(platform=platform, user_id=user_id, password="not the password")
    assert wrong.value.code == "wrong_password"


def test_an_unknown_phone_costs_a_hash_at_the_policy():
    for policy in (OWASP_PASSWORD_POLICY, DEMO_PASSWORD_POLICY):
        dummy = policy.dummy_hash()
        assert dummy == policy.dummy_hash()  # made once per policy
        assert not policy.hasher.check_needs_rehash(dummy)


@pytest.mark.parametrize(
    ("memory_kib", "time_cost", "parallelism", "message"),
    [
        (7, 1, 1, "memory"),
        (15, 1, 2, "memory"),  # 8 KiB per lane
        (64, 0, 1, "time cost"),
        (64, 101, 1, "time cost"),
        (64, 1, 0, "parallelism"),
        (5 * 1024 * 1024, 1, 1, "memory"),
    ],
    ids=["memory_too_small", "memory_per_lane", "no_pass", "too_many_passes", "no_lane", "5_GiB"],
)
def test_a_policy_outside_argon2s_bounds_is_refused(memory_kib, time_cost, parallelism, message):
    with pytest.raises(ValueError, match=message):
        PasswordPolicy("bad", memory_kib, time_cost, parallelism)
