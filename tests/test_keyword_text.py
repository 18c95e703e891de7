"""Keyword values are text, converted only where a placeholder's format spec needs a number."""

from __future__ import annotations

import pytest

from mortar_seq import TemplateError
from mortar_seq.patterns.pattern import parse


def no_templates(name: str) -> bool:
    return False


@pytest.mark.parametrize(
    ("spec", "text", "rendered"),
    [
        ("", "0042", "0042"),
        ("", " 7", " 7"),
        ("s", "007", "007"),
        (">5", "7", "    7"),
        (".2", "12345", "12"),
        ("04d", "24", "0024"),
        ("04d", "-3", "-003"),
        ("x", "255", "ff"),
        ("#o", "8", "0o10"),
        ("c", "65", "A"),
        (".2f", "1.5", "1.50"),
        (".2f", "2", "2.00"),
        ("%", "0.25", "25.000000%"),
        ("05", "7", "00007"),
        (",", "1234567", "1,234,567"),
        ("+", "5", "+5"),
        ("=+6", "42", "+   42"),
        ("n", "3", "3"),
    ],
)
def test_text_is_converted_only_where_the_spec_needs_a_number(
    spec: str, text: str, rendered: str
) -> None:
    key = parse(f"{{v:{spec}}}-{{counter}}" if spec else "{v}-{counter}", "T", no_templates).key(
        {"v": text}
    )
    assert key == f"{rendered}-{{counter}}"


@pytest.mark.parametrize(
    ("spec", "text", "message"),
    [
        ("04d", "MMXXIV", "{v:04d} needs an integer, not 'MMXXIV'"),
        ("04d", "1.5", "{v:04d} needs an integer, not '1.5'"),
        ("d", " 7", "{v:d} needs an integer, not ' 7'"),
        ("x", "", "{v:x} needs an integer, not ''"),
        (".2f", "one", "{v:.2f} needs a number, not 'one'"),
        ("05", "seven", "{v:05} needs a number, not 'seven'"),
    ],
)
def test_text_that_is_not_a_number_is_refused(spec: str, text: str, message: str) -> None:
    parsed = parse(f"{{v:{spec}}}-{{counter}}", "T", no_templates)
    with pytest.raises(TemplateError) as raised:
        parsed.key({"v": text})
    assert str(raised.value) == message


def test_text_keeps_its_own_counter() -> None:
    parsed = parse("{dept}-{counter}", "T", no_templates)
    keys = {parsed.key({"dept": text}) for text in ["0042", "42", "007", " 7", "7"]}
    assert len(keys) == 5
    assert parsed.key({"dept": 42}) == parsed.key({"dept": "42"})  # they render alike


def test_a_number_and_its_text_share_a_counter_where_the_spec_converts() -> None:
    parsed = parse("{year:04d}/{counter}", "T", no_templates)
    assert parsed.key({"year": "24"}) == parsed.key({"year": 24}) == parsed.key({"year": "0024"})


def test_a_conversion_keeps_text() -> None:
    parsed = parse("{v!s:>4}-{counter}", "T", no_templates)
    assert parsed.key({"v": "07"}) == "  07-{counter}"
