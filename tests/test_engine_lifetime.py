"""An engine dropped without dispose() is collected, its side engine's connections closed."""

from __future__ import annotations

import gc
import logging
import time
import uuid
import weakref

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import PooledSequence, get_next_value, register_sequence
from mortar_seq.db.side import side_engine

from .conftest import fresh_registry
from .databases import Database


def _server_connections(admin: Engine) -> int:
    """Connections to the test database, the admin's own included (SQLite: none to count)."""
    with admin.connect() as connection:
        name = connection.dialect.name
        if name == "postgresql":
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        elif name == "mysql":
            query = "SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE()"
        else:
            return 0
        return int(connection.exec_driver_sql(query).scalar_one())


def _settled(admin: Engine, expected: int) -> int:
    # A server notices a closed socket a moment later: wait a little for its count.
    deadline = time.monotonic() + 5
    while (count := _server_connections(admin)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def _use_and_drop(database: Database, tag: str) -> weakref.ref[Engine]:
    engine = database.engine()
    with engine.begin() as connection:
        seq = register_sequence(f"lifetime_{tag}", connection, impl=PooledSequence(block=3))
        assert seq.next(connection) >= 1
        # On MariaDB a new name's rows are created on a side connection.
        assert get_next_value(connection, f"lifetime_{tag}_table") == 1
    assert side_engine(engine).pool.checkedin() == 1  # the library's own connection was used
    return weakref.ref(engine)


def test_dropped_engines_are_collected_and_closed(database: Database) -> None:
    admin = database.engine(poolclass=sa.NullPool)
    before = _server_connections(admin)
    with fresh_registry():
        dropped = [_use_and_drop(database, f"{uuid.uuid4().hex[:8]}_{n}") for n in range(10)]
    gc.collect()
    assert [ref() for ref in dropped] == [None] * 10
    assert _settled(admin, before) == before
    admin.dispose()


def test_disposed_engine_closes_its_side_connections(database: Database) -> None:
    admin = database.engine(poolclass=sa.NullPool)
    before = _server_connections(admin)
    engine = database.engine()
    with fresh_registry(), engine.begin() as connection:
        register_sequence("lifetime_disposed", connection, impl=PooledSequence(block=3))
    assert side_engine(engine).pool.checkedin() == 1
    engine.dispose()
    assert _settled(admin, before) == before
    admin.dispose()


def test_side_engines_leave_no_logger_behind(database: Database) -> None:
    # The logging module keeps every named logger for ever: one name per side engine grew
    # without bound in a process that makes engines (a test suite, a job per tenant).
    loggers = logging.Logger.manager.loggerDict
    with fresh_registry():
        for _ in range(2):
            _use_and_drop(database, uuid.uuid4().hex[:8])
        before = set(loggers)
        for _ in range(3):
            _use_and_drop(database, uuid.uuid4().hex[:8])
    assert set(loggers) - before == set()
    gc.collect()  # their connections


def test_side_statements_are_logged_apart(database: Database) -> None:
    named = database.engine(logging_name="billing")
    assert side_engine(named).logging_name == "mortar_seq side of billing"
    unnamed = database.engine()
    assert side_engine(unnamed).logging_name == "mortar_seq side"
    named.dispose()
    unnamed.dispose()
