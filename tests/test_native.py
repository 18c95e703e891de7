"""NativeSequence: a database SEQUENCE; its SQL on PostgreSQL, MariaDB and Oracle."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, oracle, postgresql
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateSequence

from mortar_seq import (
    NativeSequence,
    PooledSequence,
    SequenceConfigError,
    SequenceExhausted,
    TableSequence,
    TemplateError,
    delete_sequence,
    get_last_value,
    get_next_value,
    get_next_values,
    get_sequence,
    register_sequence,
    register_template,
)
from mortar_seq import registry as registry_module
from mortar_seq.definition import INT64_MAX, Definition
from mortar_seq.dialects import CurrentValue, NextValues
from mortar_seq.model import StoredSequence
from mortar_seq.strategies import native_name

from .tables import canary

MARIADB = mysql.dialect(is_mariadb=True)


def _sql(statement: sa.sql.ClauseElement, dialect: Dialect) -> str:
    return " ".join(str(statement.compile(dialect=dialect)).split())


def _sequence(**settings: int | None) -> sa.Sequence:
    return NativeSequence().sequence(Definition("invoice", **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (postgresql.dialect(), "SELECT nextval('mseq_invoice_{digest}') AS next_value_1"),
        (MARIADB, "SELECT nextval(mseq_invoice_{digest}) AS next_value_1"),
        (oracle.dialect(), "SELECT mseq_invoice_{digest}.nextval AS next_value_1 FROM DUAL"),
    ],
)
def test_next_sql(dialect: Dialect, expected: str) -> None:
    digest = native_name("invoice").rsplit("_", 1)[1]
    statement = sa.select(_sequence().next_value())
    assert _sql(statement, dialect) == expected.format(digest=digest)


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (
            postgresql.dialect(),
            "SELECT nextval('{name}') FROM generate_series(1, 1000) AS n ORDER BY n",
        ),
        (MARIADB, "SELECT nextval({name}) FROM seq_1_to_1000 ORDER BY seq"),
        (oracle.dialect(), "SELECT {name}.nextval FROM DUAL CONNECT BY LEVEL <= 1000"),
    ],
)
def test_next_many_sql_is_one_statement(dialect: Dialect, expected: str) -> None:
    statement = NextValues(_sequence(), 1000)
    assert _sql(statement, dialect) == expected.format(name=native_name("invoice"))


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (postgresql.dialect(), "SELECT CASE WHEN is_called THEN last_value END FROM {name}"),
        (MARIADB, "next_not_cached_value - increment END FROM {name}"),
        (oracle.dialect(), "FROM user_sequences WHERE sequence_name = :param_1"),
    ],
)
def test_current_value_sql(dialect: Dialect, expected: str) -> None:
    assert expected.format(name=native_name("invoice")) in _sql(CurrentValue(_sequence()), dialect)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, "INCREMENT BY 1 START WITH 1 MINVALUE 1"),
        (
            {"start": 0, "reset": 60},
            "INCREMENT BY 1 START WITH 0 MINVALUE 0 MAXVALUE 59 CACHE 1 CYCLE",
        ),
        (
            {"start": 10, "step": -5, "reset": 0},
            "INCREMENT BY -5 START WITH 10 MINVALUE 5 MAXVALUE 10 CACHE 1 CYCLE",
        ),
        ({"start": -3, "step": -1}, "INCREMENT BY -1 START WITH -3 MAXVALUE -3"),
    ],
)
def test_create_sql(settings: dict[str, int], expected: str) -> None:
    for dialect in (postgresql.dialect(), MARIADB, oracle.dialect()):
        ddl = _sql(CreateSequence(_sequence(**settings), if_not_exists=True), dialect)
        assert ddl.startswith("CREATE SEQUENCE IF NOT EXISTS mseq_invoice_")
        assert ddl.endswith(expected)


def test_create_sql_with_cache() -> None:
    sequence = NativeSequence(cache=50).sequence(Definition("invoice"))
    assert _sql(CreateSequence(sequence), oracle.dialect()).endswith("MINVALUE 1 CACHE 50")


@pytest.mark.parametrize("cache", [0, -1, True, 1.5, "20"])
def test_bad_cache(cache: object) -> None:
    with pytest.raises(SequenceConfigError, match="cache must be None or an integer"):
        NativeSequence(cache=cache)  # type: ignore[arg-type]


def test_native_names_are_safe_and_distinct() -> None:
    names = ["invoice", "Invoice", "invoice ", "x'; DROP TABLE canary; --", "発票", "a" * 100]
    derived = [native_name(name) for name in names]
    assert len(set(derived)) == len(names)
    for name in derived:
        assert len(name) <= 30
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789_")


# The databases with SEQUENCE objects here; elsewhere the clear error is asserted.
WITH_SEQUENCES = pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)
WITHOUT_SEQUENCES = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def _database_sequences(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sa.inspect(connection).get_sequence_names()


@WITHOUT_SEQUENCES
def test_unsupported_database_says_so(engine: Engine) -> None:
    with engine.begin() as connection:
        with pytest.raises(SequenceConfigError, match="has no SEQUENCE objects: use TableSequence"):
            register_sequence("invoice", connection, NativeSequence)
        assert connection.execute(sa.select(StoredSequence.name)).all() == []


@pytest.fixture
def native_engine(engine: Engine) -> Engine:
    with engine.connect() as connection:  # MariaDB's support is known once connected
        assert connection.dialect.supports_sequences
    return engine


@WITH_SEQUENCES
def test_values(native_engine: Engine) -> None:
    with native_engine.begin() as connection:
        # cache=1: last() is exact (it counts what connections reserved in their caches).
        seq = register_sequence("invoice", connection, NativeSequence(cache=1), start=100, step=10)
        assert seq.last(connection) is None
        assert [seq.next(connection) for _ in range(3)] == [100, 110, 120]
        assert seq.last(connection) == 120
        assert seq.next_many(connection, 5) == range(130, 180, 10)
    assert native_name("invoice") in _database_sequences(native_engine)
    registry_module.registry = registry_module.Registry()  # as in another process
    with native_engine.begin() as connection:
        found = get_sequence("invoice", connection)
        assert found.strategy == NativeSequence(cache=1)
        assert found.next(connection) == 180
        assert get_next_value(connection, "invoice") == 190  # the one-call form uses it too
        assert get_next_values(connection, 2, "invoice") == range(200, 220, 10)
        assert get_last_value(connection, "invoice") == 210


@WITH_SEQUENCES
def test_last_counts_cached_values(native_engine: Engine) -> None:
    with native_engine.begin() as connection:
        seq = register_sequence("cached", connection, NativeSequence(cache=20))
        assert seq.next_many(connection, 3) == range(1, 4)
        last = seq.last(connection)
        assert last is not None
        assert 3 <= last <= 20


@WITH_SEQUENCES
def test_reset_and_descending(native_engine: Engine) -> None:
    with native_engine.begin() as connection:
        minute = register_sequence("minute", connection, NativeSequence, start=0, reset=3)
        assert [minute.next(connection) for _ in range(4)] == [0, 1, 2, 0]
        assert sorted(minute.next_many(connection, 3)) == [0, 1, 2]
        down = register_sequence("down", connection, NativeSequence, start=-1, step=-2)
        assert [down.next(connection) for _ in range(2)] == [-1, -3]
        assert down.next_many(connection, 3) == [-5, -7, -9]


@WITH_SEQUENCES
def test_never_blocks(native_engine: Engine) -> None:
    with native_engine.begin() as connection:
        seq = register_sequence("fast", connection, NativeSequence)
    with native_engine.connect() as holder, native_engine.connect() as other:
        assert seq.next(holder) == 1
        assert seq.next(other, nowait=True) == 2
        holder.rollback()
        other.rollback()
    with native_engine.connect() as connection:
        assert seq.next(connection) == 3  # not gapless: nothing came back


@WITH_SEQUENCES
def test_registration_follows_the_transaction_where_ddl_does(native_engine: Engine) -> None:
    with native_engine.connect() as connection:
        register_sequence("tentative", connection, NativeSequence)
        connection.rollback()
    transactional = native_engine.dialect.name == "postgresql"
    assert (native_name("tentative") in _database_sequences(native_engine)) is not transactional


@WITH_SEQUENCES
def test_hostile_names(native_engine: Engine) -> None:
    name = "x'; DROP TABLE canary; --"
    with native_engine.begin() as connection:
        connection.execute(canary.insert().values(id=1))
        seq = register_sequence(name, connection, NativeSequence(cache=5))
        assert seq.next_many(connection, 3) == range(1, 4)
    with native_engine.begin() as connection:
        assert connection.execute(sa.select(canary.c.id)).scalars().all() == [1]
        assert delete_sequence(connection, name) is True
    assert native_name(name) not in _database_sequences(native_engine)


@WITH_SEQUENCES
def test_exhausted(native_engine: Engine) -> None:
    with native_engine.begin() as connection:
        register_sequence("edge", connection, NativeSequence, start=INT64_MAX - 2)
    taken: list[int] = []

    def drain(connection: sa.Connection) -> None:
        for _ in range(4):
            taken.append(get_sequence("edge").next(connection))

    with native_engine.connect() as connection, pytest.raises(SequenceExhausted, match="'edge'"):
        drain(connection)
    assert taken[:2] == [INT64_MAX - 2, INT64_MAX - 1]  # MariaDB stops one short of 2**63 - 1


@WITH_SEQUENCES
def test_native_template(native_engine: Engine) -> None:
    with native_engine.begin() as connection:
        template = register_template(
            "NT", "{k}-{counter}", connection, impl=NativeSequence(cache=1)
        )
        child = register_template("NC", "{NT}/{counter}", connection)
        assert [template.next(connection, k="a"), template.next(connection, k="b")] == [
            "a-1",
            "b-1",
        ]
        assert template.next_many(connection, 2, k="a") == ["a-2", "a-3"]
        assert child.next(connection, NT="a-3") == "a-3/1"
        with pytest.raises(TemplateError, match="not an identifier issued"):
            child.next(connection, NT="b-2")
    names = _database_sequences(native_engine)
    assert native_name("NT", "a-{counter}") in names
    assert native_name("NT", "b-{counter}") in names


@WITH_SEQUENCES
def test_deleting_a_native_template_drops_every_counter(native_engine: Engine) -> None:
    with native_engine.begin() as connection:
        template = register_template("ND", "{k}-{counter}", connection, impl=NativeSequence)
        template.next(connection, k="a")
        template.next(connection, k="b")
    assert {native_name("ND", "a-{counter}"), native_name("ND", "b-{counter}")} <= set(
        _database_sequences(native_engine)
    )
    with native_engine.begin() as connection:
        assert delete_sequence(connection, "ND") is True
    assert [name for name in _database_sequences(native_engine) if name.startswith("mseq_nd")] == []


@pytest.mark.parametrize("kind", ["session", "connection"])
@pytest.mark.parametrize("impl", [TableSequence, NativeSequence, PooledSequence])
def test_registered_first_on_a_new_engine(engine: Engine, kind: str, impl: type) -> None:
    # What an application does at start-up: before anything has connected, the dialect of
    # a mysql:// URL does not know yet that the server is MariaDB (which has sequences).
    fresh = sa.create_engine(engine.url)
    template_impl = impl()
    try:
        if not (impl is NativeSequence and not engine.dialect.supports_sequences):
            with _fresh_caller(fresh, kind) as session:
                seq = register_sequence("first", session, impl)
                tpl = register_template("T", "{counter}-t", session, impl=template_impl)
                assert seq.next(session) == 1
                assert tpl.next(session) == "1-t"
            return
        refused = pytest.raises(SequenceConfigError, match="has no SEQUENCE objects")
        with refused, _fresh_caller(fresh, kind) as session:
            register_sequence("first", session, impl)
    finally:
        fresh.dispose()


@contextmanager
def _fresh_caller(engine: Engine, kind: str) -> Iterator[Any]:
    if kind == "connection":
        with engine.begin() as connection:
            yield connection
        return
    with Session(engine) as session, session.begin():
        yield session
