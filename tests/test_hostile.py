"""Hostile input, generated: every call succeeds or raises a SequenceError, stores what it
was given literally, and changes nothing stored when it raises."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from mortar_seq import (
    NativeSequence,
    PooledSequence,
    SequenceConfigError,
    SequenceError,
    TableSequence,
    get_sequence,
    register_sequence,
    register_template,
)
from mortar_seq.model import Counter, StoredSequence

from .tables import canary
from .test_input import HOSTILE_NAMES

# The engine fixture empties the tables once per test; each example checks its own effect.
examples = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NASTY = [
    "'",
    '"',
    "`",
    "\\",
    "%",
    "%s",
    "%(x)s",
    "{",
    "}",
    "{}",
    "{0}",
    "\x00",
    "\ud800",
    ";",
    "--",
    "/*",
    "é",
    "名",
    "🚀",
    " ",
    "\n",
    "\t",
    ":",
    "!",
    "[",
    "]",
    ".",
]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=6)), max_size=12).map(
    "".join
)
long_text = st.text(
    alphabet=st.sampled_from(["a", "é", "'", "{", "}", "%", "名"]), min_size=95, max_size=400
)
hostile_text = st.one_of(nasty_text, long_text, st.text())
IMPLS = [TableSequence, NativeSequence, PooledSequence]


def _tables(connection: sa.Connection) -> list[Any]:
    rows = [
        *connection.execute(sa.select(StoredSequence.__table__)).all(),
        *connection.execute(sa.select(Counter.__table__)).all(),
    ]
    return sorted(rows, key=repr)


def _stored(engine: Engine) -> tuple[list[Any], list[str]]:
    """What is committed: the library's rows and the database sequences."""
    with engine.connect() as connection:
        sequences = []
        if connection.dialect.supports_sequences:
            sequences = sorted(sa.inspect(connection).get_sequence_names())
        return _tables(connection), sequences


def _attempt(engine: Engine, call: Callable[[sa.Connection], Any]) -> Any:
    """Run *call* in a transaction committed on success. On a SequenceError, check that
    nothing changed, neither in the transaction nor committed apart, and return None."""
    before = _stored(engine)
    with engine.connect() as connection:
        inside = _tables(connection)
        try:
            result = call(connection)
        except SequenceError:
            assert _tables(connection) == inside
            connection.rollback()
            assert _stored(engine) == before
            return None
        connection.commit()
        return result


@pytest.mark.slow
@examples
@given(name=hostile_text, impl=st.sampled_from(IMPLS))
def test_any_sequence_name(engine: Engine, name: str, impl: type[Any]) -> None:
    sequence = _attempt(engine, lambda connection: register_sequence(name, connection, impl))
    value = None if sequence is None else _attempt(engine, sequence.next)
    if value is not None:
        with engine.connect() as connection:
            assert get_sequence(name, connection).last(connection) is not None
            stored = sa.select(StoredSequence.name).where(StoredSequence.name == name)
            assert connection.execute(stored).scalar_one() == name


PIECES = [
    "{counter}",
    "{counter:03d}",
    "{counter!r}",
    "{counter:zz}",
    "{a}",
    "{b:>5}",
    "{a!s}",
    "{a!x}",
    "{P}",
    "{T}",
    "{",
    "}",
    "{{",
    "}}",
    "{0}",
    "{}",
    "{a.b}",
    "{a[0]}",
    "{:d}",
    "{a:{b}}",
]
patterns = st.lists(
    st.one_of(st.sampled_from(PIECES), st.sampled_from(NASTY), st.text(max_size=4)), max_size=8
).map("".join)
values = st.one_of(hostile_text, st.integers(), st.floats(allow_nan=True), st.none())
keywords = st.dictionaries(st.sampled_from(["a", "b", "P", "T", "counter"]), values)


@pytest.mark.slow
@examples
@given(pattern=patterns, given_keywords=keywords)
def test_any_template_pattern_and_keywords(
    engine: Engine, pattern: str, given_keywords: dict[str, Any]
) -> None:
    digest = hashlib.sha256(pattern.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    name = f"tpl-{digest}"

    def parent(connection: sa.Connection) -> str:
        return register_template("P", "P{counter}", connection).next(connection)

    issued_by_parent = _attempt(engine, parent)
    if issued_by_parent is not None and given_keywords.get("P") is None:
        given_keywords = {**given_keywords, "P": issued_by_parent}

    template = _attempt(engine, lambda connection: register_template(name, pattern, connection))
    if template is None:
        return

    def use(connection: sa.Connection) -> tuple[str, str | None]:
        identifier = template.next(connection, **given_keywords)
        return identifier, template.last(connection, **given_keywords)

    taken = _attempt(engine, use)
    if taken is not None:
        identifier, last = taken
        assert isinstance(identifier, str)
        assert last == identifier


@pytest.mark.slow
@examples
@given(value=st.one_of(hostile_text, st.integers()))
def test_keyword_values_are_stored_literally(engine: Engine, value: Any) -> None:
    template = _attempt(engine, lambda c: register_template("K", "{a}|{counter}", c))
    identifier = _attempt(engine, lambda connection: template.next(connection, a=value))
    if identifier is not None:
        rendered, _, number = identifier.rpartition("|")
        assert rendered == str(value)
        with engine.connect() as connection:
            keys = connection.execute(sa.select(Counter.key).where(Counter.name == "K"))
            key = {key for key in keys.scalars() if key.format(counter=int(number)) == identifier}
            assert len(key) == 1  # the key, filled in, gives back exactly this identifier


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_injection_in_names(engine: Engine, name: str, impl: type[Any]) -> None:
    with engine.begin() as connection:
        connection.execute(canary.insert().values(id=1))
    with engine.begin() as connection:
        supported = impl is not NativeSequence or connection.dialect.supports_sequences
        if supported:
            sequence = register_sequence(name, connection, impl)
            assert sequence.next_many(connection, 2) == range(1, 3)
        else:
            with pytest.raises(SequenceConfigError, match="no SEQUENCE"):
                register_sequence(name, connection, impl)
    with engine.connect() as connection:
        assert connection.execute(sa.select(canary.c.id)).scalars().all() == [1]
        names = connection.execute(sa.select(StoredSequence.name)).scalars().all()
        assert names == ([name] if supported else [])


@pytest.mark.parametrize("value", HOSTILE_NAMES)
def test_injection_in_template_keywords(engine: Engine, value: str) -> None:
    with engine.begin() as connection:
        connection.execute(canary.insert().values(id=1))
        template = register_template("INJ", "{who}/{counter}", connection)
        assert template.next(connection, who=value) == f"{value}/1"
        assert template.last(connection, who=value) == f"{value}/1"
    with engine.connect() as connection:
        assert connection.execute(sa.select(canary.c.id)).scalars().all() == [1]
        keys = connection.execute(sa.select(Counter.key).where(Counter.name == "INJ"))
        escaped = value.replace("{", "{{").replace("}", "}}")
        assert keys.scalars().all() == [f"{escaped}/{{counter}}"]
