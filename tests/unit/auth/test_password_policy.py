"""The password policy (NIST SP 800-63B §3.1.1.2): length, blocklist, context words, no composition rules."""

from __future__ import annotations

import pytest

from services.auth import password_policy
from services.auth.settings import Settings
from services.common.config import ConfigError


def check(password: str, min_length: int = 12, **context: str):
    return password_policy.check(password, min_length=min_length, **context)


def test_default_minimum_is_12_and_the_floor_8_is_configurable() -> None:
    assert Settings.from_env({}).password_min_length == 12
    assert Settings.from_env({"AUTH_PASSWORD_MIN_LENGTH": "8"}).password_min_length == 8
    with pytest.raises(ConfigError, match="never fewer than 8"):
        Settings.from_env({"AUTH_PASSWORD_MIN_LENGTH": "7"})


def test_too_short_says_how_long() -> None:
    violation = check("Tidal-Orb-1")  # 11 characters
    assert violation is not None and violation.code == "too_short"
    assert "at least 12 characters" in violation.message
    assert check("Tidal-Orb-12") is None
    assert check("Tidal-Or", min_length=8) is None
    assert check("Tidal-O", min_length=8).code == "too_short"


def test_long_passphrases_are_accepted_without_truncation() -> None:
    assert check("a walk along the quiet river at dawn with the dog and a thermos of tea") is None
    assert check("x7" * 32) is None  # 64
    assert check("q" * 1024 + "") is None
    assert check("q" * 1025).code == "too_long"


def test_common_passwords_are_refused_with_the_reason() -> None:
    violation = check("password1234")
    assert violation is not None and violation.code == "password_blocklisted"
    assert "most commonly used passwords" in violation.message
    assert check("PassWord1234").code == "password_blocklisted"
    assert check("qwerty123456").code == "password_blocklisted"


def test_the_blocklist_is_a_real_list_of_at_least_20000() -> None:
    common = password_policy._common_passwords()
    assert len(common) >= 20_000
    assert {"password", "123456", "iloveyou"} <= common


def test_no_composition_rules() -> None:
    assert check("correct horse battery staple") is None
    assert check("alllowercaseletters") is None
    assert check("жёлтый кот спит на окне") is None


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("my-u.smith42-password", "contains_user_id"),
        ("MY-U.SMITH42-PASSWORD", "contains_user_id"),
        ("gardenofbeatrice!!", "contains_name"),
        ("morgans-harbor-2024", "contains_name"),
        ("sunny dental care 99", "contains_practice_name"),
        ("SunnyDentalCare-1999", "contains_practice_name"),
    ],
)
def test_user_id_name_and_practice_name_are_refused(password: str, code: str) -> None:
    violation = check(
        password, user_id="u.smith42", name="Beatrice Morgan", practice_name="Sunny Dental Care"
    )
    assert violation is not None and violation.code == code
    assert "must not contain your" in violation.message


def test_short_name_parts_do_not_block_passwords() -> None:
    assert check("Tidal-Orbit-Lantern", name="Al Li", practice_name="") is None


def test_length_is_counted_in_code_points_after_nfkc() -> None:
    # 12 characters of combining sequences: NFKC composes "e" + U+0301 into one "é".
    decomposed = "e\u0301" * 11
    assert len(decomposed) == 22
    assert check(decomposed).code == "too_short"
    # Full-width letters are the ASCII ones after NFKC, so the blocklist sees them.
    assert password_policy.normalise("ｐａｓｓｗｏｒｄ１２３４") == "password1234"
    assert check("ｐａｓｓｗｏｒｄ１２３４").code == "password_blocklisted"
    # A ligature expands: "ﬁ" counts as two characters.
    assert len(password_policy.normalise("ﬁ" * 6)) == 12
