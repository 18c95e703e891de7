"""Python API edges (issue 10): keywords named like parameters, nowait on templates, misuse
getting the library's own error, scoped_session, native batches in order, parents in use."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from itertools import islice
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from mortar_seq import (
    NativeSequence,
    SequenceConfigError,
    SequenceLocked,
    TemplateError,
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
from mortar_seq.model import Counter, StoredSequence

from .conftest import Caller, connection_of, fresh_registry, has_row_locks, lock_wait_setting
from .databases import Database
from .tables import marker

# 1. Keywords named like the methods' parameters; nowait on templates.


def test_keywords_named_like_parameters(caller: Caller) -> None:
    with caller.block() as session:
        tpl = register_template("T", "{session}/{count}/{self}-{counter}", session)
        given = {"session": "s", "count": 7, "self": "me"}
        assert tpl.next(session, **given) == "s/7/me-1"
        assert tpl.next_many(session, 2, **given) == ["s/7/me-2", "s/7/me-3"]
        assert tpl.last(session, **given) == "s/7/me-3"
        assert list(islice(tpl.values(session, **given), 2)) == ["s/7/me-4", "s/7/me-5"]
        assert tpl.next(session, nowait=True, **given) == "s/7/me-6"


@pytest.mark.parametrize("pattern", ["{nowait}-{counter}", "{counter}{nowait!s:>3}"])
def test_nowait_is_no_placeholder(engine: Engine, pattern: str) -> None:
    with engine.begin() as connection:
        with pytest.raises(TemplateError, match=r"\{nowait\} cannot be a placeholder"):
            register_template("N", pattern, connection)
        assert connection.execute(sa.select(StoredSequence.name)).all() == []


@contextmanager
def _released_after(holder: sa.Connection, seconds: float) -> Iterator[None]:
    """Should the block wait for *holder* (the bug), end the wait instead of hanging."""
    timer = threading.Timer(seconds, holder.rollback)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


@pytest.mark.parametrize("kind", ["session", "connection"])
@pytest.mark.parametrize("first_call", [False, True], ids=["later-call", "first-call"])
def test_template_nowait(database: Database, engine: Engine, kind: str, first_call: bool) -> None:
    with engine.begin() as connection:
        tpl = register_template("L", "{k}-{counter}", connection)
        if not first_call:
            tpl.next(connection, k="a")
    holder = engine.connect()
    tpl.next(holder, k="a")  # holds the counter (its creation too, on a first call)
    # Another engine: nothing known of the counters, as in another process.
    other_engine = database.engine()
    try:
        with fresh_registry():
            found = get_template("L", holder)
        with other_engine.connect() as probe:
            setting = lock_wait_setting(probe)
        session: Session | sa.Connection
        with Session(other_engine) as orm, other_engine.connect() as core:
            session = orm if kind == "session" else core
            started = time.monotonic()
            with _released_after(holder, 3), pytest.raises(SequenceLocked, match="'L'") as raised:
                found.next(session, nowait=True, k="a")
            assert time.monotonic() - started < 1
            assert isinstance(raised.value.__cause__, sa.exc.DBAPIError)
            with _released_after(holder, 3), pytest.raises(SequenceLocked):
                found.next_many(session, 2, nowait=True, k="a")
            assert lock_wait_setting(connection_of(session)) == setting
            if has_row_locks(engine):  # SQLite: any write waits for the holder's write lock
                assert found.next(session, nowait=True, k="b") == "b-1"
                session.execute(marker.insert().values(note="after"))
            session.commit()
            holder.commit()
            assert found.next(session, nowait=True, k="a") == ("a-2" if first_call else "a-3")
            session.commit()
    finally:
        holder.close()
        other_engine.dispose()


# 2. Misuse gets a TypeError saying what to pass instead.


def _calls(engine: Engine) -> dict[str, Callable[[Any], object]]:
    with engine.begin() as connection:
        seq = register_sequence("S", connection)
        tpl = register_template("T", "{k}-{counter}", connection)
    return {
        "seq.next": lambda bad: seq.next(bad),
        "seq.next nowait": lambda bad: seq.next(bad, nowait=True),
        "seq.next_many": lambda bad: seq.next_many(bad, 2),
        "seq.last": lambda bad: seq.last(bad),
        "seq.values": lambda bad: next(iter(seq.values(bad))),
        "tpl.next": lambda bad: tpl.next(bad, k="a"),
        "tpl.next nowait": lambda bad: tpl.next(bad, nowait=True, k="a"),
        "tpl.next_many": lambda bad: tpl.next_many(bad, 2, k="a"),
        "tpl.last": lambda bad: tpl.last(bad, k="a"),
        "tpl.values": lambda bad: next(iter(tpl.values(bad, k="a"))),
        "get_next_value": lambda bad: get_next_value(bad, "one"),
        "get_next_values": lambda bad: get_next_values(bad, 2, "one"),
        "get_last_value": lambda bad: get_last_value(bad, "one"),
        "delete_sequence": lambda bad: delete_sequence(bad, "S"),
        "register_sequence": lambda bad: register_sequence("R", bad),
        "register_template": lambda bad: register_template("RT", "{counter}", bad),
        "get_sequence": lambda bad: get_sequence("stored elsewhere", bad),
        "get_template": lambda bad: get_template("stored elsewhere", bad),
    }


def _unchanged(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return [
            *connection.execute(sa.select(StoredSequence.name).order_by(StoredSequence.name)),
            *connection.execute(sa.select(Counter.name, Counter.key, Counter.value)),
        ]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_an_engine_is_refused(engine: Engine) -> None:
    calls = _calls(engine)
    before = _unchanged(engine)
    for name, call in calls.items():
        with pytest.raises(TypeError, match=r"pass a Session or a Connection \(engine.begin\(\)\)"):
            call(engine)
        assert _unchanged(engine) == before, name


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_async_sessions_and_connections_are_refused(database: Database, engine: Engine) -> None:
    calls = _calls(engine)
    async_engine = create_async_engine(database.url.set(drivername="sqlite+aiosqlite"))
    # Nothing is awaited: the refusal comes before any statement.
    for bad, hint in [
        (AsyncSession(async_engine), r"await session.run_sync\(seq.next\)"),
        (async_engine.connect(), r"await connection.run_sync\(seq.next\)"),
    ]:
        for call in calls.values():
            with pytest.raises(TypeError, match=hint):
                call(bad)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("bad", [None, "invoice", 10])
def test_other_things_are_refused(engine: Engine, bad: object) -> None:
    for name, call in _calls(engine).items():
        if bad is None and name.startswith("get_") and name[4:] in ("sequence", "template"):
            continue  # None: look in this process only
        with pytest.raises(TypeError, match="pass a Session or a Connection"):
            call(bad)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_django_argument_order(engine: Engine) -> None:
    with Session(engine) as session:
        with pytest.raises(TypeError, match=r"the session comes first: get_next_values\(session"):
            get_next_values(10, session, "invoice")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"the session comes first: get_next_value\(session"):
            get_next_value("invoice", session)  # type: ignore[arg-type]
        assert session.execute(sa.select(Counter.name)).all() == []


# 3. scoped_session (Flask-SQLAlchemy's db.session) works; its typing: tests/test_typing.py.


def test_scoped_session(engine: Engine) -> None:
    db_session = scoped_session(sessionmaker(engine))
    try:
        seq = register_sequence("S", db_session)
        tpl = register_template("T", "{k}-{counter}", db_session)
        assert seq.next(db_session) == 1
        assert seq.next_many(db_session, 2, nowait=True) == range(2, 4)
        assert tpl.next(db_session, k="a", nowait=True) == "a-1"
        assert get_next_values(db_session, 2, "one") == range(1, 3)
        db_session.commit()
        db_session.remove()
        with fresh_registry():
            assert get_sequence("S", db_session).last(db_session) == 3
            assert get_template("T", db_session).last(db_session, k="a") == "a-1"
            assert get_last_value(db_session, "one") == 2
            assert delete_sequence(db_session, "one") is True
        db_session.rollback()
    finally:
        db_session.remove()


# 4. A resetting native sequence's batch comes back in the order it was handed out.

WITH_SEQUENCES = pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)


@WITH_SEQUENCES
@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"start": 0, "reset": 3}, [0, 1, 2, 0, 1]),
        ({"start": 0, "step": -1, "reset": -3}, [0, -1, -2, 0, -1]),
        ({"start": 10, "step": 5, "reset": 30}, [10, 15, 20, 25, 10, 15, 20]),
    ],
)
def test_native_batch_in_order(
    engine: Engine, settings: dict[str, int], expected: list[int]
) -> None:
    with engine.begin() as connection:
        seq = register_sequence("minute", connection, NativeSequence, **settings)
        assert list(seq.next_many(connection, len(expected))) == expected
        # The next batch goes on from there: three more of the same cycle.
        cycle = expected[: expected.index(settings["start"], 1)]
        following = [cycle[(len(expected) + i) % len(cycle)] for i in range(3)]
        assert list(seq.next_many(connection, 3)) == following


@WITH_SEQUENCES
def test_native_template_batch_in_order(engine: Engine) -> None:
    with engine.begin() as connection:
        tpl = register_template("NT", "{k}/{counter}", connection, impl=NativeSequence, step=-1)
        assert tpl.next_many(connection, 3, k="a") == ["a/1", "a/0", "a/-1"]
        # Glued to the key, 'a-1' would be k='a-' at counter 1 too: never issued.
        glued = register_template("NG", "{k}{counter}", connection, impl=NativeSequence, step=-1)
        with pytest.raises(TemplateError, match="'a-1'"):
            glued.next_many(connection, 3, k="a")


# 5. A parent template in use by a child is not deleted.


def test_parent_in_use_is_not_deleted(caller: Caller) -> None:
    with caller.block() as session:
        register_template("PL", "{year}: Playlist {counter}", session)
        register_template("AF", "{PL} > Audio File {counter:02d}", session)
        register_template("AZ", "{PL!s} / {counter}", session)
        get_template("PL").next(session, year=2015)
    refused = pytest.raises(TemplateError, match=r"'PL' is the parent of 'AF', 'AZ'")
    for registry in (nullcontext(), fresh_registry()):  # this process's, another's
        with caller.block() as session, registry, refused:
            delete_sequence(session, "PL")
        with caller.block() as session, fresh_registry():  # as stored: all there
            assert get_template("PL", session).last(session, year=2015) == "2015: Playlist 1"
            assert get_template("AF", session).parent == get_template("PL", session)
            assert get_template("AZ", session).parent == get_template("PL", session)
    with caller.block() as session:
        assert delete_sequence(session, "AF") is True
        with pytest.raises(TemplateError, match=r"'PL' is the parent of 'AZ'"):
            delete_sequence(session, "PL")
        assert delete_sequence(session, "AZ") is True
        assert delete_sequence(session, "PL") is True


# 6. A template over a stored sequence: the message says what is true.


def test_template_over_a_stored_sequence(caller: Caller) -> None:
    with caller.block() as session:
        register_sequence("invoice", session)
    registry_module.registry = registry_module.Registry()  # as in another process
    with caller.block() as session:
        with pytest.raises(
            SequenceConfigError, match=r"^'invoice' is already stored as a sequence$"
        ):
            register_template("invoice", "{y}-{counter}", session)
        assert get_next_value(session, "invoice") == 1
