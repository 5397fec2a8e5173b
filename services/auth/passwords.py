"""Password hashing with argon2id, at or above the OWASP minimum.

Unknown users cost the same work as known ones: callers verify against
:data:`DUMMY_HASH`-like hashes made with the same parameters, so response
time does not reveal which User IDs exist.

Passwords are NFKC-normalised before hashing and before verifying, so the same
password typed on another keyboard (full-width, composed or decomposed) matches.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.auth.password_policy import normalise


class Passwords:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        # A real hash of a random secret, made with the current parameters.
        self._dummy = self._hasher.hash("dummy password that matches nothing 8c1f")
        self._parameters = extract_parameters(self._dummy)

    def hash(self, password: str) -> str:
        return self._hasher.hash(normalise(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with no stored hash, do the same work and say no."""
        try:
            if stored_hash is None:
                self._hasher.verify(self._dummy, normalise(password))
                return False
            return self._hasher.verify(stored_hash, normalise(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def burn(self, password: str) -> None:
        """Spend one verification's work on nothing (unknown users, locked accounts)."""
        self.verify(None, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with weaker parameters than today's.

        Not argon2-cffi's ``check_needs_rehash``, which is true for any difference
        and so would rehash a stronger hash (argon2-cffi's own default, say) down.
        """
        try:
            stored = extract_parameters(stored_hash)
        except InvalidHashError:
            return True
        current = self._parameters
        return (
            stored.type is not Type.ID
            or stored.version < current.version
            or stored.memory_cost < current.memory_cost
            or stored.time_cost < current.time_cost
            or stored.hash_len < current.hash_len
            or stored.salt_len < current.salt_len
        )
