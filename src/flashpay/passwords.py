"""How much work a login password's hash costs: a ``PasswordPolicy``, carried by the ``Platform``.

Login passwords are Argon2id (RFC 9106). The cost is a platform setting rather than a constant
because the same code serves two very different populations: real users, whose passwords the
slow hash is the only thing protecting (the default, ``OWASP_PASSWORD_POLICY``: OWASP's minimum
of 19 MiB, 2 passes, 1 lane), and the demo's thousands of generated users, whose one password is
printed in the source and whose set-up would otherwise spend minutes in Argon2 (decision 0011).

An Argon2 hash names its own parameters (``$argon2id$v=19$m=19456,t=2,p=1$…``), so any policy
verifies any hash; ``wallet.sessions.login`` re-hashes a password whose stored hash is cheaper
than the platform's current policy (``PasswordPolicy.raises``), so raising the policy reaches every
account at its next login — and never the other way: a login on a platform with a cheaper
policy (only the demo opens one) leaves a stronger hash as it is. The payment PIN's hash is not
a policy: its cost is fixed by decision 0008 and lives with the PIN code in
``flashpay.wallet.pin``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError

ARGON2_MEMORY_KIB_MIN = 8  # argon2 needs 8 KiB per lane
ARGON2_MEMORY_KIB_MAX = 4 * 1024 * 1024  # 4 GiB: a limit on everything, far above any sane cost
ARGON2_TIME_COST_MAX = 100
ARGON2_PARALLELISM_MAX = 16


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Argon2id parameters for login passwords. ``name`` is for logs and docs only."""

    name: str
    memory_kib: int
    time_cost: int
    parallelism: int = 1

    def __post_init__(self) -> None:
        # Checked once, here, so a bad policy fails when the platform opens, not at a login.
        if not 1 <= self.parallelism <= ARGON2_PARALLELISM_MAX:
            raise ValueError(f"parallelism is 1–{ARGON2_PARALLELISM_MAX}")
        if not 1 <= self.time_cost <= ARGON2_TIME_COST_MAX:
            raise ValueError(f"time cost is 1–{ARGON2_TIME_COST_MAX}")
        memory_min = ARGON2_MEMORY_KIB_MIN * self.parallelism
        if not memory_min <= self.memory_kib <= ARGON2_MEMORY_KIB_MAX:
            raise ValueError(f"memory is {memory_min}–{ARGON2_MEMORY_KIB_MAX} KiB")

    @property
    def hasher(self) -> PasswordHasher:
        """The argon2-cffi hasher for this policy (one per policy, shared: it is stateless)."""
        return _hasher(self.memory_kib, self.time_cost, self.parallelism)

    def raises(self, stored_hash: str) -> bool:
        """Whether hashing at this policy would make ``stored_hash`` stronger: its memory or time
        cost is below the policy's (or it is not Argon2id at all). Never a downgrade."""
        try:
            stored = extract_parameters(stored_hash)
        except InvalidHashError:
            return True
        return (
            stored.type is not Type.ID
            or stored.memory_cost < self.memory_kib
            or stored.time_cost < self.time_cost
        )

    def dummy_hash(self) -> str:
        """A hash of a password nobody has, at this policy's cost: a login for an unknown phone
        verifies against it, so it takes as long as a real one and timing tells nobody who has
        an account."""
        return _dummy_hash(self.memory_kib, self.time_cost, self.parallelism)


@functools.cache
def _hasher(memory_kib: int, time_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


@functools.cache
def _dummy_hash(memory_kib: int, time_cost: int, parallelism: int) -> str:
    return _hasher(memory_kib, time_cost, parallelism).hash("not a real password")


# OWASP Password Storage Cheat Sheet, Argon2id minimum: m = 19 MiB, t = 2, p = 1 (decision 0008).
OWASP_PASSWORD_POLICY = PasswordPolicy(name="owasp", memory_kib=19_456, time_cost=2)
DEFAULT_PASSWORD_POLICY = OWASP_PASSWORD_POLICY
# The demo's generated users only (``flashpay demo``; decision 0011): their password is printed in
# the source, so the hash's cost protects nothing there, and at OWASP's cost 5,000 sign-ups spend
# minutes in Argon2. Still Argon2id, salted, in the same format, so a demo user who logs in
# through ``flashpay serve`` (the default policy) is re-hashed to full cost.
DEMO_PASSWORD_POLICY = PasswordPolicy(name="demo", memory_kib=64, time_cost=1)
