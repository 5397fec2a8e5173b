"""RFC 6238 (TOTP): the Appendix B vectors, and our 6-digit matching within ±1 step."""

from __future__ import annotations

import base64

import pyotp
import pytest

from services.auth import totp
from services.auth.totp import SecretBox

SHA1_SEED = base64.b32encode(b"12345678901234567890").decode()
assert SHA1_SEED == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

# RFC 6238 Appendix B, SHA-1, 8 digits.
APPENDIX_B_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("t", "expected"), APPENDIX_B_SHA1)
def test_rfc6238_appendix_b_sha1_vectors(t: int, expected: str) -> None:
    assert pyotp.TOTP(SHA1_SEED, digits=8).at(t) == expected


def test_rfc6238_appendix_b_sha256_and_sha512_vectors() -> None:
    import hashlib

    seed32 = base64.b32encode(b"12345678901234567890123456789012").decode()
    seed64 = base64.b32encode(b"1234567890" * 6 + b"1234").decode()
    assert pyotp.TOTP(seed32, digits=8, digest=hashlib.sha256).at(59) == "46119246"
    assert pyotp.TOTP(seed64, digits=8, digest=hashlib.sha512).at(59) == "90693936"


@pytest.mark.parametrize(("t", "eight_digits"), APPENDIX_B_SHA1)
def test_our_six_digit_codes_are_the_vectors_last_six_digits(t: int, eight_digits: str) -> None:
    """RFC 4226 truncation: the 6-digit code is the 8-digit one modulo 10^6."""
    step = t // 30
    assert totp.matching_step(SHA1_SEED, eight_digits[-6:], t) == step


@pytest.mark.parametrize(("t", "eight_digits"), [v for v in APPENDIX_B_SHA1 if v[0] > 90])
def test_vector_codes_match_at_the_window_edges_and_not_beyond(t: int, eight_digits: str) -> None:
    code = eight_digits[-6:]
    step = t // 30
    start, end = step * 30, step * 30 + 29
    # Accepted from the last second of the step before to the first second of the step after ...
    assert totp.matching_step(SHA1_SEED, code, start - 30) == step
    assert totp.matching_step(SHA1_SEED, code, end + 30) == step
    # ... and refused two steps away on either side.
    assert totp.matching_step(SHA1_SEED, code, start - 31) is None
    assert totp.matching_step(SHA1_SEED, code, end + 31) is None


def test_plus_minus_one_step_accepted_and_two_refused() -> None:
    secret = totp.new_secret()
    now = 1_700_000_015.0
    generator = pyotp.TOTP(secret)
    for offset, accepted in ((0, True), (-30, True), (30, True), (-60, False), (60, False)):
        code = generator.at(now + offset)
        step = totp.matching_step(secret, code, now)
        assert (step is not None) is accepted, offset
        if accepted:
            assert step == int((now + offset) // 30)


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", "１２３４５６"])
def test_malformed_codes_never_match(code: str) -> None:
    assert totp.matching_step(SHA1_SEED, code, 59) is None


def test_full_width_digits_are_read_as_digits() -> None:
    """Some phone keyboards and input methods type full-width digits (NFKC makes them ASCII)."""
    code = pyotp.TOTP(SHA1_SEED).at(1111111111)
    full_width = "".join(chr(ord("０") + int(d)) for d in code)
    assert totp.matching_step(SHA1_SEED, full_width, 1111111111) == 1111111111 // 30


def test_spaces_in_a_code_are_ignored() -> None:
    code = pyotp.TOTP(SHA1_SEED).at(59)
    assert totp.matching_step(SHA1_SEED, f" {code[:3]} {code[3:]} ", 59) == 1


def test_new_secrets_are_160_bits_and_different() -> None:
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(base64.b32decode(s)) == 20 for s in secrets)


def test_secret_box_encrypts_and_binds_to_the_user() -> None:
    box = SecretBox(b"k" * 32)
    sealed = box.seal(SHA1_SEED, "user-1")
    assert SHA1_SEED.encode() not in sealed
    assert box.open(sealed, "user-1") == SHA1_SEED
    with pytest.raises(Exception):  # noqa: B017 - AES-GCM's InvalidTag
        box.open(sealed, "user-2")
    with pytest.raises(Exception):  # noqa: B017
        SecretBox(b"x" * 32).open(sealed, "user-1")
