"""run_in_transaction, run_in_transaction_async and worth_retrying, on real faults."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from zope.sqlalchemy import datamanager
from zope.sqlalchemy import register as join_zope

from mortar_seq import (
    SequenceConfigError,
    UnknownSequence,
    get_next_value,
    get_sequence,
    register_sequence,
    run_in_transaction,
    run_in_transaction_async,
    worth_retrying,
)

from .conftest import at_once, connection_of
from .databases import Database
from .tables import canary, committed, issued

servers = pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def take(session: Session | sa.Connection, name: str = "gapless", worker: int = 0) -> int:
    """Take the next value of *name* and record it in test_issued, in the caller's transaction."""
    value = get_next_value(session, name)
    session.execute(sa.insert(issued).values(sequence=name, value=value, worker=worker))
    return value


class Attempts:
    """Counts the attempts of a unit of work and keeps the errors that ended them."""

    def __init__(self) -> None:
        self.count = 0
        self.errors: list[BaseException] = []

    @contextmanager
    def one(self) -> Iterator[int]:
        self.count += 1
        try:
            yield self.count
        except BaseException as exc:
            self.errors.append(exc)
            raise


def bound_lock_wait(connection: sa.Connection) -> None:
    """Make this transaction give up a lock wait soon (MariaDB's least is one second)."""
    name = connection.dialect.name
    if name == "postgresql":
        connection.exec_driver_sql("SET LOCAL lock_timeout = '50ms'")
    elif name == "sqlite":
        connection.exec_driver_sql("PRAGMA busy_timeout = 50")
    else:
        connection.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")


def own_id(connection: sa.Connection) -> int:
    if connection.dialect.name == "postgresql":
        return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    return int(connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one())


def kill(engine: Engine, backend: int) -> None:
    """Cut connection *backend* from the server's side, and wait until it is gone."""
    with engine.connect() as admin:
        if admin.dialect.name == "postgresql":
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
            gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        else:
            admin.exec_driver_sql(f"KILL {int(backend)}")
            gone = "SELECT count(*) FROM information_schema.processlist WHERE id = %s"
        for _ in range(100):
            if not admin.exec_driver_sql(gone, (backend,)).scalar_one():
                return
            time.sleep(0.05)


# -- real faults, retried ------------------------------------------------------------------


@servers
def test_deadlock_is_retried(engine: Engine) -> None:
    """Two units of work take two sequences in opposite orders: the database aborts one
    (40P01 / 1213), which runs again; both commit once, gapless."""
    with engine.begin() as connection:
        one, other = register_sequence("a", connection), register_sequence("b", connection)
        register_sequence("gapless", connection)
    barrier = threading.Barrier(2)
    attempts = [Attempts(), Attempts()]

    def unit(worker: int, first: Any, second: Any) -> None:
        def work(connection: sa.Connection) -> None:
            with attempts[worker].one() as attempt:
                first.next(connection)
                if attempt == 1:
                    barrier.wait(30)
                second.next(connection)
                take(connection, worker=worker)

        run_in_transaction(engine, work, timeout=30)

    outcomes = at_once([lambda: unit(0, one, other), lambda: unit(1, other, one)])
    assert outcomes == [None, None]
    errors = [error for each in attempts for error in each.errors]
    assert len(errors) == 1, errors
    assert isinstance(errors[0], sa.exc.OperationalError)
    assert worth_retrying(errors[0])
    assert sorted(each.count for each in attempts) == [1, 2]
    assert committed(engine, "gapless") == [1, 2]
    with engine.connect() as connection:
        assert one.last(connection) == other.last(connection) == 2


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_serialization_failure_is_retried(engine: Engine, isolation: str) -> None:
    """The unit waits for another transaction's counter row and fails with 40001 when it
    commits; the next attempt takes the next value."""
    strict = engine.execution_options(isolation_level=isolation)
    attempts = Attempts()
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    with engine.connect() as holder:
        assert take(holder) == 1

        def work(connection: sa.Connection) -> int:
            with attempts.one() as attempt:
                if attempt == 1:
                    threading.Timer(0.3, holder.commit).start()
                return take(connection)

        assert run_in_transaction(strict, work, timeout=10) == 2
    assert attempts.count == 2
    error = attempts.errors[0]
    assert isinstance(error, sa.exc.DBAPIError)
    assert getattr(error.orig, "sqlstate", None) == "40001"
    assert worth_retrying(error)
    assert committed(engine, "gapless") == [1, 2]


@pytest.mark.parametrize("kind", ["engine", "sessionmaker"])
def test_lock_wait_timeout_is_retried(engine: Engine, kind: str) -> None:
    """The unit gives up waiting for another transaction's lock (PostgreSQL lock_timeout,
    MariaDB innodb_lock_wait_timeout, SQLite busy); once that one commits, it goes on."""
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    attempts = Attempts()
    with engine.connect() as holder:
        assert take(holder) == 1

        def work(session: Session | sa.Connection) -> int:
            with attempts.one() as attempt:
                if attempt == 2:
                    holder.commit()  # the other transaction ends between two attempts
                bound_lock_wait(connection_of(session))
                return take(session)

        bind = engine if kind == "engine" else sessionmaker(engine)
        assert run_in_transaction(bind, work, timeout=10) == 2  # type: ignore[call-overload]
    assert attempts.count == 2
    assert isinstance(attempts.errors[0], sa.exc.OperationalError)
    assert worth_retrying(attempts.errors[0])
    assert committed(engine, "gapless") == [1, 2]


@servers
def test_lost_connection_is_retried(engine: Engine) -> None:
    """The server cuts the unit's connection mid-transaction (pg_terminate_backend, KILL):
    it runs again on a new connection and its value is committed once."""
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    attempts = Attempts()

    def work(session: Session) -> int:
        with attempts.one() as attempt:
            value = take(session)
            if attempt == 1:
                kill(engine, own_id(session.connection()))
                session.execute(sa.select(1))
            return value

    assert run_in_transaction(sessionmaker(engine), work, timeout=10) == 1
    assert attempts.count == 2
    error = attempts.errors[0]
    assert isinstance(error, sa.exc.DBAPIError)
    assert error.connection_invalidated
    assert worth_retrying(error)
    assert worth_retrying(error.orig)  # the driver's own exception, as zope.sqlalchemy sees it
    assert committed(engine, "gapless") == [1]


@servers
def test_connection_lost_at_commit_is_found_out_then_run_again(engine: Engine) -> None:
    """The connection goes while COMMIT is under way: the helper asks a fresh connection
    whether the attempt committed (its marker is not there) and only then runs it again."""
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    attempts = Attempts()

    def work(connection: sa.Connection) -> int:
        with attempts.one() as attempt:
            value = take(connection)
            if attempt == 1:
                kill(engine, own_id(connection))  # the next thing sent is the COMMIT
            return value

    assert run_in_transaction(engine, work, timeout=10) == 1
    assert attempts.count == 2
    assert committed(engine, "gapless") == [1]


# -- what is not retried -------------------------------------------------------------------


def test_integrity_error_propagates_at_once(engine: Engine) -> None:
    attempts = Attempts()

    def work(connection: sa.Connection) -> None:
        with attempts.one():
            take(connection)
            connection.execute(sa.insert(canary), [{"id": 1}, {"id": 1}])

    started = time.monotonic()
    with pytest.raises(sa.exc.IntegrityError) as caught:
        run_in_transaction(engine, work)
    assert time.monotonic() - started < 5
    assert attempts.count == 1
    assert not worth_retrying(caught.value)
    assert committed(engine, "gapless") == []  # the value taken was rolled back


def test_sequence_error_propagates_at_once(engine: Engine) -> None:
    attempts = Attempts()

    def work(session: Session) -> None:
        with attempts.one():
            get_sequence("nope", session)

    with pytest.raises(UnknownSequence) as caught:
        run_in_transaction(sessionmaker(engine), work)
    assert attempts.count == 1
    assert not worth_retrying(caught.value)


def test_timeout_budget(engine: Engine) -> None:
    """A unit that always meets a held lock stops once the budget is spent, raising the
    last fault; pauses never push it past the budget."""
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    attempts = Attempts()
    with engine.connect() as holder:
        take(holder)

        def work(connection: sa.Connection) -> None:
            with attempts.one():
                bound_lock_wait(connection)
                take(connection)

        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as caught:
            run_in_transaction(engine, work, timeout=1)
        elapsed = time.monotonic() - started
        holder.rollback()
    assert worth_retrying(caught.value)
    assert caught.value is attempts.errors[-1]
    # One attempt waits 50 ms for the lock (PostgreSQL, SQLite); on MariaDB one to two
    # seconds (a background thread checks lock waits once a second), so the first attempt
    # may spend the whole budget.
    longest_attempt = 2.0 if engine.dialect.name == "mysql" else 0.05
    assert 1.0 <= elapsed < 1.0 + longest_attempt + 0.4, elapsed
    assert attempts.count >= (1 if engine.dialect.name == "mysql" else 5)


def test_zero_timeout_is_one_attempt(engine: Engine) -> None:
    attempts = Attempts()
    with engine.connect() as holder:
        take(holder)

        def work(connection: sa.Connection) -> None:
            with attempts.one():
                bound_lock_wait(connection)
                take(connection)

        with pytest.raises(sa.exc.OperationalError):
            run_in_transaction(engine, work, timeout=0)
        holder.rollback()
    assert attempts.count == 1


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_bad_arguments(engine: Engine) -> None:
    with pytest.raises(TypeError, match="an Engine or a sessionmaker, not Session"):
        run_in_transaction(Session(engine), take)  # type: ignore[call-overload]
    with pytest.raises(SequenceConfigError, match="timeout"):
        run_in_transaction(engine, take, timeout=-1)
    with pytest.raises(SequenceConfigError, match="timeout"):
        run_in_transaction(engine, take, timeout=float("nan"))
    with pytest.raises(TypeError, match="timeout must be a number"):
        run_in_transaction(engine, take, timeout="1")  # type: ignore[arg-type]
    async_engine = create_async_engine("sqlite+aiosqlite://")
    with pytest.raises(TypeError, match=r"use run_in_transaction_async\(\)"):
        run_in_transaction(async_engine, take)  # type: ignore[call-overload]

    async def refused() -> None:
        await run_in_transaction_async(engine, take)  # type: ignore[call-overload]

    with pytest.raises(TypeError, match=r"not Engine; use run_in_transaction\(\)"):
        asyncio.run(refused())


# -- the classifier on its own ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/test",
        "mysql+pymysql://root@127.0.0.1:1/test",
    ],
)
def test_refused_connection_is_transient(url: str) -> None:
    """What a failover looks like while connecting: nothing listens (yet)."""
    with pytest.raises(sa.exc.OperationalError) as caught:
        sa.create_engine(url, poolclass=sa.NullPool).connect()
    assert worth_retrying(caught.value)
    assert worth_retrying(caught.value.orig)  # type: ignore[arg-type]


def test_refused_asyncpg_connection_is_transient() -> None:
    async def connect() -> None:
        async_engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/test")
        try:
            async with async_engine.connect():
                pass
        finally:
            await async_engine.dispose()

    with pytest.raises(ConnectionRefusedError) as caught:  # asyncpg's, not wrapped
        asyncio.run(connect())
    assert worth_retrying(caught.value)


FATAL = 'connection failed: connection to server at "10.0.0.2", port 5432 failed: FATAL:  '
WSREP = "WSREP has not yet prepared node for application use"
DEADLOCK = "Deadlock found when trying to get lock; try restarting transaction"
LOCK_WAIT = "Lock wait timeout exceeded; try restarting transaction"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # psycopg attaches no SQLSTATE to a failed connection: the message tells.
        (psycopg.OperationalError(FATAL + "the database system is shutting down"), True),
        (psycopg.OperationalError(FATAL + "the database system is starting up"), True),
        (psycopg.OperationalError(FATAL + "the database system is not yet accepting connections"),
         True),
        (psycopg.OperationalError(FATAL + "the database system is in recovery mode"), True),
        (psycopg.OperationalError(FATAL + 'password authentication failed for user "x"'), False),
        (pymysql.err.OperationalError(1047, WSREP), True),
        (pymysql.err.OperationalError(1213, DEADLOCK), True),
        (pymysql.err.OperationalError(1205, LOCK_WAIT), True),
        (pymysql.err.OperationalError(2006, "MySQL server has gone away"), True),
        (pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"), True),
        (pymysql.err.IntegrityError(1062, "Duplicate entry '1' for key 'PRIMARY'"), False),
        (pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"), False),
        (pymysql.err.OperationalError(1045, "Access denied for user 'x'"), False),
        (ValueError("connection refused"), False),  # not a driver's fault
        (UnknownSequence("x"), False),
    ],
)  # fmt: skip
def test_classifier(error: BaseException, expected: bool) -> None:
    assert worth_retrying(error) is expected
    if isinstance(error, pymysql.err.Error):  # and as SQLAlchemy hands it over
        wrapped = sa.exc.DBAPIError.instance("SELECT 1", {}, error, pymysql.err.Error)
        assert worth_retrying(wrapped) is expected


# -- async ----------------------------------------------------------------------------------


def run_async(database: Database, scenario: Callable[[Any], Any], **options: Any) -> None:
    async def main() -> None:
        url = database.url.set(drivername=ASYNC_DRIVERS[database.backend])
        async_engine = create_async_engine(url, **options)
        try:
            await scenario(async_engine)
        finally:
            await async_engine.dispose()

    asyncio.run(main())


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_async_database_is_locked_is_retried(database: Database, engine: Engine) -> None:
    """aiosqlite: "database is locked" while another connection writes, then the unit goes on."""
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    attempts = Attempts()

    async def scenario(async_engine: Any) -> None:
        with engine.connect() as holder:
            assert take(holder) == 1

            async def work(session: AsyncSession) -> int:
                with attempts.one() as attempt:
                    if attempt == 2:
                        holder.commit()
                    return int(await session.run_sync(take))

            made = async_sessionmaker(async_engine)
            assert await run_in_transaction_async(made, work, timeout=10) == 2

    run_async(database, scenario, connect_args={"timeout": 0.05})
    assert attempts.count == 2
    assert "database is locked" in str(attempts.errors[0])
    assert worth_retrying(attempts.errors[0])
    assert committed(engine, "gapless") == [1, 2]


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_async_lost_connection_and_budget(database: Database, engine: Engine) -> None:
    """asyncpg: a connection cut by the server is retried; a held lock exhausts the budget."""
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    attempts = Attempts()

    async def scenario(async_engine: Any) -> None:
        async def work(connection: Any) -> int:
            with attempts.one() as attempt:
                value = int(await connection.run_sync(take))
                if attempt == 1:
                    backend = await connection.exec_driver_sql("SELECT pg_backend_pid()")
                    kill(engine, backend.scalar_one())
                    await connection.exec_driver_sql("SELECT 1")
                return value

        assert await run_in_transaction_async(async_engine, work, timeout=10) == 1
        assert attempts.count == 2
        assert worth_retrying(attempts.errors[0])

        with engine.connect() as holder:
            take(holder)

            async def blocked(connection: Any) -> None:
                await connection.exec_driver_sql("SET LOCAL lock_timeout = '50ms'")
                await connection.run_sync(take)

            started = time.monotonic()
            with pytest.raises(sa.exc.DBAPIError) as caught:
                await run_in_transaction_async(async_engine, blocked, timeout=1)
            assert 1.0 <= time.monotonic() - started < 1.5
            assert worth_retrying(caught.value)
            holder.rollback()

    run_async(database, scenario)
    assert committed(engine, "gapless") == [1]


# -- zope's transaction.manager.attempts() --------------------------------------------------


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_zope_attempts_with_worth_retrying(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """zope.sqlalchemy retries only SQLSTATE class 40 on PostgreSQL; with worth_retrying
    added to its hook (the documented recipe), a lock timeout is retried too."""
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    monkeypatch.setattr(datamanager, "_retryable_errors", list(datamanager._retryable_errors))

    def attempt_twice(holder: sa.Connection) -> int:
        seen = 0
        for attempt in transaction.manager.attempts(3):
            with attempt:
                seen += 1
                session = Session(engine)
                join_zope(session)
                if seen == 2:
                    holder.commit()
                session.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
                take(session)
        return seen

    with engine.connect() as holder:
        take(holder)
        with pytest.raises(sa.exc.OperationalError):
            attempt_twice(holder)  # zope.sqlalchemy alone: 55P03 is not retried
        holder.rollback()
        take(holder)
        datamanager._retryable_errors.append((Exception, worth_retrying))
        assert attempt_twice(holder) == 2
    assert committed(engine, "gapless") == [1, 2]
