"""Template patterns: parsing and rendering, no database."""

from __future__ import annotations

import pytest

from mortar_seq import TemplateError
from mortar_seq.patterns.pattern import counter_in, identifier, parse


def no_templates(name: str) -> bool:
    return False


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{year}-file", "must hold one {counter} placeholder; it has none"),
        ("{counter}-{counter}", "must hold one {counter} placeholder; it has 2"),
        ("{counter:xyz}", "invalid format for the counter"),
        ("{counter!z}", "unknown conversion !z"),
        ("{counter:{width}}", "nested placeholders are not supported"),
        ("{}-{counter}", "placeholders must be plain names"),
        ("{0}-{counter}", "placeholders must be plain names"),
        ("{a.b}-{counter}", "placeholders must be plain names"),
        ("{a[0]}-{counter}", "placeholders must be plain names"),
        ("{counter", "is not a valid pattern"),
        ("counter}", "is not a valid pattern"),
        ("{X}-{counter}", "template 'X' cannot be its own parent"),
        ("{A}{B}-{counter}", "names two parents: 'A' and 'B'"),
        (42, "a pattern must be a string, not int"),
        ("{counter}\x00", "a pattern must not contain NUL"),
        ("{counter}\ud800", "a pattern must be valid Unicode"),
    ],
)
def test_invalid_patterns(pattern: object, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", "\\{").replace("[", "\\[")):
        parse(pattern, "X", lambda name: name in {"A", "B"})


def test_parts_in_any_order() -> None:
    parsed = parse("{counter:03d}-{cat}", "T", no_templates)
    key = parsed.key({"cat": "books"})
    assert key == "{counter:03d}-books"
    assert identifier(key, 7) == "007-books"


def test_alike_renderings_share_a_key() -> None:
    parsed = parse("{a}{b}-{counter}", "T", no_templates)
    assert parsed.key({"a": "1", "b": "23"}) == parsed.key({"a": "12", "b": 3})
    year = parse("{year}: Playlist {counter}", "T", no_templates)
    assert year.key({"year": 2015}) == year.key({"year": "2015"})


def test_keywords() -> None:
    parsed = parse("{dept}/{year:04d}/{counter:05d}", "T", no_templates)
    assert parsed.keywords == {"dept", "year"}
    assert parsed.key({"dept": "HR", "year": 24, "extra": "ignored"}) == "HR/0024/{counter:05d}"
    with pytest.raises(TemplateError, match="needs the keyword 'year'"):
        parsed.key({"dept": "HR"})
    with pytest.raises(TemplateError, match=r"needs the keyword 'year' \(it is None\)"):
        parsed.key({"dept": "HR", "year": None})
    with pytest.raises(TemplateError, match=r"needs the keyword 'dept' \(it is None\)"):
        parsed.key({"dept": None, "year": 2026})  # rendered 'None/2026/...' before


@pytest.mark.parametrize(
    "value", ["{", "}", "{counter}", "{0}", "%s", "'; DROP TABLE x; --", "名前", "{{}}"]
)
def test_braces_in_values_stay_literal(value: str) -> None:
    parsed = parse("{v}:{counter}", "T", no_templates)
    key = parsed.key({"v": value})
    assert identifier(key, 3) == f"{value}:3"
    assert counter_in(key, f"{value}:3") == 3


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x" * 300])
def test_values_that_cannot_be_stored(value: str) -> None:
    with pytest.raises(TemplateError):
        parse("{v}-{counter}", "T", no_templates).key({"v": value})


@pytest.mark.parametrize(
    ("spec", "number"), [("", 12), ("03d", 7), ("x", 255), ("#x", 255), (",", 1234567), ("+d", 5)]
)
def test_counter_read_back(spec: str, number: int) -> None:
    placeholder = "{counter:" + spec + "}" if spec else "{counter}"
    key = f"F-{placeholder}!"
    assert counter_in(key, identifier(key, number)) == number
    assert counter_in(key, "F-zz!") is None
    assert counter_in(key, "G-1!") is None
