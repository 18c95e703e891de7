"""Template patterns, parsed with Python's own format-string parser: pure Python, no database.

Each distinct rendering of a pattern's non-counter part has a counter of its own. Its key
is that rendering as a format string in which only the counter is left to fill, braces
escaped: readable, unambiguous, and rendering an identifier is ``key.format(counter=n)``
(check digits, ``{check:luhn}``, stay placeholders too: they are computed over the text
before them, counter included).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache

from ..definition import unstorable
from ..errors import TemplateError
from ..model import KEY_MAX
from .check_digits import ALGORITHMS, check_digit
from .integer_format import INTEGER_TYPES, SPEC, integers, numeric_options, why_lossy

COUNTER = "counter"
CHECK = "check"  # {check:luhn}: a check digit over the identifier's text before it
_FORMATTER = string.Formatter()
_FLOAT_TYPES = frozenset("eEfFgGn%")
_CONVERSIONS = frozenset({None, "r", "s", "a"})
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Field:
    """One placeholder: its name, conversion and format spec."""

    name: str
    conversion: str | None
    spec: str

    def placeholder(self) -> str:
        conversion = f"!{self.conversion}" if self.conversion else ""
        spec = f":{self.spec}" if self.spec else ""
        return "{" + self.name + conversion + spec + "}"

    @property
    def dated(self) -> bool:
        """Whether the format spec is a date's (``strftime`` directives such as ``%Y``)."""
        return "%" in self.spec and SPEC.fullmatch(self.spec) is None

    def render(self, value: object) -> str:
        """Render *value*; text becomes a number or a date where the format spec needs one.

        >>> Field("year", None, "04d").render("24"), Field("dept", None, "").render("0042")
        ('0024', '0042')
        >>> Field("date", None, "%Y-%m").render("2026-11-27T10:00:00+01:00")
        '2026-11'
        """
        if isinstance(value, str) and self.conversion is None:
            value = self._date(value) if self.dated else self._number(value)
        converted = _FORMATTER.convert_field(value, self.conversion)
        return str(_FORMATTER.format_field(converted, self.spec))

    def _date(self, text: str) -> datetime:
        """Return ISO text (``2026-11-27``, ``2026-11-27T10:00:00+01:00``) as a datetime."""
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise TemplateError(
                f"{self.placeholder()} needs a date or datetime (or ISO text such as "
                f"2026-11-27), not {text!r}"
            ) from None

    def _number(self, text: str) -> object:
        """Return *text* as the number the spec needs (``04d``, ``x``, ``.2f``), else as it is."""
        spec = SPEC.fullmatch(self.spec)
        if spec is None:
            return text  # not the mini-language (a date's strftime spec): format() says
        kind = spec["type"]
        if kind in INTEGER_TYPES:
            if _INTEGER.fullmatch(text):
                return int(text)
            raise TemplateError(f"{self.placeholder()} needs an integer, not {text!r}")
        if kind in _FLOAT_TYPES or (kind is None and numeric_options(spec)):
            if _INTEGER.fullmatch(text):
                return int(text)
            if text == text.strip():
                with suppress(ValueError):
                    return float(text)
            raise TemplateError(f"{self.placeholder()} needs a number, not {text!r}")
        return text


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern: literal text and placeholders, its counter, and its parent if any."""

    text: str
    parts: tuple[tuple[str, Field | None], ...]
    counter: Field
    parent: str | None

    @property
    def keywords(self) -> frozenset[str]:
        """The names every call must give (the parent's included)."""
        computed = (COUNTER, CHECK)
        return frozenset(f.name for _, f in self.parts if f is not None and f.name not in computed)

    @cached_property
    def tokens(self) -> tuple[str | Field, ...]:
        """Its literal texts and placeholders in order (no empty literal)."""
        return tuple(token for literal, field in self.parts for token in (literal, field) if token)

    @cached_property
    def literals(self) -> tuple[str, ...] | None:
        """The literal text between placeholders (one before the first and one after the
        last, empty where none stands), or None where two placeholders touch.

        >>> parse("{a}/{counter}", "X", lambda name: False).literals
        ('', '/', '')
        """
        literals = [""]
        for literal, field in self.parts:
            if literal:
                literals[-1] += literal
            if field is not None:
                if not literals[-1] and len(literals) > 1:
                    return None
                literals.append("")
        return tuple(literals)

    def key(self, keywords: Mapping[str, object]) -> str:
        """Fill in every placeholder but the counter; return the counter's key.

        >>> parse("{year}: Playlist {counter}", "PL", lambda name: False).key({"year": 2015})
        '2015: Playlist {counter}'
        >>> parse("{a}{b}-{counter:03d}", "X", lambda name: False).key({"a": "{1", "b": 23})
        '{{123-{counter:03d}'
        """
        rendered: list[str] = []
        for literal, field in self.parts:
            rendered.append(_escape(literal))
            if field is None:
                continue
            if field.name in (COUNTER, CHECK):
                rendered.append(field.placeholder())
                continue
            if keywords.get(field.name) is None:  # missing, or None: never the text 'None'
                given = " (it is None)" if field.name in keywords else ""
                raise TemplateError(f"{self.text!r} needs the keyword {field.name!r}{given}")
            rendered.append(_escape(_render(field, keywords[field.name])))
        key = "".join(rendered)
        _check_key(key)
        return key


def identifier(key: str, counter: int) -> str:
    """Return the identifier a counter *key* gives for *counter*.

    >>> identifier("2015: Playlist 2 > Audio File {counter:02d}", 1)
    '2015: Playlist 2 > Audio File 01'
    >>> identifier("ACC-{counter:06d}{check:luhn}", 42)  # Luhn over 101212 000042
    'ACC-0000421'
    """
    pieces = _checked(key)
    if pieces is None:
        return key.format(counter=counter)
    text = ""
    for literal, field in pieces:
        text += literal
        if field is not None:
            text += (
                field.render(counter) if field.name == COUNTER else check_digit(field.spec, text)
            )
    return text


def around_counter(key: str) -> tuple[str, str]:
    """Return the literal text of counter *key* before and after its counter (braces
    unescaped, other placeholders such as check digits left out).

    >>> around_counter("{{A}}-{counter:03d}/x")
    ('{A}-', '/x')
    """
    before: list[str] = []
    after: list[str] = []
    seen = False
    for literal, name, _, _ in _FORMATTER.parse(key):
        (after if seen else before).append(literal)
        seen = seen or name is not None
    return "".join(before), "".join(after)


@lru_cache(maxsize=4096)
def _checked(key: str) -> tuple[tuple[str, Field | None], ...] | None:
    """The pieces of *key* if it holds check digits, else None (``str.format`` will do)."""
    pieces = tuple(
        (literal, None if name is None else Field(name, conversion, spec or ""))
        for literal, name, spec, conversion in _FORMATTER.parse(key)
    )
    return pieces if any(f is not None and f.name == CHECK for _, f in pieces) else None


def counter_in(key: str, text: str) -> int | None:
    """Return the counter *n* for which ``identifier(key, n) == text``, or None.

    >>> counter_in("2015: Playlist {counter}", "2015: Playlist 12")
    12
    >>> counter_in("F-{counter:03x}", "F-0ff"), counter_in("F-{counter:03x}", "F-ff")
    (255, None)
    >>> counter_in("A{counter}{check:luhn}", "A421"), counter_in("A{counter}{check:luhn}", "A425")
    (42, None)
    """
    before: list[str] = []
    after: list[str] = []
    field: Field | None = None
    for literal, name, spec, conversion in _FORMATTER.parse(key):  # "{{" comes as a piece
        (after if field is not None else before).append(literal)
        if name is not None and field is None:
            field = Field(name, conversion, spec or "")
    prefix, suffix = "".join(before), "".join(after)
    if field is None or len(text) < len(prefix) + len(suffix):
        return None
    if not text.startswith(prefix):
        return None
    if _checked(key) is None:  # the suffix is literal
        if not text.endswith(suffix):
            return None
        return counter_value(field, text[len(prefix) : len(text) - len(suffix)])
    for end in range(len(prefix), len(text) + 1):  # check digits follow: try each end
        number = counter_value(field, text[len(prefix) : end])
        if number is not None and identifier(key, number) == text:
            return number
    return None


def counter_value(field: Field, text: str) -> int | None:
    """Return the number that *field* renders as *text*, or None.

    >>> padded = Field("counter", None, "03d")
    >>> counter_value(padded, "007"), counter_value(padded, "7")
    (7, None)
    """
    found = integers(field.conversion, field.spec, text)
    return found[0] if len(found) == 1 else None


def parse(pattern: object, name: str, is_template: Callable[[str], bool]) -> Pattern:
    """Parse *pattern* for template *name*; raise `TemplateError` saying what is wrong.

    *is_template* tells whether a placeholder names another registered template (a parent).

    >>> parse("{counter:03d}-{cat}", "X", lambda name: False).counter
    Field(name='counter', conversion=None, spec='03d')
    """
    if not isinstance(pattern, str):
        raise TemplateError(f"a pattern must be a string, not {type(pattern).__name__}")
    _refuse_unstorable(pattern, "a pattern")
    try:
        pieces = list(_FORMATTER.parse(pattern))
    except ValueError as exc:
        raise TemplateError(f"{pattern!r} is not a valid pattern: {exc}") from exc
    parts = tuple(
        (literal, None if field_name is None else _field(pattern, field_name, conversion, spec))
        for literal, field_name, spec, conversion in pieces
    )
    fields = [field for _, field in parts if field is not None]
    counters = [field for field in fields if field.name == COUNTER]
    if len(counters) != 1:
        found = "none" if not counters else str(len(counters))
        raise TemplateError(f"{pattern!r} must hold one {{counter}} placeholder; it has {found}")
    try:
        counters[0].render(1)
    except Exception as exc:  # whatever format() says of the spec
        raise TemplateError(f"{pattern!r}: invalid format for the counter: {exc}") from exc
    lossy = why_lossy(counters[0].conversion, counters[0].spec)
    if lossy:
        raise TemplateError(
            f"{pattern!r}: {counters[0].placeholder()} {lossy}: two counters would issue "
            "one identifier"
        )
    _check_checks(pattern, fields)
    names = {field.name for field in fields} - {COUNTER, CHECK}
    if "nowait" in names:  # an option of Template.next(), so never a keyword
        raise TemplateError(
            f"{pattern!r}: {{nowait}} cannot be a placeholder: it is the nowait option of next()"
        )
    if name in names:
        raise TemplateError(f"{pattern!r}: template {name!r} cannot be its own parent")
    parents = sorted(field for field in names if is_template(field))
    if len(parents) > 1:
        raise TemplateError(f"{pattern!r} names two parents: {parents[0]!r} and {parents[1]!r}")
    return Pattern(pattern, parts, counters[0], parents[0] if parents else None)


def _check_checks(pattern: str, fields: list[Field]) -> None:
    """Check digits name a known algorithm and follow the counter (they cover it)."""
    seen_counter = False
    for field in fields:
        seen_counter = seen_counter or field.name == COUNTER
        if field.name != CHECK:
            continue
        if field.spec not in ALGORITHMS or field.conversion is not None:
            known = " or ".join(f"{{check:{name}}}" for name in ALGORITHMS)
            raise TemplateError(
                f"{pattern!r}: {field.placeholder()} is no check digit: use {known}"
            )
        if not seen_counter:
            raise TemplateError(
                f"{pattern!r}: {field.placeholder()} must follow the {{counter}} it covers"
            )


def _field(pattern: str, name: str, conversion: str | None, spec: str | None) -> Field:
    if not name.isidentifier():
        raise TemplateError(
            f"{pattern!r}: placeholders must be plain names like {{year}}, not {{{name}}}"
        )
    if conversion not in _CONVERSIONS:
        raise TemplateError(f"{pattern!r}: unknown conversion !{conversion} in {{{name}}}")
    if spec and ("{" in spec or "}" in spec):
        raise TemplateError(f"{pattern!r}: nested placeholders are not supported in {{{name}}}")
    return Field(name, conversion, spec or "")


def _render(field: Field, value: object) -> str:
    try:
        return field.render(value)
    except TemplateError:
        raise
    except Exception as exc:  # a value's own __format__ may raise anything
        raise TemplateError(
            f"cannot render {field.name}={value!r} as {field.placeholder()}: {exc}"
        ) from exc


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _check_key(key: str) -> None:
    _refuse_unstorable(key, "an identifier")
    if len(key) > KEY_MAX:
        raise TemplateError(f"the fixed part of an identifier must fit in {KEY_MAX} characters")


def _refuse_unstorable(text: str, what: str) -> None:
    reason = unstorable(text)
    if reason:
        raise TemplateError(f"{what} {reason}: {text!r}")
