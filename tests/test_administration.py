"""Managing a series: restart, restart_after, a template's counters; locks and refusals."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, oracle, postgresql
from sqlalchemy.engine import Engine

from mortar_seq import (
    NativeSequence,
    PooledSequence,
    SequenceConfigError,
    SequenceLocked,
    TemplateError,
    UnknownSequence,
    register_sequence,
    register_template,
)
from mortar_seq.db.dialects import RestartSequence, ddl_is_transactional
from mortar_seq.definition import INT64_MAX

from .conftest import Caller, started_and_blocked
from .tables import issued


def test_restart_forward_and_back(caller: Caller) -> None:
    with caller.block() as session:
        invoice = register_sequence("invoice", session)
        assert invoice.next_many(session, 3) == range(1, 4)
        invoice.restart(session, 100)
        assert invoice.next(session) == 100
        invoice.restart(session, 2)  # back, on purpose
        assert [invoice.next(session), invoice.last(session)] == [2, 2]
        invoice.restart(session, 1)  # before the first: nothing handed out
        assert invoice.last(session) is None
        assert invoice.next(session) == 1


def test_restart_checks_the_value_is_of_the_series(caller: Caller) -> None:
    with caller.block() as session:
        odd = register_sequence("odd", session, start=1, step=2)
        minute = register_sequence("minute", session, start=0, reset=60)
        down = register_sequence("down", session, start=0, step=-1)
        for sequence, value in [(odd, 4), (odd, -1), (minute, 60), (minute, -1), (down, 1)]:
            with pytest.raises(SequenceConfigError, match="is not a value of"):
                sequence.restart(session, value)
        with pytest.raises(SequenceConfigError, match="must be an integer"):
            odd.restart(session, "5")  # type: ignore[arg-type]
        with pytest.raises(SequenceConfigError, match="64 bits"):
            odd.restart(session, 2**63 + 1)
        minute.restart(session, 59)
        assert [minute.next(session) for _ in range(3)] == [59, 0, 1]
        down.restart(session, -10)
        assert down.next_many(session, 2) == range(-10, -12, -1)


def test_restart_at_the_64_bit_edge(caller: Caller) -> None:
    with caller.block() as session:
        edge = register_sequence("edge", session)
        edge.restart(session, INT64_MAX)
        assert edge.next(session) == INT64_MAX
        with pytest.raises(Exception, match="64 bits"):
            edge.next(session)


def test_restart_after_a_column(caller: Caller) -> None:
    with caller.block() as session:
        invoice = register_sequence("invoice", session)
        mine = issued.c.sequence == "invoice"
        assert invoice.restart_after(session, issued.c.value, where=mine) == 1  # empty: start
        rows = [{"sequence": "invoice", "value": v, "worker": 0} for v in (4, 9, 41)]
        session.execute(issued.insert(), [*rows, {"sequence": "other", "value": 99, "worker": 0}])
        assert invoice.restart_after(session, issued.c.value, where=mine) == 42
        assert invoice.next(session) == 42
        # Never back: 42 was handed out beyond the column.
        with pytest.raises(SequenceConfigError, match="back from 43 to 42"):
            invoice.restart_after(session, issued.c.value, where=mine)
        assert invoice.next(session) == 43
        with pytest.raises(TypeError, match="integers"):
            invoice.restart_after(session, issued.c.sequence)


def test_restart_after_on_another_grid(caller: Caller) -> None:
    with caller.block() as session:
        tens = register_sequence("tens", session, start=1000, step=10)
        session.execute(issued.insert(), [{"sequence": "tens", "value": 25, "worker": 0}])
        assert tens.restart_after(session, issued.c.value) == 1000  # all before the start
        session.execute(issued.insert(), [{"sequence": "tens", "value": 1015, "worker": 0}])
        assert tens.restart_after(session, issued.c.value) == 1020  # the next on its grid
        minute = register_sequence("minute", session, start=0, reset=60)
        with pytest.raises(SequenceConfigError, match="resets"):
            minute.restart_after(session, issued.c.value)


def test_unknown_sequence(engine: Engine) -> None:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM mortar_seq_counter"))
    with engine.begin() as connection:
        with pytest.raises(UnknownSequence):
            invoice.restart(connection, 5)
        with pytest.raises(UnknownSequence):
            invoice.restart_after(connection, issued.c.value)


def test_restart_rolls_back_with_the_caller(engine: Engine) -> None:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
        invoice.next(connection)
    with engine.connect() as connection:
        invoice.restart(connection, 500)
        connection.rollback()
        assert invoice.next(connection) == 2


def test_pooled_restart_only_forward(caller: Caller) -> None:
    with caller.block() as session:
        pooled = register_sequence("pooled", session, PooledSequence(block=10))
        assert pooled.next(session) == 1
        # Reserved 1..10 apart, or just 1 in the caller's transaction (SQLite's write lock).
        with pytest.raises(SequenceConfigError, match=r"only move forward, beyond (1|10) "):
            pooled.restart(session, 1)
        pooled.restart(session, 500)
        assert pooled.next_many(session, 2) == range(500, 502)
        cycling = register_sequence("cycling", session, PooledSequence(), start=0, reset=9)
        with pytest.raises(SequenceConfigError, match="resets"):
            cycling.restart(session, 5)


def test_native_restart(caller: Caller) -> None:
    with caller.block() as session:
        if not caller.engine.dialect.supports_sequences:
            with pytest.raises(SequenceConfigError, match="no SEQUENCE"):
                register_sequence("native", session, NativeSequence)
            return
        native = register_sequence("native", session, NativeSequence)
        assert native.next_many(session, 3) == range(1, 4)
        native.restart(session, 100)
        assert native.next(session) == 100
        if ddl_is_transactional(caller.engine.dialect):
            native.restart(session, 2)  # cache 1: back is safe
            assert native.next(session) == 2
        else:  # MariaDB: back is DDL apart, which would wait for this transaction
            with pytest.raises(SequenceLocked, match="has not used it"):
                native.restart(session, 2)
        session.execute(issued.insert(), [{"sequence": "native", "value": 5000, "worker": 0}])
        assert native.restart_after(session, issued.c.value) == 5001  # beyond any cache
        assert native.next(session) == 5001


@pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)
def test_native_restart_back_from_a_fresh_transaction(engine: Engine) -> None:
    with engine.begin() as connection:
        native = register_sequence("native", connection, NativeSequence)
        assert native.next_many(connection, 5) == range(1, 6)
    with engine.begin() as connection:
        native.restart(connection, 2)  # MariaDB: committed at once, apart
    with engine.begin() as connection:
        assert native.next(connection) == 2


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_native_restart_refuses_back_with_per_connection_caches(engine: Engine) -> None:
    with engine.begin() as connection:
        cached = register_sequence("cached", connection, NativeSequence(cache=50))
        assert cached.next(connection) == 1  # this connection cached 1..50
        with pytest.raises(SequenceConfigError, match="only move forward, beyond 50"):
            cached.restart(connection, 10)
        cached.restart(connection, 51)


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (postgresql.dialect(), "ALTER SEQUENCE mseq_x RESTART WITH 42"),
        (mysql.dialect(), "ALTER SEQUENCE mseq_x RESTART WITH 42"),
        (oracle.dialect(), "ALTER SEQUENCE mseq_x RESTART START WITH 42"),
    ],
)
def test_restart_sql(dialect: sa.Dialect, expected: str) -> None:
    assert str(RestartSequence(sa.Sequence("mseq_x"), 42).compile(dialect=dialect)) == expected


# Templates


def test_template_restart_counters_and_delete(caller: Caller) -> None:
    with caller.block() as session:
        playlist = register_template("PL", "{year}: Playlist {counter:02d}", session)
        assert playlist.counters(session) == {}
        playlist.next(session, year=2015)
        playlist.restart(session, 7, year=2016)  # a new rendering: made, then restarted
        assert playlist.counters(session) == {
            "2015: Playlist {counter:02d}": "2015: Playlist 01",
            "2016: Playlist {counter:02d}": "2016: Playlist 06",  # the value before 7
        }
        assert playlist.next(session, year=2016) == "2016: Playlist 07"
        assert playlist.counters(session)["2016: Playlist {counter:02d}"] == playlist.last(
            session, year=2016
        )
        with pytest.raises(SequenceConfigError, match="is not a value"):
            playlist.restart(session, 0, year=2016)
        assert playlist.delete_counter(session, year=2015)
        assert not playlist.delete_counter(session, year=2015)
        assert list(playlist.counters(session)) == ["2016: Playlist {counter:02d}"]
        playlist.restart(session, 1, year=2017)
        assert playlist.counters(session)["2017: Playlist {counter:02d}"] is None
        assert playlist.next(session, year=2015) == "2015: Playlist 01"  # from the start again


def test_a_parent_rendering_with_children_is_refused(caller: Caller) -> None:
    with caller.block() as session:
        playlist = register_template("PL", "{year}: Playlist {counter}", session)
        audio = register_template("AF", "{PL!r} > Audio File {counter:02d}", session)
        first = playlist.next(session, year=2015)
        playlist.next(session, year=2016)
        audio.next(session, PL=first)
        for call in (
            lambda: playlist.restart(session, 9, year=2015),
            lambda: playlist.delete_counter(session, year=2015),
        ):
            with pytest.raises(TemplateError, match="template 'AF' counts under '2015: Playl"):
                call()
        playlist.restart(session, 9, year=2016)  # no child counts under 2016's
        assert audio.delete_counter(session, PL=first)
        playlist.restart(session, 1, year=2015)
        assert playlist.delete_counter(session, year=2015)


# Locks


def _events_of_a_wait(engine: Engine, act: str) -> list[tuple[str, object]]:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
    events: list[tuple[str, object]] = []
    holder = engine.connect()
    events.append(("one", "begin"))
    events.append(("one", invoice.next(holder)))
    column = issued.c.value

    def second() -> None:
        with engine.connect() as connection:
            events.append(("two", "begin"))
            if act == "restart":
                invoice.restart(connection, 10)
                events.append(("two", "restarted"))
            else:
                events.append(("two", invoice.restart_after(connection, column)))
            connection.commit()
            events.append(("two", "commit"))

    thread = started_and_blocked(second, events)
    holder.execute(issued.insert().values(sequence="invoice", value=1, worker=1))
    events.append(("one", "commit"))
    holder.commit()
    thread.join(10)
    holder.close()
    return events


@pytest.mark.parametrize("act", ["restart", "restart_after"])
def test_restart_waits_for_the_holder(engine: Engine, act: str) -> None:
    events = _events_of_a_wait(engine, act)
    done = ("two", "restarted") if act == "restart" else ("two", 2)  # the holder's row counted
    assert events == [
        ("one", "begin"),
        ("one", 1),
        ("two", "begin"),
        ("one", "commit"),
        done,
        ("two", "commit"),
    ]


def test_nowait_raises_at_once(engine: Engine) -> None:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
        playlist = register_template("PL", "{year}-{counter}", connection)
        playlist.next(connection, year=2015)
    holder = engine.connect()
    invoice.next(holder)
    playlist.next(holder, year=2015)
    with engine.connect() as connection:
        started = time.monotonic()
        with pytest.raises(SequenceLocked):
            invoice.restart(connection, 5, nowait=True)
        with pytest.raises(SequenceLocked):
            invoice.restart_after(connection, issued.c.value, nowait=True)
        with pytest.raises(SequenceLocked):
            playlist.restart(connection, 5, nowait=True, year=2015)
        assert time.monotonic() - started < 3
        connection.rollback()
        holder.rollback()
        holder.close()
        invoice.restart(connection, 5, nowait=True)
        assert invoice.next(connection) == 5
        connection.commit()
