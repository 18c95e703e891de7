"""Integers under a placeholder's format: whether two render alike, and which render a text.

Pure Python. A counter's format must be injective on integers, or two counters would
issue one identifier: ``{counter:.2e}`` writes 1000 to 1009 alike, ``{counter!s:.1}``
cuts 1 and 12 to one character, and padding with a character the number itself may hold
(``{counter:1>3}``, ``{counter:0<3}``) writes 1, 10 (or 11) and 100 (or 111) alike.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

_FORMATTER = string.Formatter()
# Python's format-spec mini-language: [[fill]align][sign][z][#][0][width][,][.precision][type]
SPEC = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+ ])?(?P<z>z)?(?P<alt>#)?(?P<zero>0)?"
    r"(?P<width>[0-9]*)(?P<grouping>[,_])?(?P<precision>\.[0-9]+)?(?P<type>[a-zA-Z%])?",
    re.DOTALL,
)
INTEGER_TYPES = frozenset("bcdoxX")
_BASES = {"x": 16, "X": 16, "o": 8, "b": 2}
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdef"}
_PREFIXES = {"x": "0x", "X": "0X", "o": "0o", "b": "0b"}


def why_lossy(conversion: str | None, spec: str) -> str | None:
    """Say why two integers could render alike under *conversion* and *spec*; None if never.

    >>> why_lossy(None, "05d"), why_lossy(None, "*^9,"), why_lossy("s", ">6")
    (None, None, None)
    >>> why_lossy(None, ".2e")
    'renders a rounded number (type e), not every integer apart'
    >>> why_lossy("s", ".1")
    'cuts its text to 1 character(s)'
    >>> why_lossy(None, "1>3")
    "pads with '1', a character of the number itself (1 and 11 would read alike)"
    """
    parsed = SPEC.fullmatch(spec)
    if parsed is None:
        return "is not a number's format"
    kind = parsed["type"]
    if conversion is not None:  # str(n), repr(n) or ascii(n), then a text's format
        if parsed["precision"]:
            return f"cuts its text to {parsed['precision'][1:]} character(s)"
        alphabet = set(_DIGITS[10] + "-")
    elif kind == "c":
        return "renders a character (type c), which ends at 1,114,111"
    elif kind == "n":
        return "renders with the locale's separators (type n), which may change"
    elif kind not in (None, "d", *_BASES):
        return f"renders a rounded number (type {kind}), not every integer apart"
    else:
        alphabet = _alphabet(kind, parsed)
    if int(parsed["width"] or 0) <= 1:
        return None
    fill, align = _padding(conversion, parsed)
    if fill not in alphabet:
        return None
    if align == "<" and not fill.isalnum():
        return None  # after the number, which never ends with a sign or a separator
    if align in ">=" and fill in ("0", parsed["sign"]):
        return None  # before the digits, which never start with it (0 alone apart)
    example = _example(fill, align)
    return f"pads with {fill!r}, a character of the number itself ({example})"


@lru_cache(maxsize=4096)
def integers(conversion: str | None, spec: str, text: str) -> tuple[int, ...]:
    """Return every integer that renders as *text* under *conversion* and *spec*.

    >>> integers(None, "x", "92"), integers(None, ",", "1,234"), integers(None, "05d", "-0042")
    ((146,), (1234,), (-42,))
    >>> integers(None, "1>3", "111"), integers(None, "03d", "42")
    ((1, 11, 111), ())
    """
    base, digits, fill = _reading(conversion, spec)
    kept = "".join(ch for ch in text if ch in digits)
    if not kept:
        return ()
    # Where the fill is a digit, the padding cannot be told from the number: try each cut.
    lead = len(kept) - len(kept.lstrip(fill)) if fill in digits else 0
    trail = len(kept) - len(kept.rstrip(fill)) if fill in digits else 0
    tried: set[int] = set()
    found: set[int] = set()
    for start in range(lead + 1):
        for end in range(len(kept), len(kept) - trail - 1, -1):
            if start >= end:
                continue
            try:
                number = int(kept[start:end], base)
            except ValueError:  # too many digits for int()
                continue
            for candidate in (number, -number):
                if candidate in tried:
                    continue
                tried.add(candidate)
                if _renders(conversion, spec, candidate) == text:
                    found.add(candidate)
    return tuple(sorted(found))


@lru_cache(maxsize=256)
def characters(conversion: str | None, spec: str, *, negative: bool = True) -> frozenset[str]:
    """Every character an integer can be rendered with under *conversion* and *spec*, its
    padding included, and its minus sign unless *negative* is false (a superset).

    >>> sorted(characters(None, "*>6x", negative=False))
    ['*', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f']
    """
    parsed = SPEC.fullmatch(spec)
    if parsed is None:
        return frozenset()  # not a number's format: refused at registration
    kind = None if conversion is not None else parsed["type"]
    written = _alphabet(kind, parsed)
    if not negative:
        written.discard("-")
    if int(parsed["width"] or 0) > 1:
        written.add(_padding(conversion, parsed)[0])
    return frozenset(written)


def numeric_options(parsed: re.Match[str]) -> bool:
    """Whether a spec without a type asks for a number (a sign, ``=``, ``#``, ``0``, grouping)."""
    return parsed["align"] == "=" or any(
        parsed[option] for option in ("sign", "z", "alt", "zero", "grouping")
    )


def _renders(conversion: str | None, spec: str, number: int) -> str | None:
    try:
        converted = _FORMATTER.convert_field(number, conversion)
        return str(_FORMATTER.format_field(converted, spec))
    except (ValueError, OverflowError):
        return None


@lru_cache(maxsize=1024)
def _reading(conversion: str | None, spec: str) -> tuple[int, str, str]:
    """The base, the characters its digits are written with, and the padding's fill."""
    parsed = SPEC.fullmatch(spec)
    if parsed is None:
        return 10, _DIGITS[10], " "
    kind = None if conversion is not None else parsed["type"]
    base = _BASES.get(kind or "d", 10)
    digits = _DIGITS[base].upper() if kind == "X" else _DIGITS[base]
    return base, digits, _padding(conversion, parsed)[0]


def _alphabet(kind: str | None, parsed: re.Match[str]) -> set[str]:
    """Every character an integer's rendering holds, padding apart."""
    digits = _DIGITS[_BASES.get(kind or "d", 10)]
    alphabet = set((digits.upper() if kind == "X" else digits) + "-")
    alphabet.update(ch for ch in (parsed["sign"] or "", parsed["grouping"] or "") if ch)
    if parsed["alt"] and kind in _PREFIXES:
        alphabet.update(_PREFIXES[kind])
    return alphabet


def _padding(conversion: str | None, parsed: re.Match[str]) -> tuple[str, str]:
    """The fill character and alignment Python pads with (its defaults included)."""
    fill = parsed["fill"] or ("0" if parsed["zero"] and not parsed["align"] else " ")
    if parsed["align"]:
        return fill, parsed["align"]
    if conversion is not None:
        return fill, "<"  # text, even with the 0 flag ('1' under '05' is '10000')
    return fill, "=" if parsed["zero"] else ">"


def _example(fill: str, align: str) -> str:
    if not fill.isalnum():
        return "-1 and 1 would read alike" if fill == "-" else f"{fill}1 and 1 could read alike"
    if align == "<":
        return f"1 and 1{fill} would read alike"
    return f"{fill} and {fill * 2} would read alike"
