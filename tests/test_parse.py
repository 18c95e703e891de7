"""Identifiers read back: Template.parse, and parent checks that cost the same for any size."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import (
    NativeSequence,
    PooledSequence,
    SequenceConfigError,
    TemplateError,
    register_template,
)
from mortar_seq import template as template_module
from mortar_seq.model import Counter
from mortar_seq.patterns.parse_back import counters, readings
from mortar_seq.patterns.pattern import parse

from .conftest import Caller, counting


def no_templates(name: str) -> bool:
    return False


@pytest.mark.parametrize(
    ("pattern", "text", "keywords", "counter"),
    [
        ("{year}: Playlist {counter}", "2015: Playlist 12", {"year": "2015"}, 12),
        ("{counter:03d}-{cat}", "007-books-and-more", {"cat": "books-and-more"}, 7),
        ("{dept}/{year:04d}/{counter:05d}", "HR/0024/00042", {"dept": "HR", "year": "0024"}, 42),
        ("F-{counter:x}", "F-ff", {}, 255),
        ("{v}:{counter}", "{{0}}:3", {"v": "{{0}}"}, 3),
        ("{a}-{a}-{counter}", "x-x-1", {"a": "x"}, 1),
        ("{v!r}/{counter}", "'a/b'/4", {"v": "'a/b'"}, 4),
    ],
)
def test_read_back(pattern: str, text: str, keywords: dict[str, str], counter: int) -> None:
    parsed = parse(pattern, "T", no_templates)
    (reading,) = readings(parsed, text, limit=5)
    assert (reading.keywords, reading.counter) == (keywords, counter)
    assert reading.key == parsed.key(keywords) or "!r" in pattern


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("{year}: Playlist {counter}", "2015: Playlist x"),
        ("{year}: Playlist {counter:02d}", "2015: Playlist 7"),  # not as the spec renders 7
        ("{year:04d}/{counter}", "24/1"),
        ("{a}-{a}-{counter}", "x-y-1"),
        ("{counter}", ""),
    ],
)
def test_not_a_rendering(pattern: str, text: str) -> None:
    assert readings(parse(pattern, "T", no_templates), text) == []


def test_candidate_keys_are_few_however_many_splits() -> None:
    parsed = parse("{a}{b}{c}{d}-{counter}", "T", no_templates)
    assert counters(parsed, "x" * 200 + "-7") == {("x" * 200 + "-{counter}", 7)}
    assert len(readings(parsed, "x" * 200 + "-7", limit=1000)) == 1000


def test_parse_refuses_what_reads_two_ways(caller: Caller) -> None:
    with caller.block() as session:
        template = register_template("AB", "{a}{b}-{counter}", session)
        assert template.next(session, a="1", b="2") == "12-1"
        with pytest.raises(TemplateError) as raised:
            template.parse("12-1")
        assert str(raised.value) == (
            "'12-1' reads more than one way as '{a}{b}-{counter}': "
            "{'a': '', 'b': '12'} or {'a': '1', 'b': '2'}"
        )


def test_parse(caller: Caller) -> None:
    with caller.block() as session:
        playlist = register_template("PL", "{year}: Playlist {counter}", session, step=2)
        audio = register_template("AF", "{PL} > Audio File {counter:02d}", session)
    assert playlist.parse("2015: Playlist 3") == ({"year": "2015"}, 3)
    assert audio.parse("2015: Playlist 3 > Audio File 01") == ({"PL": "2015: Playlist 3"}, 1)
    for wrong in [
        "2015: Playlist 2",  # off the series 1, 3, 5 ...
        "2015: Playlist -1",  # before its start
        "2015: Playlist",
        "nonsense",
    ]:
        with pytest.raises(TemplateError, match="is not an identifier of template 'PL'"):
            playlist.parse(wrong)
    with pytest.raises(TemplateError, match="is not an identifier of template 'AF'"):
        audio.parse("2015: Playlist 2 > Audio File 01")  # no identifier of PL
    with pytest.raises(TemplateError, match="an identifier is text, not int"):
        playlist.parse(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("impl", [None, PooledSequence(block=3), NativeSequence()])
def test_parent_check_costs_the_same_for_any_number_of_parent_keys(
    engine: Engine, impl: object
) -> None:
    if isinstance(impl, NativeSequence) and not engine.dialect.supports_sequences:
        with engine.begin() as connection, pytest.raises(SequenceConfigError):
            register_template("PL", "{year}: Playlist {counter}", connection, impl=impl)
        return
    with engine.begin() as connection:
        parent = register_template("PL", "{year}: Playlist {counter}", connection, impl=impl)
        child = register_template("AF", "{PL} > {counter}", connection)
        for year in range(3):
            parent.next(connection, year=year)
    sent_per_size = []
    for size in (3, 60):
        with engine.begin() as connection:
            for year in range(3, size):
                parent.next(connection, year=year)
        with engine.begin() as connection:
            child.next(connection, PL="1: Playlist 1")
            with counting(engine) as sent:
                child.next(connection, PL="1: Playlist 1")
            sent_per_size.append(len(sent))
            with pytest.raises(TemplateError, match="not an identifier issued by template 'PL'"):
                child.next(connection, PL="1: Playlist 5000")  # beyond any block or cache
            with counting(engine) as sent, pytest.raises(TemplateError):
                child.next(connection, PL="1: Playlist x")
            assert sent == []  # it cannot be one: no need to ask the database
    assert sent_per_size[0] == sent_per_size[1]


def test_known_counters_are_bounded(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_module, "_KNOWN_MAX", 5)
    with engine.begin() as connection:
        template = register_template("K", "{k}-{counter}", connection)
        for k in range(12):
            assert template.next(connection, k=k) == f"{k}-1"
        assert len(template_module._known[engine]) == 5
        for k in range(12):  # forgotten ones are found again, not created twice
            assert template.next(connection, k=k) == f"{k}-2"
        rows = connection.execute(sa.select(sa.func.count()).select_from(Counter)).scalar_one()
        assert rows == 12
    with engine.begin() as connection:
        template.next(connection, k=11)
        with counting(engine) as sent:  # still known: one counter call
            template.next(connection, k=11)
        assert len(sent) == 1  # one counter statement, on every database
