"""Check digits computed over the text of an identifier: Luhn and ISO 7064 MOD 97-10.

Both read the ASCII letters and digits of the text, letters as ISO 7064 and ISIN map them
(``A`` = 10 ... ``Z`` = 35, either case), and skip everything else (separators, spaces,
other scripts): ``INV/2026/00042`` is read as ``182331202600042``.
"""

from __future__ import annotations

import string
from collections.abc import Callable

_LETTERS = {letter: str(value) for value, letter in enumerate(string.ascii_uppercase, 10)}
_VALUES = {**{digit: digit for digit in string.digits}, **_LETTERS}
_VALUES.update({letter.lower(): value for letter, value in _LETTERS.items()})


def digits_of(text: str) -> str:
    """Return the digits a check is computed over: letters mapped, everything else skipped.

    >>> digits_of("US-0378 33100"), digits_of("a/Z é")
    ('3028037833100', '1035')
    """
    return "".join(_VALUES.get(ch, "") for ch in text)


def luhn(text: str) -> str:
    """Return the Luhn check digit of *text* (one digit; letters as in ISIN).

    >>> luhn("7992739871"), luhn("US037833100"), luhn("")
    ('3', '5', '0')
    """
    total = 0
    for position, ch in enumerate(reversed(digits_of(text))):
        digit = int(ch) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str(-total % 10)


def mod97(text: str) -> str:
    """Return the ISO 7064 MOD 97-10 check digits of *text* (two digits; as in IBAN).

    >>> mod97("794"), mod97("WEST12345698765432GB")
    ('44', '82')
    """
    return f"{98 - int(digits_of(text) + '00') % 97:02d}"


ALGORITHMS: dict[str, Callable[[str], str]] = {"luhn": luhn, "mod97": mod97}


def check_digit(algorithm: str, text: str) -> str:
    """Return the check digit(s) *algorithm* computes over *text*."""
    return ALGORITHMS[algorithm](text)
