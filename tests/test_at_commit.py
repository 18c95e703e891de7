"""Numbering at commit: rows written now with their number NULL, numbered just before COMMIT."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from zope.sqlalchemy import register as join_zope

from mortar_seq import (
    NativeSequence,
    PooledSequence,
    SequenceConfigError,
    SequenceError,
    SequenceExhausted,
    number_pending,
    register_sequence,
)

from . import at_commit_workers
from .at_commit_workers import Base, Document, documents, lines, strict
from .conftest import Caller, counting
from .databases import Database
from .test_async import ASYNC_DRIVERS, run

KINDS = ["session", "connection"]


@pytest.fixture
def rows(engine: Engine) -> Iterator[Engine]:
    """The engine, with the tables numbered at commit."""
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)


def _numbers(engine: Engine, series: str | None = None) -> list[int | None]:
    """The documents' numbers, in the order they were inserted."""
    query = sa.select(documents.c.number).order_by(documents.c.id)
    if series is not None:
        query = query.where(documents.c.series == series)
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def _opened(engine: Engine, kind: str) -> Session | sa.Connection:
    return Session(engine) if kind == "session" else engine.connect()


def test_numbered_in_registration_order(rows: Engine, caller: Caller) -> None:
    with rows.begin() as connection:
        first = register_sequence("first", connection)
        second = register_sequence("second", connection)
    with caller.block() as session:
        for seq in (second, first, second, first, second):
            seq.insert_at_commit(session, documents, {"series": seq.name}, column="number")
        inside = session.execute(sa.select(documents.c.number)).scalars().all()
        assert inside == [None] * 5  # what other code sees before the commit
        if caller.kind == "connection" or caller.mode == "outer":
            assert number_pending(session) == {"first": [1, 2], "second": [1, 2, 3]}
            assert number_pending(session) == {}  # nothing left
            numbered = session.execute(sa.select(documents.c.number).order_by(documents.c.id))
            assert numbered.scalars().all() == [1, 1, 2, 2, 3]
    if caller.mode == "commit":
        assert _numbers(rows) == [1, 1, 2, 2, 3]


@pytest.mark.parametrize("expire", [True, False], ids=["expire", "keep"])
def test_orm_object_carries_its_number(rows: Engine, expire: bool) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    with Session(rows, expire_on_commit=expire) as session:
        documents_ = [Document(series="doc") for _ in range(3)]
        session.add_all(documents_)
        for document in reversed(documents_):
            seq.at_commit(session, document, "number")
        with counting(rows) as sent:
            session.commit()
        updates = [s for s in sent if s.lstrip().upper().startswith(("UPDATE", "WITH"))]
        updates_of_rows = [s for s in updates if "test_document" in s]
        assert len(updates_of_rows) == 1, sent  # ours: nothing flushed again by the ORM
        assert [document.number for document in documents_] == [3, 2, 1]
    assert _numbers(rows) == [3, 2, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_deleted_and_rolled_back_rows_are_not_numbered(rows: Engine, kind: str) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    session = _opened(rows, kind)
    with session:
        kept = seq.insert_at_commit(session, documents, {"series": "a"}, column="number")
        savepoint = session.begin_nested()
        seq.insert_at_commit(session, documents, {"series": "gone"}, column="number")
        inner = session.begin_nested()
        seq.insert_at_commit(session, documents, {"series": "gone"}, column="number")
        inner.commit()
        savepoint.rollback()
        also = seq.insert_at_commit(session, documents, {"series": "b"}, column="number")
        deleted = seq.insert_at_commit(session, documents, {"series": "c"}, column="number")
        seq.insert_at_commit(session, documents, {"series": "d"}, column="number")
        # Unseen by the library: its number is taken, then given back.
        session.execute(documents.delete().where(documents.c.id == deleted[0]))
        if isinstance(session, Session):
            orm = Document(series="orm")
            session.add(orm)
            seq.at_commit(session, orm, "number")
            session.flush()
            session.delete(orm)
            session.commit()
        else:
            assert number_pending(session) == {"doc": [1, 2, 3]}
            session.commit()
    assert kept != also
    with rows.connect() as connection:
        stored = connection.execute(
            sa.select(documents.c.series, documents.c.number).order_by(documents.c.id)
        ).all()
        assert [tuple(row) for row in stored] == [("a", 1), ("b", 2), ("d", 3)]
        assert seq.last(connection) == 3  # the deleted row's value was given back


@pytest.mark.parametrize("kind", KINDS)
def test_rolled_back_transaction_takes_nothing(rows: Engine, kind: str) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    session = _opened(rows, kind)
    with session:
        seq.insert_at_commit(session, documents, {"series": "doc"}, column="number")
        session.rollback()
        assert number_pending(session) == {}  # forgotten with the transaction
        seq.insert_at_commit(session, documents, {"series": "doc"}, column="number")
        if kind == "connection":
            number_pending(session)
        session.commit()
    assert _numbers(rows) == [1]


def test_connection_committed_with_rows_pending(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    with rows.connect() as connection:
        seq.insert_at_commit(connection, documents, {"series": "doc"}, column="number")
        with pytest.raises(SequenceError, match=r"number_pending\(connection\)"):
            connection.commit()
        # Rolled back, as a COMMIT the database refuses; SQLAlchemy wants a rollback().
        assert not connection.in_transaction()
        with pytest.raises(sa.exc.PendingRollbackError):
            connection.execute(sa.select(1))
        connection.rollback()
        assert connection.execute(sa.select(sa.func.count()).select_from(documents)).scalar() == 0
        connection.rollback()
        seq.insert_at_commit(connection, documents, {"series": "doc"}, column="number")
        with pytest.raises(SequenceError):
            connection.commit()
    assert _numbers(rows) == []
    with rows.connect() as connection:
        assert seq.last(connection) is None
    with pytest.raises(SequenceError), rows.begin() as connection:
        seq.insert_at_commit(connection, documents, {"series": "doc"}, column="number")
    assert _numbers(rows) == []


@pytest.mark.parametrize("kind", KINDS)
def test_not_null_column_refused(rows: Engine, kind: str) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    session = _opened(rows, kind)
    with session:
        with pytest.raises(SequenceConfigError, match=r"NOT NULL.*written first with NULL"):
            seq.insert_at_commit(session, strict, {}, column="number")
        assert session.execute(sa.select(sa.func.count()).select_from(strict)).scalar() == 0
        session.rollback()


# MariaDB's REPEATABLE READ (its default) and SQLite's SERIALIZABLE are accepted: there the
# counter's UPDATE waits for the latest version instead of failing (the other tests).
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_snapshot_isolation_refused_on_postgresql(rows: Engine, level: str) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    isolated = rows.execution_options(isolation_level=level)
    with Session(isolated) as session:
        document = Document(series="doc")
        session.add(document)
        with pytest.raises(SequenceConfigError, match="READ COMMITTED"):
            seq.at_commit(session, document, "number")
        with pytest.raises(SequenceConfigError, match="READ COMMITTED"):
            seq.insert_at_commit(session, documents, {"series": "doc"}, column="number")
        session.rollback()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_the_isolation_check_costs_no_round_trip(
    rows: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: each transaction asked the server for its isolation level (SHOW TRANSACTION
    # ISOLATION LEVEL, a round trip the statement counter does not see), the largest
    # avoidable cost numbering at commit had in the contention benchmark.
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    asked: list[object] = []
    real = rows.dialect.get_isolation_level

    def get_isolation_level(dbapi_connection: Any) -> Any:
        asked.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(rows.dialect, "get_isolation_level", get_isolation_level)
    for _ in range(3):
        with Session(rows) as session, session.begin():
            seq.insert_at_commit(session, documents, {"series": "doc"}, column="number")
    assert asked == []
    with rows.connect() as connection:
        numbers = connection.execute(sa.select(documents.c.number).order_by(documents.c.id))
        assert list(numbers.scalars()) == [1, 2, 3]


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_server_default_of_repeatable_read_is_refused(rows: Engine) -> None:
    # The check reads no level from the server per transaction: the default it is given at
    # connect time (here by the connection's options) must still be seen.
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    options = "-c default_transaction_isolation=repeatable\\ read"
    snapshot = sa.create_engine(rows.url, connect_args={"options": options})
    try:
        with Session(snapshot) as session, session.begin():
            with pytest.raises(SequenceConfigError, match="READ COMMITTED"):
                seq.insert_at_commit(session, documents, {"series": "doc"}, column="number")
            session.rollback()
    finally:
        snapshot.dispose()


def test_bad_arguments(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
        with pytest.raises(TypeError, match="Session"):
            seq.at_commit(connection, Document(series="doc"), "number")
        with pytest.raises(TypeError, match="has no column"):
            seq.insert_at_commit(connection, documents, {"series": "doc"}, column="nope")
    with Session(rows) as session:
        with pytest.raises(TypeError, match="add the Document to the session"):
            seq.at_commit(session, Document(series="doc"), "number")
        with pytest.raises(TypeError, match="Table or a mapped class"):
            seq.at_commit(session, object(), "number")


def test_composite_primary_key(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("line", connection)
    with rows.begin() as connection:
        keys = [
            seq.insert_at_commit(connection, lines, {"document": 1, "line": n}, column="number")
            for n in (2, 1, 3)
        ]
        assert keys == [(1, 2), (1, 1), (1, 3)]
        assert number_pending(connection) == {"line": [1, 2, 3]}
    with rows.connect() as connection:
        query = sa.select(lines.c.line, lines.c.number).order_by(lines.c.line)
        assert [tuple(row) for row in connection.execute(query)] == [(1, 2), (2, 1), (3, 3)]


@pytest.mark.parametrize("count", [1, 1000])
def test_statements_do_not_grow_with_rows(rows: Engine, count: int) -> None:
    with rows.begin() as connection:
        first = register_sequence("first", connection)
        second = register_sequence("second", connection)
    with rows.begin() as connection:
        for seq in (first, second):
            for _ in range(count):
                seq.insert_at_commit(connection, documents, {"series": seq.name}, column="number")
        with counting(rows) as sent:
            numbered = number_pending(connection)
    assert numbered == {"first": list(range(1, count + 1)), "second": list(range(1, count + 1))}
    per_series = 1 if rows.dialect.name == "postgresql" else 2
    assert len(sent) == 2 * per_series, sent
    assert sorted(_numbers(rows, "first")) == list(range(1, count + 1))


@pytest.mark.parametrize(
    "implementation", [NativeSequence, PooledSequence], ids=["native", "pooled"]
)
def test_other_implementations(rows: Engine, implementation: Any) -> None:
    if implementation is NativeSequence and not rows.dialect.supports_sequences:
        with pytest.raises(SequenceConfigError), rows.begin() as connection:
            register_sequence("doc", connection, implementation)
        return
    with rows.begin() as connection:
        seq = register_sequence("doc", connection, implementation)
    with Session(rows) as session:
        for _ in range(3):
            seq.insert_at_commit(session, documents, {"series": "doc"}, column="number")
        with counting(rows) as sent:
            session.commit()
    numbers = _numbers(rows)
    assert numbers == sorted(numbers)  # in registration order
    assert len(set(numbers)) == 3  # no duplicate
    assert len([s for s in sent if "test_document" in s]) == 1, sent  # the one UPDATE


def test_zope_transaction_numbers_at_commit(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    session = Session(rows)
    join_zope(session)
    with transaction.manager:
        document = Document(series="doc")
        session.add(document)
        seq.at_commit(session, document, "number")
    with transaction.manager:
        # The only write of this transaction: zope.sqlalchemy must see it.
        seq.insert_at_commit(session, documents, {"series": "doc"}, column="number")
    transaction.begin()
    seq.insert_at_commit(session, documents, {"series": "doc"}, column="number")
    transaction.abort()
    session.close()
    assert _numbers(rows) == [1, 2]


@pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)
def test_series_taken_in_name_order(rows: Engine) -> None:
    """Two transactions registering two series in opposite orders both commit: each takes
    "a" before "b". Each waits a moment after taking its first series, so that taking them
    in registration order would deadlock."""
    with rows.begin() as connection:
        a = register_sequence("a", connection)
        b = register_sequence("b", connection)
    pause = threading.Barrier(2)
    taken: list[tuple[str, str]] = []

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if "mortar_seq_counter" in statement and "UPDATE" in statement.upper():
            taken.append((threading.current_thread().name, str(parameters)))
            with contextlib.suppress(threading.BrokenBarrierError):
                pause.wait(1)

    failures: list[BaseException] = []

    def work(first: Any, second: Any) -> None:
        try:
            with Session(rows) as session, session.begin():
                for seq in (first, second):
                    seq.insert_at_commit(session, documents, {"series": seq.name}, column="number")
        except BaseException as exc:
            failures.append(exc)

    sa.event.listen(rows, "after_cursor_execute", after)
    try:
        threads = [
            threading.Thread(target=work, args=order, name=name)
            for name, order in (("one", (a, b)), ("two", (b, a)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        sa.event.remove(rows, "after_cursor_execute", after)
    assert failures == []
    assert sorted(_numbers(rows, "a")) == [1, 2]
    assert sorted(_numbers(rows, "b")) == [1, 2]
    for name in ("one", "two"):
        order = [parameters for thread, parameters in taken if thread == name]
        assert len(order) == 2, taken
        assert "'a'" in order[0], taken
        assert "'b'" in order[1], taken


SPAWN = multiprocessing.get_context("spawn")
WORKERS = 4


@pytest.mark.slow
def test_gapless_across_processes(rows: Engine) -> None:
    with rows.begin() as connection:
        register_sequence("doc", connection)
    url = rows.url.render_as_string(hide_password=False)
    barrier, results = SPAWN.Barrier(WORKERS), SPAWN.Queue()
    processes = [
        SPAWN.Process(
            target=at_commit_workers.number_at_commit,
            args=(url, "doc", 25, worker, barrier, results),
        )
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(30)
    assert [report for report in reports if report[2] is not None] == []
    total = sum(count for _, count, _ in reports)
    assert 0 < total < WORKERS * 25 * 2  # some rolled back
    assert sorted(_numbers(rows)) == list(range(1, total + 1))  # no gap, no duplicate


@pytest.mark.parametrize("database", list(ASYNC_DRIVERS), indirect=True)
def test_async_session_numbers_at_commit(database: Database, rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)

    async def scenario(async_engine: AsyncEngine) -> None:
        async with AsyncSession(async_engine) as session:
            document = Document(series="doc")
            session.add(document)
            await session.run_sync(seq.at_commit, document, "number")
            await session.run_sync(
                seq.insert_at_commit, documents, {"series": "doc"}, column="number"
            )
            await session.commit()
            assert await session.run_sync(lambda _: document.number) == 1

    run(database, scenario)
    assert _numbers(rows) == [1, 2]


@pytest.mark.parametrize("kind", KINDS)
def test_failed_numbering_never_commits(rows: Engine, kind: str) -> None:
    with rows.begin() as connection:
        seq = register_sequence("big", connection, start=2**63 - 1)  # one value left
    session = _opened(rows, kind)
    with session:
        for _ in range(2):
            seq.insert_at_commit(session, documents, {"series": "big"}, column="number")
        with pytest.raises(SequenceExhausted):
            session.commit() if isinstance(session, Session) else number_pending(session)
        if rows.dialect.name != "postgresql":  # there the transaction is aborted anyway
            with pytest.raises(SequenceConfigError, match="roll the transaction back"):
                session.commit()
        session.rollback()
    assert _numbers(rows) == []
