"""Identifiers read back into the keywords and counter a pattern renders them from: pure Python.

A placeholder's rendering is any text its format spec can produce: digits for ``{counter}``
and numeric specs, what ``strftime`` writes for a date spec, the computed digits for a
check digit, an identifier of the parent for the parent's placeholder, and any text at all
for a plain ``{keyword}``. So ``'{a}{b}-{counter}'`` reads ``'123-1'`` four ways, and
``'{a}-{counter}-{b}'`` reads ``'x-1-2-y'`` as two different counters. `readings` lists
the ways (the ambiguity is the caller's to refuse); `counters` gives the few distinct
counter keys an identifier can belong to, whatever the number of ways, so that whether it
was issued is a primary-key lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from .check_digits import check_digit
from .pattern import CHECK, COUNTER, Field, Pattern, _escape, counter_value

Accept = Callable[[str], bool]  # whether a text is a rendering of the parent's placeholder


@dataclass(frozen=True)
class Reading:
    """One way a pattern renders an identifier: its keywords (as rendered), counter and key."""

    keywords: dict[str, str]
    counter: int
    key: str


def readings(
    pattern: Pattern, text: str, parent: Accept | None = None, *, limit: int = 2
) -> list[Reading]:
    """Return up to *limit* ways *pattern* renders *text*; none if it cannot.

    *parent* tells whether a text is an identifier of the parent (default: any text).

    >>> from mortar_seq.pattern import parse
    >>> pl = parse("{year}: Playlist {counter:02d}", "PL", lambda name: False)
    >>> readings(pl, "2015: Playlist 07")
    [Reading(keywords={'year': '2015'}, counter=7, key='2015: Playlist {counter:02d}')]
    >>> readings(pl, "2015: Playlist 7")
    []
    >>> [r.keywords for r in readings(parse("{a}{b}-{counter}", "T", lambda n: False), "12-1")]
    [{'a': '', 'b': '12'}, {'a': '1', 'b': '2'}]
    """
    match = _Match(pattern, text, parent)
    found: list[list[tuple[int, int]]] = []
    match.walk(0, 0, [], found, limit)
    return [match.reading(spans) for spans in found]


def counters(pattern: Pattern, text: str, parent: Accept | None = None) -> set[tuple[str, int]]:
    """Return each counter key that could have issued *text*, with the counter value it needs.

    However many ways the keywords can be split, they are few: where the counter's
    rendering can sit (and the check digits after it).

    >>> from mortar_seq.pattern import parse
    >>> sorted(counters(parse("{a}-{counter}-{b}", "T", lambda name: False), "x-1-2-y"))
    [('x-1-{counter}-y', 2), ('x-{counter}-2-y', 1)]
    >>> counters(parse("{a}{b}-{counter}", "T", lambda name: False), "123-1")
    {('123-{counter}', 1)}
    """
    match = _Match(pattern, text, parent)
    return {(key, number) for key, number in match.fragments(0, 0) if number is not None}


class _Match:
    """Where each part of a pattern can sit in one text, worked out once per position."""

    def __init__(self, pattern: Pattern, text: str, parent: Accept | None) -> None:
        self.text = text
        self.tokens: list[str | Field] = [
            token for literal, field in pattern.parts for token in (literal, field) if token
        ]
        self.accepts = [_acceptor(t, pattern.parent, parent) for t in self.tokens]
        self._ends: dict[tuple[int, int], list[int]] = {}
        self._completes: dict[tuple[int, int], bool] = {}
        self._fragments: dict[tuple[int, int], frozenset[tuple[str, int | None]]] = {}

    def ends(self, i: int, pos: int) -> list[int]:
        """Where token *i* can end if it starts at *pos*."""
        found = self._ends.get((i, pos))
        if found is not None:
            return found
        token, text = self.tokens[i], self.text
        if isinstance(token, str):
            found = [pos + len(token)] if text.startswith(token, pos) else []
        elif token.name == CHECK:
            digits = check_digit(token.spec, text[:pos])
            found = [pos + len(digits)] if text.startswith(digits, pos) else []
        else:
            accepts = self.accepts[i]
            found = [end for end in range(pos, len(text) + 1) if accepts(text[pos:end])]
        self._ends[i, pos] = found
        return found

    def completes(self, i: int, pos: int) -> bool:
        """Whether tokens *i* onwards can render the text from *pos* to its end."""
        if i == len(self.tokens):
            return pos == len(self.text)
        done = self._completes.get((i, pos))
        if done is None:
            done = any(self.completes(i + 1, end) for end in self.ends(i, pos))
            self._completes[i, pos] = done
        return done

    def walk(
        self,
        i: int,
        pos: int,
        spans: list[tuple[int, int]],
        found: list[list[tuple[int, int]]],
        limit: int,
    ) -> None:
        if i == len(self.tokens):
            if self._consistent(spans):
                found.append(list(spans))
            return
        for end in self.ends(i, pos):
            if len(found) >= limit:
                return
            if self.completes(i + 1, end):
                spans.append((pos, end))
                self.walk(i + 1, end, spans, found, limit)
                spans.pop()

    def _consistent(self, spans: list[tuple[int, int]]) -> bool:
        """A placeholder written twice the same way renders the same text both times."""
        seen: dict[str | Field, str] = {}
        for token, (start, end) in zip(self.tokens, spans, strict=True):
            written = self.text[start:end]
            keyword = isinstance(token, Field) and token.name not in (COUNTER, CHECK)
            if keyword and seen.setdefault(token, written) != written:
                return False
        return True

    def reading(self, spans: list[tuple[int, int]]) -> Reading:
        keywords: dict[str, str] = {}
        counter = 0
        pieces = []
        for token, (start, end) in zip(self.tokens, spans, strict=True):
            pieces.append(self._piece(token, start, end))
            if isinstance(token, Field):
                if token.name == COUNTER:
                    counter = counter_value(token, self.text[start:end]) or 0
                elif token.name != CHECK:
                    keywords.setdefault(token.name, self.text[start:end])
        return Reading(keywords, counter, "".join(pieces))

    def fragments(self, i: int, pos: int) -> frozenset[tuple[str, int | None]]:
        """The keys (from token *i* on) under which the text from *pos* can render, each with
        its counter value if that lies within."""
        if i == len(self.tokens):
            return frozenset({("", None)}) if pos == len(self.text) else frozenset()
        found = self._fragments.get((i, pos))
        if found is not None:
            return found
        token = self.tokens[i]
        collected: set[tuple[str, int | None]] = set()
        for end in self.ends(i, pos):
            rest = self.fragments(i + 1, end)
            if not rest:
                continue
            piece = self._piece(token, pos, end)
            number = None
            if isinstance(token, Field) and token.name == COUNTER:
                number = counter_value(token, self.text[pos:end])
            collected.update((piece + key, n if number is None else number) for key, n in rest)
        found = frozenset(collected)
        self._fragments[i, pos] = found
        return found

    def _piece(self, token: str | Field, start: int, end: int) -> str:
        """What the token puts in the counter's key: its text, or its placeholder if computed."""
        if isinstance(token, Field):
            if token.name in (COUNTER, CHECK):
                return token.placeholder()
            return _escape(self.text[start:end])
        return _escape(token)


def _acceptor(token: str | Field, parent_name: str | None, parent: Accept | None) -> Accept:
    if isinstance(token, str) or token.name == CHECK:
        return _anything  # decided by position (see _Match.ends)
    if token.name == COUNTER:
        return lambda text: counter_value(token, text) is not None
    if token.conversion in ("r", "a"):
        return _anything  # a representation: of anything
    if token.name == parent_name and parent is not None:
        return parent
    if token.dated:
        return _date_text(token.spec).fullmatch  # type: ignore[return-value]
    if not token.spec:
        return _anything
    return lambda text: _renders_as_itself(token, text)


def _anything(text: str) -> bool:
    return True


def _renders_as_itself(field: Field, text: str) -> bool:
    # Text renders as itself where the spec renders it at all (0042 for {v:04d}, not 42).
    try:
        return field.render(text) == text
    except Exception:  # whatever format() says of it
        return False


# What strftime writes for each directive; any text for the others (names, locales, %z).
_DIRECTIVES = {
    **dict.fromkeys("ymdHIMSUWVC", r"\d\d"),
    **dict.fromkeys("YG", r"\d{4}"),
    **dict.fromkeys("uw", r"\d"),
    "j": r"\d{3}",
    "f": r"\d{6}",
    "e": r"[ \d]\d",
    "%": "%",
}


@lru_cache(maxsize=256)
def _date_text(spec: str) -> re.Pattern[str]:
    """The texts a date spec renders: ``%Y-%m`` gives ``\\d{4}-\\d\\d``."""
    pieces = []
    for flag, directive, literal in re.findall(r"%([-_0^#]?)(.)|([^%]+|%$)", spec, re.DOTALL):
        if literal:
            pieces.append(re.escape(literal))
            continue
        found = _DIRECTIVES.get(directive, ".*")
        pieces.append(r"[ \d]+" if flag and found.startswith(r"\d") else found)  # %-d: 5
    return re.compile("".join(pieces), re.DOTALL)
