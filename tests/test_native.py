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
    UnknownSequence,
    delete_sequence,
    get_last_value,
    get_next_value,
    get_next_values,
    get_sequence,
    get_template,
    register_sequence,
    register_template,
)
from mortar_seq import registry as registry_module
from mortar_seq.db.dialects import CurrentValue, NextValues, caches_per_connection
from mortar_seq.definition import INT64_MAX, INT64_MIN, Definition, define
from mortar_seq.model import StoredSequence
from mortar_seq.strategies import native, native_name

from .conftest import Caller
from .databases import Database
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
        (
            # Not called, last_value is the next value: the one before it, or none at start.
            postgresql.dialect(),
            "SELECT CASE WHEN state.is_called THEN state.last_value "
            "WHEN state.last_value <> pg_sequence.seqstart "
            "THEN state.last_value - pg_sequence.seqincrement END "
            "FROM {name} AS state JOIN pg_catalog.pg_sequence "
            "ON pg_sequence.seqrelid = state.tableoid",
        ),
        (
            MARIADB,
            "SELECT CASE WHEN next_not_cached_value <> start_value OR cycle_count > 0 "
            "THEN next_not_cached_value - increment END FROM {name}",
        ),
        (
            # No server here: LAST_NUMBER is the next value not cached, the start when fresh
            # (the library's sequences start at their MINVALUE, or MAXVALUE going down).
            oracle.dialect(),
            "SELECT CASE WHEN last_number <> CASE WHEN increment_by > 0 THEN min_value "
            "ELSE max_value END THEN last_number - increment_by END "
            "FROM user_sequences WHERE sequence_name = :param_1",
        ),
    ],
)
def test_current_value_sql(dialect: Dialect, expected: str) -> None:
    assert _sql(CurrentValue(_sequence()), dialect) == expected.format(name=native_name("invoice"))


def test_current_value_looks_up_the_name_oracle_stores() -> None:
    # CREATE SEQUENCE with an unquoted name stores it in upper case in USER_SEQUENCES.
    compiled = CurrentValue(_sequence()).compile(dialect=oracle.dialect())
    assert compiled.params == {"param_1": native_name("invoice").upper()}


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


@pytest.mark.parametrize("cache", [0, -1, True, 1.5, "20", 2**63, 2**63 - 1, 1_000_001])
def test_bad_cache(cache: object) -> None:
    # 2**63 - 1 made PostgreSQL's nextval spin for ever, deaf to cancel and terminate.
    with pytest.raises(SequenceConfigError, match="cache must be None or an integer from 1"):
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


# Settings, and a value to restart at that lies beyond the values a cache of 3 reserves.
RESTARTS = [
    pytest.param({}, 100, id="up"),
    pytest.param({"start": 100, "step": 10}, 1000, id="up-by-10"),
    pytest.param({"start": -1, "step": -2}, -101, id="down-by-2"),
    pytest.param({"start": 0, "reset": 60}, 30, id="resetting"),
    pytest.param({"start": 10, "step": -5, "reset": -40}, -20, id="resetting-down"),
]


@WITH_SEQUENCES
@pytest.mark.parametrize("cache", [1, 3])
@pytest.mark.parametrize(("settings", "value"), RESTARTS)
def test_last_after_a_restart_agrees_with_table_sequence(
    caller: Caller, settings: dict[str, int], value: int, cache: int
) -> None:
    # ALTER SEQUENCE ... RESTART WITH leaves a PostgreSQL sequence not called, as a fresh
    # one is: last() used to answer None there, as if nothing had been handed out.
    with caller.block() as session:
        native_seq = register_sequence("native", session, NativeSequence(cache=cache), **settings)
        table_seq = register_sequence("table", session, TableSequence, **settings)
        assert native_seq.last(session) is None
        assert table_seq.last(session) is None
    with caller.block() as session:
        for seq in (native_seq, table_seq):
            assert len({seq.next(session) for _ in range(5)}) == 5
            seq.restart(session, value)
        before = value - settings.get("step", 1)
        assert (native_seq.last(session), table_seq.last(session)) == (before, before)
    with caller.block() as session:
        assert native_seq.next(session) == table_seq.next(session) == value
        assert table_seq.last(session) == value
        # The values this connection's cache reserved count as reached.
        reserved = [value + settings.get("step", 1) * index for index in range(cache)]
        assert native_seq.last(session) in reserved


@WITH_SEQUENCES
@pytest.mark.parametrize(("settings", "value"), RESTARTS)
def test_back_to_start_nothing_is_handed_out(
    native_engine: Engine, settings: dict[str, int], value: int
) -> None:
    # As TableSequence stores it: restarted at start, the value before it is none.
    with native_engine.begin() as connection:
        native_seq = register_sequence("native", connection, NativeSequence(cache=1), **settings)
        table_seq = register_sequence("table", connection, TableSequence, **settings)
        for seq in (native_seq, table_seq):
            seq.next_many(connection, 5)
            seq.restart(connection, value)
    start = settings.get("start", 1)
    with native_engine.begin() as connection:  # MariaDB moves back apart, unused here
        for seq in (native_seq, table_seq):
            seq.restart(connection, start)
            assert seq.last(connection) is None
    with native_engine.begin() as connection:
        assert native_seq.next(connection) == table_seq.next(connection) == start


@WITH_SEQUENCES
def test_a_restart_never_hides_what_cached_values_reached(native_engine: Engine) -> None:
    with native_engine.begin() as connection:
        seq = register_sequence("cached", connection, NativeSequence(cache=20))
        assert [seq.next(connection) for _ in range(5)] == [1, 2, 3, 4, 5]
        seq.restart(connection, 100)
        assert seq.last(connection) == 99
    with native_engine.begin() as connection:  # MariaDB moves back apart, unused here
        if caches_per_connection(connection.dialect):
            # PostgreSQL: a cached sequence only moves forward, beyond the value before the
            # restart (back at 3 it would hand out 3, 4 and 5 again).
            with pytest.raises(SequenceConfigError, match="only move forward, beyond 99"):
                seq.restart(connection, 3)
            seq.restart(connection, 100)  # where it stands: no move back
            assert seq.next(connection) == 100
        else:
            # One cache per sequence (MariaDB), which the ALTER SEQUENCE empties.
            seq.restart(connection, 3)
            assert seq.next(connection) == 3


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


# The largest step MariaDB takes at all: CACHE times INCREMENT BY must stay below
# (2**63 - 1) - INCREMENT BY there, and a resetting sequence has CACHE 1.
MARIADB_STEP_MAX = INT64_MAX // 3
BOTH = frozenset({"postgresql", "mariadb"})
MARIADB_ONLY = frozenset({"mariadb"})

# Settings a database's CREATE SEQUENCE refuses, and where. PostgreSQL accepts the
# MariaDB-only ones (its caches are small here: its nextval loops once per cached value).
REFUSED = [
    pytest.param(NativeSequence(), {"start": 0, "step": 5, "reset": 1}, BOTH, id="cycle-of-one"),
    pytest.param(NativeSequence(), {"start": 0, "reset": 1}, BOTH, id="cycle-of-one-by-1"),
    pytest.param(
        NativeSequence(), {"start": 10, "step": -3, "reset": 8}, BOTH, id="down-cycle-of-one"
    ),
    pytest.param(NativeSequence(), {"start": INT64_MAX}, BOTH, id="starts-at-the-top"),
    pytest.param(
        NativeSequence(), {"start": INT64_MIN, "step": -1}, BOTH, id="starts-at-the-bottom"
    ),
    pytest.param(
        NativeSequence(), {"start": 2**62, "step": 2**60}, MARIADB_ONLY, id="default-cache"
    ),
    pytest.param(NativeSequence(cache=6), {"start": 0, "step": 2**60}, MARIADB_ONLY, id="cache-6"),
    pytest.param(
        NativeSequence(),
        {"start": 0, "step": MARIADB_STEP_MAX + 1, "reset": INT64_MAX},
        MARIADB_ONLY,
        id="step-beyond-any-cache",
    ),
    pytest.param(NativeSequence(), {"start": 0, "step": INT64_MIN}, MARIADB_ONLY, id="step-min"),
    pytest.param(NativeSequence(), {"start": INT64_MAX - 1}, MARIADB_ONLY, id="one-below-the-top"),
    pytest.param(
        NativeSequence(), {"start": INT64_MAX, "step": -1}, MARIADB_ONLY, id="down-from-top"
    ),
    pytest.param(
        NativeSequence(), {"start": INT64_MIN + 1, "step": -1}, MARIADB_ONLY, id="one-above-bottom"
    ),
    pytest.param(NativeSequence(), {"start": INT64_MIN}, MARIADB_ONLY, id="up-from-bottom"),
    pytest.param(
        NativeSequence(), {"start": INT64_MIN, "reset": -1}, MARIADB_ONLY, id="cycle-at-bottom"
    ),
    pytest.param(
        NativeSequence(),
        {"start": INT64_MAX, "step": -1, "reset": 0},
        MARIADB_ONLY,
        id="cycle-at-top",
    ),
]


def _nothing_stored(engine: Engine, name: str) -> None:
    with engine.begin() as connection:
        with pytest.raises(UnknownSequence):
            get_sequence(name, connection)
        assert connection.execute(sa.select(StoredSequence.name)).all() == []
    assert [each for each in _database_sequences(engine) if each.startswith("mseq_")] == []


@WITH_SEQUENCES
@pytest.mark.parametrize(("impl", "settings", "refused_on"), REFUSED)
def test_settings_a_database_cannot_hold(
    native_engine: Engine,
    database: Database,
    impl: NativeSequence,
    settings: dict[str, int],
    refused_on: frozenset[str],
) -> None:
    with native_engine.begin() as connection:
        if database.backend not in refused_on:
            seq = register_sequence("edge", connection, impl, **settings)
            assert seq.next(connection) == settings.get("start", 1)
            return
        with pytest.raises(SequenceConfigError, match=r"'edge'.*TableSequence takes any settings"):
            register_sequence("edge", connection, impl, **settings)
    _nothing_stored(native_engine, "edge")


@WITH_SEQUENCES
@pytest.mark.parametrize(
    ("settings", "refused_on"),
    [({"start": INT64_MAX}, BOTH), ({"start": 2**62, "step": 2**60}, MARIADB_ONLY)],
)
def test_templates_are_refused_alike(
    native_engine: Engine, database: Database, settings: dict[str, int], refused_on: frozenset[str]
) -> None:
    with native_engine.begin() as connection:
        if database.backend not in refused_on:
            template = register_template(
                "E", "E{counter}", connection, impl=NativeSequence, **settings
            )
            assert template.next(connection) == f"E{settings['start']}"
            return
        with pytest.raises(SequenceConfigError, match=r"'E'.*TableSequence takes any settings"):
            register_template("E", "E{counter}", connection, impl=NativeSequence, **settings)
    _nothing_stored(native_engine, "E")
    with native_engine.begin() as connection, pytest.raises(UnknownSequence):
        get_template("E", connection)


@WITH_SEQUENCES
def test_a_refusal_only_the_server_knows(
    native_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with a server whose limits differ from those the library knows: its refusal.
    monkeypatch.setattr(native, "sequence_refusal", lambda dialect, sequence: None)
    with native_engine.connect() as connection:
        with pytest.raises(SequenceConfigError, match="'edge': the database refused") as refused:
            register_sequence("edge", connection, NativeSequence, start=INT64_MAX)
        assert isinstance(refused.value.__cause__, sa.exc.DBAPIError)
        connection.rollback()
    _nothing_stored(native_engine, "edge")


@WITH_SEQUENCES
def test_edge_settings_the_databases_take(native_engine: Engine) -> None:
    with native_engine.begin() as connection:
        two = register_sequence("two", connection, NativeSequence, start=0, reset=2)
        assert [two.next(connection) for _ in range(3)] == [0, 1, 0]
        wide = register_sequence("wide", connection, NativeSequence(cache=10), start=0, reset=5)
        assert [wide.next(connection) for _ in range(6)] == [0, 1, 2, 3, 4, 0]
        top = register_sequence("top", connection, NativeSequence, start=INT64_MAX - 2)
        assert top.next(connection) == INT64_MAX - 2
        bottom = register_sequence(
            "bottom", connection, NativeSequence, start=INT64_MIN + 2, step=-1
        )
        assert bottom.next(connection) == INT64_MIN + 2
        down = register_sequence(
            "down", connection, NativeSequence, start=INT64_MAX - 1, step=-1, reset=0
        )
        assert down.next(connection) == INT64_MAX - 1
        big = register_sequence("big", connection, NativeSequence(cache=5), start=0, step=2**60)
        assert big.next_many(connection, 2) == range(0, 2**61, 2**60)
        third = MARIADB_STEP_MAX
        huge = register_sequence(
            "huge", connection, NativeSequence, start=0, step=third, reset=third * 2 + 1
        )
        assert [huge.next(connection) for _ in range(4)] == [0, third, third * 2, 0]


@pytest.mark.parametrize(
    ("impl", "settings", "refusal"),
    [
        (NativeSequence(), {"start": 0, "reset": 10}, r"ORA-04010.*\(CACHE 1\)"),
        (NativeSequence(cache=1), {}, r"ORA-04010.*\(CACHE 1\)"),
        (NativeSequence(cache=2), {"start": 0, "reset": 2}, "ORA-04005"),
        (NativeSequence(cache=2), {"start": 0, "reset": 3}, "ORA-04013"),
        (NativeSequence(cache=9), {"start": 10, "step": -1, "reset": 0}, "ORA-04013"),
        (NativeSequence(cache=2), {"start": 0, "step": 5, "reset": 1}, "cycle of one value"),
    ],
)
def test_oracle_limits(impl: NativeSequence, settings: dict[str, int], refusal: str) -> None:
    # No Oracle server here: its documented limits, checked before any SQL.
    with pytest.raises(SequenceConfigError, match=refusal):
        impl.check(oracle.dialect(), define("x", **settings))


@pytest.mark.parametrize(
    ("impl", "settings"),
    [
        (NativeSequence(cache=8), {"start": 0, "reset": 10}),
        (NativeSequence(cache=2), {"start": 0, "reset": 4}),
        (NativeSequence(), {"start": INT64_MAX}),
        (NativeSequence(), {"start": 0, "step": INT64_MAX}),
    ],
)
def test_oracle_takes(impl: NativeSequence, settings: dict[str, int]) -> None:
    impl.check(oracle.dialect(), define("x", **settings))


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
