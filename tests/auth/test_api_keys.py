"""API keys: only a hash at rest, verify/revoke outcomes, and the ``flashpay apikey`` CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from flashpay.auth import (
    API_KEY_PREFIX,
    ApiKeyPrincipal,
    PrincipalKind,
    RevokeOutcome,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)
from flashpay.clock import FakeClock
from flashpay.db import create_engine


class _Runtime:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.clock = FakeClock()


@pytest.fixture
def runtime(database_url):
    runtime = _Runtime(database_url)
    yield runtime
    runtime.engine.dispose()


def test_created_key_verifies_to_its_principal(runtime):
    created = create_api_key(platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=77)
    assert created.key.startswith(API_KEY_PREFIX)
    assert created.key not in repr(created)
    assert verify_api_key(platform=runtime, key=created.key) == ApiKeyPrincipal(
        key_id=created.key_id, kind=PrincipalKind.MERCHANT, principal_id=77
    )


@pytest.mark.parametrize(
    "bad_key",
    ["", "fpk_", "not-a-key", "fpk_" + "A" * 43, "fpk_" + "A" * 200],
    ids=["empty", "prefix-only", "no-prefix", "unknown", "too-long"],
)
def test_unknown_or_malformed_keys_do_not_verify(runtime, bad_key):
    create_api_key(platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=1)
    assert verify_api_key(platform=runtime, key=bad_key) is None


def test_only_a_hash_of_the_key_is_stored(runtime):
    created = create_api_key(platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=3)
    with runtime.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM auth_api_keys")).all()
    dumped = repr(rows).encode() + b"".join(
        value for row in rows for value in row if isinstance(value, bytes)
    )
    assert created.key.encode() not in dumped
    assert created.key[12:].encode() not in dumped


def test_revoke_outcomes_and_a_revoked_key_stops_working(runtime):
    created = create_api_key(platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=5)
    runtime.clock.advance(10)
    assert revoke_api_key(platform=runtime, key_id=created.key_id) is RevokeOutcome.REVOKED
    assert verify_api_key(platform=runtime, key=created.key) is None
    assert revoke_api_key(platform=runtime, key_id=created.key_id) is RevokeOutcome.ALREADY_REVOKED
    assert revoke_api_key(platform=runtime, key_id=999_999) is RevokeOutcome.NOT_FOUND
    (record,) = list_api_keys(platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=5)
    assert record.revoked_at_ns == record.created_at_ns + 10 * 10**9


def test_create_rejects_a_non_positive_principal(runtime):
    with pytest.raises(ValueError, match="positive"):
        create_api_key(platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=0)


def test_only_institution_keys_can_administer_the_network(runtime):
    with pytest.raises(ValueError, match="only an institution"):
        create_api_key(
            platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=1, network_admin=True
        )
    admin = create_api_key(
        platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=1, network_admin=True
    )
    principal = verify_api_key(platform=runtime, key=admin.key)
    assert principal is not None
    assert principal.network_admin
    plain = create_api_key(platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=1)
    principal = verify_api_key(platform=runtime, key=plain.key)
    assert principal is not None
    assert not principal.network_admin


def _flashpay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flashpay.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_creates_lists_and_revokes_keys(sqlite_url):
    created = _flashpay("apikey", "create", "--merchant", "42", "--db", sqlite_url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith(API_KEY_PREFIX)
    runtime = _Runtime(sqlite_url)
    try:
        principal = verify_api_key(platform=runtime, key=key)
        assert principal is not None
        assert (principal.kind, principal.principal_id) == (PrincipalKind.MERCHANT, 42)
        listed = _flashpay("apikey", "list", "--db", sqlite_url)
        assert listed.returncode == 0
        assert key not in listed.stdout
        assert f"{principal.key_id}\t{key[:12]}…\tmerchant\t42\tactive" in listed.stdout
        revoked = _flashpay("apikey", "revoke", str(principal.key_id), "--db", sqlite_url)
        assert revoked.returncode == 0, revoked.stderr
        assert verify_api_key(platform=runtime, key=key) is None
        again = _flashpay("apikey", "revoke", str(principal.key_id), "--db", sqlite_url)
        assert again.returncode == 1
        assert "already_revoked" in again.stderr
    finally:
        runtime.engine.dispose()


def test_cli_needs_exactly_one_principal(sqlite_url):
    neither = _flashpay("apikey", "create", "--db", sqlite_url)
    both = _flashpay(
        "apikey", "create", "--merchant", "1", "--institution", "2", "--db", sqlite_url
    )
    assert neither.returncode == both.returncode == 2
