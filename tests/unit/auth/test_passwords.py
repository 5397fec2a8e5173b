"""argon2id at or above the OWASP minimum; rehash only when stored parameters are weaker; NFKC."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher, Type

from services.auth.passwords import Passwords
from services.auth.settings import Settings

PHC = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")


def owasp_minimum_met(memory_kib: int, time_cost: int, parallelism: int) -> bool:
    """OWASP Password Storage Cheat Sheet: m=47104/t=1, 19456/2, 12288/3, 9216/4, 7168/5 (p=1)."""
    needed = {1: 47104, 2: 19456, 3: 12288, 4: 9216}.get(time_cost, 7168)
    return memory_kib >= needed and parallelism >= 1


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    s = Settings.from_env({})
    return Passwords(
        time_cost=s.argon2_time_cost, memory_kib=s.argon2_memory_kib, parallelism=s.argon2_parallelism
    )


def test_default_hash_is_argon2id_at_or_above_the_owasp_minimum(passwords: Passwords) -> None:
    stored = passwords.hash("Tidal-Orbit-Lantern")
    match = PHC.match(stored)
    assert match, stored
    m, t, p = (int(x) for x in match.groups())
    assert owasp_minimum_met(m, t, p), (m, t, p)
    assert (m, t, p) == (19456, 2, 1)
    salt = stored.split("$")[4]
    assert len(salt) >= 22  # 16 bytes, base64 without padding


def test_same_password_gets_different_hashes(passwords: Passwords) -> None:
    assert passwords.hash("Tidal-Orbit-Lantern") != passwords.hash("Tidal-Orbit-Lantern")


def test_verify(passwords: Passwords) -> None:
    stored = passwords.hash("Tidal-Orbit-Lantern")
    assert passwords.verify(stored, "Tidal-Orbit-Lantern")
    assert not passwords.verify(stored, "Tidal-Orbit-Lanter")
    assert not passwords.verify(stored, "Tidal-Orbit-Lantern ")
    assert not passwords.verify(None, "Tidal-Orbit-Lantern")
    assert not passwords.verify("not a hash", "Tidal-Orbit-Lantern")


def test_long_passwords_are_not_truncated(passwords: Passwords) -> None:
    phrase = "a walk along the quiet river at dawn with the dog and a thermos of tea"
    stored = passwords.hash(phrase)
    assert passwords.verify(stored, phrase)
    assert not passwords.verify(stored, phrase[:-1])


def test_weaker_stored_parameters_need_a_rehash(passwords: Passwords) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash("x" * 12)
    assert passwords.needs_rehash(weak)
    argon2i = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.I).hash("x" * 12)
    assert passwords.needs_rehash(argon2i)
    assert not passwords.needs_rehash(passwords.hash("x" * 12))


def test_stronger_stored_parameters_are_kept(passwords: Passwords) -> None:
    """Rehash when parameters rise, never down: argon2-cffi's default (RFC 9106 low memory) stays."""
    stronger = PasswordHasher().hash("x" * 12)  # m=65536, t=3, p=4
    assert not passwords.needs_rehash(stronger)


def test_nfkc_equivalent_passwords_match(passwords: Passwords) -> None:
    """The same password typed on another keyboard (full-width, composed or decomposed) matches."""
    stored = passwords.hash("ｃａｆｅ\u0301 au lait 2024")
    assert passwords.verify(stored, "café au lait 2024")
    stored = passwords.hash("café au lait 2024")
    assert passwords.verify(stored, "cafe\u0301 au lait 2024")
