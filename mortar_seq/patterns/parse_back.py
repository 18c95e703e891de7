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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from .check_digits import check_digit
from .integer_format import INTEGER_TYPES, SPEC, characters, integers, numeric_options
from .pattern import CHECK, COUNTER, Field, Pattern, _escape, counter_value, identifier

Accept = Callable[[str], bool]  # whether a text is a rendering of the parent's placeholder


@dataclass(frozen=True)
class Reading:
    """One way a pattern renders an identifier: its keywords (as rendered), counter and key."""

    keywords: dict[str, str]
    counter: int
    key: str


def readings(
    pattern: Pattern,
    text: str,
    parent: Accept | None = None,
    *,
    limit: int = 2,
    counter: Callable[[int], bool] | None = None,
) -> list[Reading]:
    """Return up to *limit* ways *pattern* renders *text*; none if it cannot.

    *parent* tells whether a text is an identifier of the parent (default: any text), and
    *counter* whether a counter value can be issued (default: any).

    >>> from mortar_seq.patterns.pattern import parse
    >>> pl = parse("{year}: Playlist {counter:02d}", "PL", lambda name: False)
    >>> readings(pl, "2015: Playlist 07")
    [Reading(keywords={'year': '2015'}, counter=7, key='2015: Playlist {counter:02d}')]
    >>> readings(pl, "2015: Playlist 7")
    []
    >>> [r.keywords for r in readings(parse("{a}{b}-{counter}", "T", lambda n: False), "12-1")]
    [{'a': '', 'b': '12'}, {'a': '1', 'b': '2'}]
    """
    match = _Match(pattern, text, parent)
    match.counter_ok = counter
    found: list[list[tuple[int, int]]] = []
    match.walk(0, 0, [], found, limit)
    return [match.reading(spans) for spans in found]


def counters(pattern: Pattern, text: str, parent: Accept | None = None) -> set[tuple[str, int]]:
    """Return each counter key that could have issued *text*, with the counter value it needs.

    However many ways the keywords can be split, they are few: where the counter's
    rendering can sit (and the check digits after it).

    >>> from mortar_seq.patterns.pattern import parse
    >>> sorted(counters(parse("{a}-{counter}-{b}", "T", lambda name: False), "x-1-2-y"))
    [('x-1-{counter}-y', 2), ('x-{counter}-2-y', 1)]
    >>> counters(parse("{a}{b}-{counter}", "T", lambda name: False), "123-1")
    {('123-{counter}', 1)}
    """
    match = _Match(pattern, text, parent)
    return {(key, number) for key, number in match.fragments(0, 0) if number is not None}


def reads_one_way(pattern: Pattern, text: str) -> bool:
    """Tell cheaply whether *text* can only be read one way: True where the pattern's
    literals stand in just one place and no two placeholders touch (each then spans what
    lies between its literals); False where the full reading must decide.

    >>> from mortar_seq.patterns.pattern import parse
    >>> shop = parse("{company}/{year}/{counter:05d}", "T", lambda name: False)
    >>> reads_one_way(shop, "ACME/2026/00042"), reads_one_way(shop, "A/B/2026/00042")
    (True, False)
    >>> reads_one_way(parse("INV-{month}{counter}", "T", lambda name: False), "INV-111")
    False
    """
    literals = pattern.literals
    return literals is not None and _placements(literals, text, 0, 0) == 1


def counter_elsewhere(
    pattern: Pattern, text: str, span: tuple[int, int], counter_ok: Callable[[int], bool]
) -> bool | None:
    """Tell whether the counter could stand elsewhere in *text* than at *span*: False where
    no other place between the literals around it holds a counter *counter_ok* accepts (all
    readings then share one key: the text with the counter's span left to fill); None where
    that cannot be told so cheaply (a placeholder touches the counter, or check digits).

    >>> from mortar_seq.patterns.pattern import parse
    >>> ym = parse("{year}{month:02d}-{counter}", "T", lambda name: False)
    >>> counter_elsewhere(ym, "202601-12", (7, 9), lambda n: n > 0)
    False
    >>> counter_elsewhere(parse("{a}-{counter}-{b}", "T", lambda n: False), "1-1-1-x", (2, 3), bool)
    True
    """
    tokens = pattern.tokens
    if any(isinstance(token, Field) and token.name == CHECK for token in tokens):
        return None
    at = tokens.index(pattern.counter)
    before = tokens[at - 1] if at else ""
    after = tokens[at + 1] if at + 1 < len(tokens) else ""
    if not isinstance(before, str) or not isinstance(after, str):
        return None
    starts = [end + len(before) for end in _found(text, before)] if before else [0]
    ends = _found(text, after) if after else [len(text)]
    for start in starts:
        for end in ends:
            if start < end and (start, end) != span:
                value = counter_value(pattern.counter, text[start:end])
                if value is not None and counter_ok(value):
                    return True
    return False


def _found(text: str, literal: str, start: int = 0) -> list[int]:
    """Where *literal* stands in *text* from *start* on (overlapping places included)."""
    found = []
    at = text.find(literal, start)
    while at >= 0:
        found.append(at)
        at = text.find(literal, at + 1)
    return found


def one_way_for_every_counter(pattern: Pattern, key: str, *, negative: bool) -> bool:
    """Tell whether every identifier of counter *key* reads one way, whatever its value:
    `reads_one_way` says so for one of them, and no literal of the pattern holds a character
    the counter is written with (its minus sign only where *negative* values are issued), so
    the counter's text never makes or hides a literal.

    >>> from mortar_seq.patterns.pattern import parse
    >>> shop = parse("{company}-{year}/{counter:05d}", "T", lambda name: False)
    >>> one_way_for_every_counter(shop, "ACME-2026/{counter:05d}", negative=False)
    True
    >>> one_way_for_every_counter(shop, "ACME-2026/{counter:05d}", negative=True)
    False
    """
    counter = pattern.counter
    literals = pattern.literals
    written = characters(counter.conversion, counter.spec, negative=negative)
    if literals is None or any(ch in written for literal in literals for ch in literal):
        return False
    return reads_one_way(pattern, identifier(key, 1))


def _placements(literals: tuple[str, ...], text: str, i: int, pos: int) -> int:
    """How many ways (0, 1, or 2 for more) literals *i* onwards stand in *text* from *pos*."""
    literal = literals[i]
    if i == 0:  # the text starts with it
        starts = [0] if text.startswith(literal) else []
    elif i == len(literals) - 1:  # the text ends with it
        at = len(text) - len(literal)
        starts = [at] if at >= pos and text.endswith(literal) else []
    else:
        starts = _found(text, literal, pos)
    if i == len(literals) - 1:
        return len(starts)
    ways = 0
    for start in starts:
        ways += _placements(literals, text, i + 1, start + len(literal))
        if ways >= 2:
            return 2
    return ways


class _Match:
    """Where each part of a pattern can sit in one text, worked out once per position."""

    def __init__(self, pattern: Pattern, text: str, parent: Accept | None) -> None:
        self.text = text
        self.tokens, accepts = pattern.tokens, _acceptors(pattern)
        self.accepts = [
            parent if isinstance(t, Field) and t.name == pattern.parent and parent else each
            for t, each in zip(self.tokens, accepts, strict=True)
        ]
        self.counter_ok: Callable[[int], bool] | None = None
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
            found = [end for end in self._followed(i, pos) if accepts(text[pos:end])]
        self._ends[i, pos] = found
        return found

    def _followed(self, i: int, pos: int) -> Iterable[int]:
        """Where a placeholder starting at *pos* may end: the text's end if it is the last
        token, where the literal after it stands if one does, else anywhere."""
        text = self.text
        if i + 1 == len(self.tokens):
            return (len(text),)
        after = self.tokens[i + 1]
        if not isinstance(after, str):
            return range(pos, len(text) + 1)
        return _found(text, after, pos)

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
            ok = self.counter_ok
            if self._consistent(spans) and (ok is None or ok(self.reading(spans).counter)):
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


@lru_cache(maxsize=256)
def _acceptors(pattern: Pattern) -> tuple[Accept, ...]:
    """What each of a pattern's tokens accepts (a parent's placeholder: any text, unless
    the caller tells its parent's identifiers)."""
    return tuple(_acceptor(token) for token in pattern.tokens)


def _acceptor(token: str | Field) -> Accept:
    """Whether a text is one the token can render: never too strict, or an identifier the
    template issued would not read back, and another reading of it would go unseen."""
    if isinstance(token, str) or token.name == CHECK:
        return _anything  # decided by position (see _Match.ends)
    if token.name == COUNTER:
        return lambda text: counter_value(token, text) is not None
    if token.dated:
        return _date_text(token.spec).fullmatch  # type: ignore[return-value]
    spec = SPEC.fullmatch(token.spec)
    if token.conversion is not None or not token.spec or spec is None:
        return _anything  # a representation, or text: any text at all
    if spec["type"] in INTEGER_TYPES and spec["type"] != "c":
        return lambda text: bool(integers(None, token.spec, text))
    if spec["type"] is None and numeric_options(spec):
        # An integer (0042 for {v:04}, never 42), or a number written with its point,
        # exponent, inf or nan.
        return lambda text: bool(integers(None, token.spec, text) or _FLOAT_MARK.search(text))
    return _anything  # a text's width and precision, or a float's rounding: too many texts


_FLOAT_MARK = re.compile(r"[.eEnN]")


def _anything(text: str) -> bool:
    return True


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
