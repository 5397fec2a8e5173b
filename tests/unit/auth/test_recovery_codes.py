"""Recovery codes: their shape (80 bits, no look-alike letters) and how they are recognised.
Single use and regeneration are tested with a real database in
tests/integration/auth/signin/test_signin_flows.py."""

from __future__ import annotations

import math

from services.auth import recovery_codes


def test_codes_look_like_recovery_codes_and_not_like_totp() -> None:
    assert recovery_codes.looks_like_recovery_code("abcd-efgh-jkmn-pqrs")
    assert recovery_codes.looks_like_recovery_code("ABCD EFGH JKMN PQRS")
    assert not recovery_codes.looks_like_recovery_code("123456")
    assert not recovery_codes.looks_like_recovery_code("abcd-efgh-jkmn-pqr")
    assert not recovery_codes.looks_like_recovery_code("abcd-efgh-jkmn-pqr0")  # 0 is not in the alphabet


def test_codes_carry_at_least_64_bits() -> None:
    assert 16 * math.log2(len(recovery_codes._ALPHABET)) >= 64
    assert recovery_codes.COUNT == 10


def test_hash_is_keyed_and_ignores_case_and_separators() -> None:
    key = b"k" * 32
    digest = recovery_codes._hash(key, "abcd-efgh-jkmn-pqrs")
    assert digest == recovery_codes._hash(key, "ABCD EFGH JKMN PQRS")
    assert digest != recovery_codes._hash(b"x" * 32, "abcd-efgh-jkmn-pqrs")
    assert "abcd" not in digest
