"""The caller owns the transaction: never committed or rolled back by the library; blocking,
nowait, zope.sqlalchemy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from zope.sqlalchemy import register as join_zope

from mortar_seq import (
    SequenceLocked,
    get_last_value,
    get_next_value,
    get_next_values,
    register_sequence,
)
from mortar_seq import registry as registry_module

from .conftest import connection_of, has_row_locks, lock_wait_setting, started_and_blocked
from .tables import marker

KINDS = ["session", "connection"]


@contextmanager
def opened(engine: Engine, kind: str) -> Iterator[Session | sa.Connection]:
    """A Session or Connection whose transaction the test ends itself."""
    if kind == "session":
        with Session(engine) as session:
            yield session
    else:
        with engine.connect() as connection:
            yield connection


def _markers(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(marker.c.note)).scalars())


@pytest.mark.parametrize("kind", KINDS)
def test_never_commits_or_rolls_back(engine: Engine, kind: str) -> None:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
    ended: list[tuple[str, sa.Connection]] = []
    for event in ("commit", "rollback", "begin"):
        sa.event.listen(engine, event, lambda conn, event=event: ended.append((event, conn)))
    with opened(engine, kind) as session:
        session.execute(marker.insert().values(note="mine"))
        mine = connection_of(session)
        assert invoice.next(session) == 1
        assert invoice.next_many(session, 2) == range(2, 4)
        assert get_next_value(session, "new") == 1
        assert get_next_values(session, 2, "new") == range(2, 4)
        assert get_last_value(session, "new") == 3
        # Only connections of the library's own may end (MariaDB creates rows apart).
        assert [event for event, conn in ended if conn is mine] == ["begin"]
        assert session.in_transaction()
        session.rollback()
    assert _markers(engine) == []
    with engine.connect() as connection:
        assert invoice.last(connection) is None
        assert get_last_value(connection, "new") is None
        assert get_next_value(connection, "new") == 1  # what was taken came back


@pytest.mark.parametrize("kind", KINDS)
def test_rolled_back_values_come_back(engine: Engine, kind: str) -> None:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
    with opened(engine, kind) as session:
        assert [invoice.next(session) for _ in range(3)] == [1, 2, 3]
        session.rollback()
        assert invoice.next(session) == 1
        session.commit()
    with opened(engine, kind) as session:
        assert invoice.next(session) == 2
        session.rollback()


def test_zope_transaction_commits_the_increment(engine: Engine) -> None:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
    session = Session(engine)
    join_zope(session)
    with transaction.manager:
        assert get_next_value(session, "zope") == 1
    with transaction.manager:
        # The only write here is the counter's UPDATE: zope.sqlalchemy must see it.
        assert invoice.next(session) == 1
    with transaction.manager:
        assert get_next_value(session, "zope") == 2
    transaction.begin()
    assert invoice.next(session) == 2
    transaction.abort()
    session.close()
    with engine.connect() as connection:
        assert invoice.last(connection) == 1
        assert get_last_value(connection, "zope") == 2


def _holding(engine: Engine, name: str) -> sa.Connection:
    """A connection whose open transaction holds sequence *name*."""
    holder = engine.connect()
    get_next_value(holder, name)
    return holder


@pytest.mark.parametrize("kind", KINDS)
def test_second_transaction_waits_for_the_first(engine: Engine, kind: str) -> None:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
    events: list[tuple[str, object]] = []
    holder = engine.connect()
    events.append(("one", "begin"))
    events.append(("one", invoice.next(holder)))

    def second() -> None:
        with opened(engine, kind) as session:
            events.append(("two", "begin"))
            events.append(("two", invoice.next(session)))
            session.commit()
            events.append(("two", "commit"))

    thread = started_and_blocked(second, events)
    events.append(("one", "commit"))
    holder.commit()
    thread.join(10)
    holder.close()
    assert events == [
        ("one", "begin"),
        ("one", 1),
        ("two", "begin"),
        ("one", "commit"),
        ("two", 2),
        ("two", "commit"),
    ]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("first_call", [False, True], ids=["later-call", "first-call"])
def test_nowait_raises_at_once(engine: Engine, kind: str, first_call: bool) -> None:
    if not first_call:
        with engine.begin() as connection:
            get_next_value(connection, "invoice")
    holder = _holding(engine, "invoice")
    registry_module.registry = registry_module.Registry()  # nothing known, as in another process
    with opened(engine, kind) as session:
        setting = lock_wait_setting(connection_of(session))
        started = time.monotonic()
        with pytest.raises(SequenceLocked, match="'invoice' is locked") as raised:
            get_next_value(session, "invoice", nowait=True)
        assert time.monotonic() - started < 1
        assert isinstance(raised.value.__cause__, sa.exc.DBAPIError)
        with pytest.raises(SequenceLocked):
            get_next_values(session, 3, "invoice", nowait=True)
        assert lock_wait_setting(connection_of(session)) == setting
        # The caller's transaction is still usable and commits. On SQLite a write would wait
        # for the holder, whose COMMIT in turn waits for this transaction to end.
        assert session.execute(sa.select(sa.func.count()).select_from(marker)).scalar() == 0
        if has_row_locks(engine):
            session.execute(marker.insert().values(note="after"))
        session.commit()
        holder.commit()
        holder.close()
        assert get_next_value(session, "invoice", nowait=True) == (2 if first_call else 3)
        session.commit()
    assert _markers(engine) == (["after"] if has_row_locks(engine) else [])


@pytest.mark.parametrize("kind", KINDS)
def test_registered_nowait(engine: Engine, kind: str) -> None:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
    holder = engine.connect()
    invoice.next(holder)
    with opened(engine, kind) as session:
        with pytest.raises(SequenceLocked):
            invoice.next(session, nowait=True)
        with pytest.raises(SequenceLocked):
            invoice.next_many(session, 2, nowait=True)
        holder.rollback()
        holder.close()
        assert invoice.next(session, nowait=True) == 1
        session.commit()


def test_distinct_sequences_do_not_block(engine: Engine) -> None:
    with engine.begin() as connection:
        first = register_sequence("first", connection)
        second = register_sequence("second", connection)
    holder = engine.connect()
    first.next(holder)
    with engine.connect() as other:
        if has_row_locks(engine):
            assert second.next(other, nowait=True) == 1
        else:
            # SQLite: one write lock for the whole database (documented).
            with pytest.raises(SequenceLocked):
                second.next(other, nowait=True)
        other.rollback()
    holder.rollback()
    holder.close()
