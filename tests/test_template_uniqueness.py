"""A template never issues one text twice, and every text it issues reads back.

Counter formats that write two integers alike are refused at registration; a text that
another counter of the template could issue too (a keyword glued to the counter, free text
on both sides) is refused when it would be issued. Property tests generate patterns and
keyword values, in pure Python and through each database.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from mortar_seq import TableSequence, TemplateError, get_next_value, register_template
from mortar_seq.model import Counter
from mortar_seq.patterns.parse_back import (
    counter_elsewhere,
    counters,
    one_way_for_every_counter,
    reads_one_way,
)
from mortar_seq.patterns.pattern import COUNTER, Pattern, around_counter, identifier, parse
from mortar_seq.template import Template

LOSSY_COUNTERS = [
    "{counter:.2e}",  # 1000..1009 all '1.00e+03'
    "{counter!s:.1}",  # 1 and 10..19 all '1'
    "{counter!s:.3}",  # 100 and 1000 both '100'
    "{counter:f}",
    "{counter:.0%}",
    "{counter:g}",
    "{counter:c}",  # ends at 1,114,111
    "{counter:n}",  # the locale's separators
    "{counter:0<3}",  # 1, 10 and 100 all '100'
    "{counter:1>3}",  # 1, 11 and 111 all '111'
    "{counter:->3}",  # 1 and -1 both '--1'
    "{counter!s:05}",  # text: '1' pads to '10000', as 10000 writes
]
INJECTIVE_COUNTERS = [
    "{counter}",
    "{counter:05d}",
    "{counter:05}",
    "{counter:x}",
    "{counter:#010b}",
    "{counter:,}",
    "{counter:_x}",
    "{counter:*^9}",
    "{counter: >6}",
    "{counter:+06}",
    "{counter!s}",
    "{counter!r:>8}",
    "{counter:<5}",
]


@pytest.mark.parametrize("counter", LOSSY_COUNTERS)
def test_lossy_counter_formats_are_refused(counter: str) -> None:
    with pytest.raises(TemplateError, match="two counters would issue one identifier") as caught:
        parse(f"INV-{counter}", "INV", lambda name: False)
    assert counter in str(caught.value)


@pytest.mark.parametrize("counter", INJECTIVE_COUNTERS)
def test_injective_counter_formats_are_kept(counter: str) -> None:
    parsed = parse(f"INV-{counter}", "INV", lambda name: False)
    texts = [identifier(parsed.key({}), n) for n in range(-130, 1300)]
    assert len(set(texts)) == len(texts)


def test_a_lossy_counter_is_refused_with_nothing_stored(engine: Engine) -> None:
    with engine.begin() as connection, pytest.raises(TemplateError, match=r"\.2e"):
        register_template("INV", "INV-{counter:.2e}", connection)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Counter)).scalar() == 0


def _issue(engine: Engine, template: str, pattern: str, **keywords: Any) -> str:
    with engine.begin() as connection:
        tpl = register_template(template, pattern, connection)
        return tpl.next(connection, **keywords)


def _counter_value(engine: Engine, name: str, key: str) -> int | None:
    with engine.connect() as connection:
        query = sa.select(Counter.value).where(Counter.name == name, Counter.key == key)
        return connection.execute(query).scalar()


def test_a_keyword_glued_to_the_counter_never_issues_one_text_twice(engine: Engine) -> None:
    # Before: 'INV-111' for month=1 at counter 11 and again for month=11 at counter 1.
    pattern = "INV-{month}{counter}"
    with engine.begin() as connection:
        tpl = register_template("INV", pattern, connection)
    for month in (1, 11):
        for _ in range(3):
            with engine.begin() as connection, pytest.raises(TemplateError) as refused:
                tpl.next(connection, month=month)
            assert "'month'" in str(refused.value)
            assert pattern in str(refused.value)
    # Each block caught the refusal and committed: the values were given back all the same.
    assert _counter_value(engine, "INV", "INV-1{counter}") in (None, 0)


def test_free_text_on_both_sides_never_issues_one_text_twice(engine: Engine) -> None:
    # Before: '1-1-1-x' for a='1', b='1-x' and again for a='1-1', b='x'.
    pattern = "{a}-{counter}-{b}"
    with engine.begin() as connection:
        tpl = register_template("T", pattern, connection)
    with engine.begin() as connection, pytest.raises(TemplateError, match="'1-1-1-x'"):
        tpl.next(connection, a="1", b="1-x")
    with engine.begin() as connection, pytest.raises(TemplateError, match="'1-1-1-x'"):
        tpl.next(connection, a="1-1", b="x")
    with engine.begin() as connection:
        assert tpl.next(connection, a="shop", b="eu") == "shop-1-eu"
        assert tpl.parse("shop-1-eu") == ({"a": "shop", "b": "eu"}, 1)


def test_keyword_values_that_render_alike_share_a_counter(engine: Engine) -> None:
    pattern = "{year}{month:02d}-{counter}"
    with engine.begin() as connection:
        tpl = register_template("YM", pattern, connection)
        first = tpl.next(connection, year=2026, month=1)
        second = tpl.next(connection, year=202, month=601)
        third = tpl.next(connection, year="2026", month="1")
    assert [first, second, third] == ["202601-1", "202601-2", "202601-3"]


@pytest.mark.parametrize(
    ("pattern", "keywords", "text"),
    [
        ("{h:x}-{counter}", {"h": 326}, "146-1"),
        ("{n:o}-{counter}", {"n": 326}, "506-1"),
        ("{n:b}-{counter}", {"n": 5}, "101-1"),
        ("{n:,}-{counter}", {"n": 1234567}, "1,234,567-1"),
        ("{n:#x}/{counter:03d}", {"n": 255}, "0xff/001"),
        ("{n:_b}{counter:*>4}", {"n": 20}, "1_0100***1"),
    ],
)
def test_what_a_template_issues_parses_back(
    engine: Engine, pattern: str, keywords: dict[str, int], text: str
) -> None:
    # Before: parse('146-1') raised "not an identifier of template".
    issued = _issue(engine, "T", pattern, **keywords)
    assert issued == text
    with engine.connect() as connection:
        tpl = register_template("T", pattern, connection)
    rendered, counter = tpl.parse(issued)
    assert counter == 1
    assert set(rendered) == set(keywords)


def test_a_child_of_a_hex_parent(engine: Engine) -> None:
    # Before: the child refused the parent's own 'ff/1', so the hierarchy was unusable.
    with engine.begin() as connection:
        parent = register_template("H", "{h:x}/{counter}", connection)
        child = register_template("C", "{H} > {counter:02d}", connection)
        issued = parent.next(connection, h=255)
        assert issued == "ff/1"
        assert child.next(connection, H=issued) == "ff/1 > 01"
        with pytest.raises(TemplateError, match="not an identifier issued"):
            child.next(connection, H="fe/1")


def test_a_refused_text_gives_the_counter_back_in_the_callers_transaction(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        tpl = register_template("G", "G{a}{counter}", connection)
        assert tpl.next(connection, a="x") == "Gx1"
    with engine.connect() as connection:
        with pytest.raises(TemplateError, match="the counter was given back"):
            tpl.next(connection, a="x1")  # 'Gx11' is a='x' at 11 too
        assert connection.in_transaction()  # never committed or rolled back for the caller
        connection.commit()  # even committed, nothing is skipped
    assert _counter_value(engine, "G", "Gx1{counter}") is None
    with engine.begin() as connection:
        assert tpl.next(connection, a="x") == "Gx2"
        assert get_next_value(connection, "other") == 1  # the database is still fine


# -- property tests ---------------------------------------------------------------------

LITERALS = st.sampled_from(["", "", "-", "/", "1", "a", "-1", "x-"])
KEYWORD_SPECS = st.sampled_from(["", "", "02d", "x", ",", "04", ">3", "!s", "!r"])
COUNTER_SPECS = st.sampled_from(
    [
        "",
        "",
        ":03d",
        ":x",
        ":05",
        ":,",
        ":*^5",
        ":+",
        "!s",
        ":.2e",
        "!s:.1",
        ":0<3",
        ":1>3",
        "!s:<4",
    ]
)
TEXTS = st.text(alphabet="1-a/x0", max_size=4)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.sampled_from("abc"), min_size=0, max_size=3, unique=True))
    fields = [f"{{{name}{_spec(draw(KEYWORD_SPECS))}}}" for name in names]
    at = draw(st.integers(0, len(fields)))
    fields.insert(at, "{counter" + draw(COUNTER_SPECS) + "}")
    return "".join(draw(LITERALS) + field for field in fields) + draw(LITERALS)


def _spec(spec: str) -> str:
    return spec if spec.startswith("!") or not spec else ":" + spec


def keyword_values(pattern: Pattern) -> st.SearchStrategy[dict[str, object]]:
    values: dict[str, st.SearchStrategy[object]] = {}
    for _, field in pattern.parts:
        if field is None or field.name == COUNTER:
            continue
        numeric = field.spec[-1:] in ("d", "x", ",") or field.spec == "04"
        values[field.name] = (
            st.integers(0, 300) if numeric else st.one_of(TEXTS, st.integers(0, 130))
        )
    return st.fixed_dictionaries(values)


def _template(pattern: Pattern, start: int, step: int) -> Template:
    return Template("T", pattern, start, step, TableSequence())


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(), text=patterns(), start=st.sampled_from([1, 0, 7]), step=st.sampled_from([1, 2])
)
def test_no_text_is_issued_twice_and_each_reads_back(
    data: st.DataObject, text: str, start: int, step: int
) -> None:
    try:
        pattern = parse(text, "T", lambda name: False)
    except TemplateError:
        return  # refused at registration: nothing is ever issued
    tpl = _template(pattern, start, step)
    issued: dict[str, tuple[str, int]] = {}
    calls = data.draw(st.lists(keyword_values(pattern), min_size=1, max_size=6))
    for keywords, steps in itertools.product(calls, range(12)):
        value = start + steps * step
        try:
            key = pattern.key(keywords)
        except TemplateError:
            continue
        written = identifier(key, value)
        if reads_one_way(pattern, written) or one_way_for_every_counter(
            pattern, key, negative=start < 0
        ):
            assert counters(pattern, written) == {(key, value)}  # the fast paths are right
        before, after = around_counter(key)
        span = (len(before), len(written) - len(after))
        if counter_elsewhere(pattern, written, span, tpl._in_series) is False:
            issuers = {pair for pair in counters(pattern, written) if tpl._in_series(pair[1])}
            assert issuers == {(key, value)}
        if tpl._other_readings(key, value, written) is not None:
            continue  # refused: never issued
        assert issued.setdefault(written, (key, value)) == (key, value), written
        counter, refusal = _read_back(tpl, written)
        assert counter == value or "reads more than one way" in refusal  # splits, one counter


examples = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@examples
@given(data=st.data(), text=patterns())
def test_a_database_never_issues_one_text_twice(
    engine: Engine, data: st.DataObject, text: str
) -> None:
    try:
        pattern = parse(text, "T", lambda name: False)
    except TemplateError:
        return
    calls = data.draw(st.lists(keyword_values(pattern), min_size=1, max_size=4))
    name = f"P{abs(hash((text, repr(calls)))) % 10**9}"
    issued: list[str] = []
    with engine.connect() as connection:
        tpl = register_template(name, text, connection)
        for keywords in calls * 3:
            try:
                with connection.begin_nested():
                    issued.append(tpl.next(connection, **keywords))
            except TemplateError:
                continue
        connection.rollback()
    assume(issued)
    assert len(issued) == len(set(issued))
    for each in issued:
        counter, refusal = _read_back(tpl, each)
        assert counter is not None or "reads more than one way" in refusal


def _read_back(tpl: Template, text: str) -> tuple[int | None, str]:
    """The counter *text* reads back to, or None and why `parse` refused it."""
    try:
        return tpl.parse(text)[1], ""
    except TemplateError as refused:
        return None, str(refused)
