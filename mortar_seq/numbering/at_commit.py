"""Numbering at commit: rows written now with their number NULL, numbered just before COMMIT,
so that a series is locked only for the commit, not for the whole transaction."""

from __future__ import annotations

import collections.abc as abc
import weakref
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value

from ..db.binding import SessionLike, check_session
from ..errors import SequenceConfigError
from ..strategies.targets import Target, observed, seen, target
from .at_flush import refuse_from_select
from .commit_writes import key_of, number_series
from .pending import (
    Pending,
    Row,
    Series,
    awaiting,
    connection_for,
    connection_release_savepoint,
    connection_rollback_savepoint,
    connection_savepoint,
    current,
    forget,
    lock,
    mark,
    owner_of_session,
    pending_rows,
    root,
    sessions,
    undo,
)

# Where an UPDATE of a row changed since the transaction's snapshot fails (PostgreSQL's
# REPEATABLE READ and SERIALIZABLE): the counter's UPDATE at commit, after all the work.
_SNAPSHOT_WRITES_FAIL = frozenset({"postgresql"})
_SNAPSHOT_LEVELS = frozenset({"REPEATABLE READ", "SERIALIZABLE"})
_FAILED = (
    "numbering at commit failed earlier in this transaction, leaving rows unnumbered: "
    "roll the transaction back"
)


def register_object(session: SessionLike, series: Series, obj: object, attribute: str) -> None:
    """Have *obj*'s *attribute* numbered from *series* just before *session* commits."""
    owner = owner_of_session(session)
    if not isinstance(owner, Session):
        raise TypeError(
            "at_commit numbers an ORM object and takes its Session; on a Connection, "
            "use insert_at_commit"
        )
    into = target(type(obj), attribute)
    if obj not in owner:
        raise TypeError(f"add the {type(obj).__name__} to the session before at_commit")
    _refuse_not_null(series, into)
    _check(series, connection_for(owner, into))
    _pending_of(owner).rows.append(Row(series, into, None, obj, into.column))


def insert_row(
    session: SessionLike,
    series: Series,
    table: object,
    values: abc.Mapping[str, Any],
    column: str,
) -> tuple[Any, ...]:
    """Insert a row of *table* with *column* NULL, to be numbered from *series* just before
    *session* commits; return its primary key."""
    check_session(session, "insert_at_commit", table)
    owner = owner_of_session(session)
    into = target(table, column)
    row = into.row(values)
    _refuse_not_null(series, into)
    _check(series, connection_for(owner, into))
    key = _insert(owner, into, row)
    _pending_of(owner).rows.append(Row(series, into, key))
    return key


def numbering_default(series_of: abc.Callable[[Any], Series]) -> abc.Callable[[Any], None]:
    """Return a column default that leaves the column NULL at flush and has the row
    numbered, from the series *series_of(context)* gives, just before COMMIT."""
    _listen_for_defaults()

    def default(context: Any) -> None:
        refuse_from_select(context)
        _refuse_keys_untold(context)
        column = context.current_column
        into = target(column.table, column.key)
        if not into.table.primary_key.columns:
            raise TypeError(f"{into.table.name!r} has no primary key to find the row by at commit")
        series = series_of(context)
        _refuse_not_null(series, into)
        connection = context.connection
        _check(series, connection)
        with lock:
            awaiting.setdefault(context, []).append((series, into))

    return default


def _refuse_keys_untold(context: Any) -> None:
    """Raise `SequenceConfigError` for an INSERT whose rows' keys SQLAlchemy will not tell
    (`after_execute` reads them): several VALUES rows in one statement, or RETURNING."""
    if not isinstance(context.current_column, sa.Column):  # the second VALUES row's
        raise SequenceConfigError(
            "a column default numbering at commit cannot number an INSERT of several VALUES "
            "rows: SQLAlchemy does not tell their keys; pass the rows as a list instead "
            "(connection.execute(table.insert().return_defaults(), rows))"
        )
    if context.compiled.statement.exported_columns:
        raise SequenceConfigError(
            "a column default numbering at commit cannot number an INSERT ... RETURNING: "
            "SQLAlchemy does not tell its rows' keys; use insert().return_defaults() "
            "(result.inserted_primary_key) instead of returning()"
        )


def number_pending(session: SessionLike) -> dict[str, list[int | str]]:
    """Number the rows registered to be numbered at commit on *session*, now; return the
    values each series assigned, by name, in the order the rows were registered.

    A `~sqlalchemy.orm.Session` calls it itself as it commits; on a
    `~sqlalchemy.engine.Connection`, call it before committing. Series are taken in name
    order, so that transactions numbering at commit never wait for each other in a cycle.
    In the caller's transaction, which it never commits.

    .. versionadded:: 0.1
    """
    check_session(session)
    return _number_pending(owner_of_session(session))


def _number_pending(owner: Session | Connection) -> dict[str, list[int | str]]:
    pending = current(owner)
    if pending is not None and pending.failed:
        raise SequenceConfigError(_FAILED)
    if isinstance(owner, Session):
        owner.flush()  # inserts new objects (their keys, rows a column default registers)
        if pending is None:  # else the same, perhaps with more rows
            pending = current(owner)
    if pending is None or not pending.rows:
        return {}
    try:
        return _number_rows(owner, pending)
    except BaseException:
        pending.failed = True  # some rows may be numbered, others not: roll back
        raise


def _number_rows(owner: Session | Connection, pending: Pending) -> dict[str, list[int | str]]:
    rows = pending.rows
    groups: dict[tuple[str, str], list[tuple[Row, tuple[Any, ...]]]] = {}
    seen_rows: set[tuple[Any, ...]] = set()
    order: dict[int, int] = {}  # registration order, by row
    for position, row in enumerate(rows):
        key = row.key if row.obj is None else key_of(row.obj, row.into)
        which = (row.into.table, row.into.column, key)
        if key is None or which in seen_rows:
            continue  # deleted, or rolled back with a savepoint; registered twice
        seen_rows.add(which)
        order[id(row)] = position
        definition = row.series.definition
        groups.setdefault((definition.name, definition.key), []).append((row, key))
    found: dict[str, list[tuple[int, int | str]]] = {}
    loaded = _loaded(owner, rows)
    # By name, then key: a template's counters are series of their own.
    for name, counter in sorted(groups):
        listed = groups[name, counter]
        values = found.setdefault(name, [])
        for (row, key), number in zip(listed, number_series(owner, listed), strict=True):
            if number is None:
                continue  # deleted unseen (a Core DELETE, a cascade)
            values.append((order[id(row)], number))
            if row.obj is not None:
                set_committed_value(row.obj, row.attribute, number)
            elif (row.into, key) in loaded:
                set_committed_value(*loaded[row.into, key], number)
    pending.rows = []
    return {name: [value for _, value in sorted(values)] for name, values in found.items()}


def _loaded(
    owner: Session | Connection, rows: list[Row]
) -> dict[tuple[Target, tuple[Any, ...]], tuple[object, str]]:
    """The objects of *owner*'s identity map whose rows a column default registered (an
    ORM flush), with the attribute of the number: they carry it after COMMIT too."""
    by_table: dict[object, set[Target]] = {}
    for row in rows:
        if row.by_default:
            by_table.setdefault(row.into.table, set()).add(row.into)
    if not isinstance(owner, Session) or not by_table:
        return {}
    found: dict[tuple[Target, tuple[Any, ...]], tuple[object, str]] = {}
    for state in owner.identity_map.all_states():
        obj = state.obj()
        for into in by_table.get(state.mapper.local_table, ()):
            key = None if obj is None else key_of(obj, into)
            attribute = _attribute(state.mapper, into)
            if key is not None and attribute is not None:
                found[into, key] = (obj, attribute)
    return found


@lru_cache(maxsize=512)
def _attribute(mapper: Mapper[Any], into: Target) -> str | None:
    column = into.table.c[into.column]
    found = [prop.key for prop in mapper.column_attrs if column in prop.columns]
    return found[0] if found else None


def _refuse_not_null(series: Series, into: Target) -> None:
    if not into.table.c[into.column].nullable:
        raise SequenceConfigError(
            f"{series.definition.name!r} cannot number {into.table.name}.{into.column} at "
            "commit: the column is NOT NULL, and the row is written first with NULL in it "
            "(make the column nullable)"
        )


def _check(series: Series, connection: Connection) -> None:
    """Refuse a transaction whose counter UPDATE at commit would fail."""
    if connection.dialect.name not in _SNAPSHOT_WRITES_FAIL:
        return
    # SQLAlchemy's own word, without a round trip: the level an execution option sets, else
    # the server's default seen at first connect (a level set by raw SQL goes unseen).
    level = connection.get_execution_options().get("isolation_level")
    level = str(level or connection.default_isolation_level or "").replace("_", " ").upper()
    if level in _SNAPSHOT_LEVELS:
        raise SequenceConfigError(
            f"{series.definition.name!r} cannot number at commit in a {level} transaction: "
            "the counter's UPDATE at commit would fail with a serialization error after all "
            "the transaction's work; use READ COMMITTED"
        )


def _pending_of(owner: Session | Connection) -> Pending:
    """Return the pending rows of *owner*'s transaction (begun by now), made on first use."""
    pending = current(owner)
    if pending is None:
        pending = Pending(root(owner))
        with lock:
            pending_rows[owner] = pending
        _listen(owner)
    return pending


def _insert(owner: Session | Connection, into: Target, row: dict[str, Any]) -> tuple[Any, ...]:
    plain, returning = _inserts(into)
    parameters = {**row, into.column: None}
    if returning is not None and observed(owner):
        # ORM-enabled, so that zope.sqlalchemy sees the transaction write.
        return (into.execute(owner, returning, parameters).scalar_one(),)
    inserted = into.execute(owner, plain, parameters).inserted_primary_key
    if inserted is None or any(value is None for value in inserted):
        raise TypeError(f"{into.table.name!r} returned no primary key for the row inserted")
    return tuple(inserted)


@lru_cache(maxsize=512)
def _inserts(into: Target) -> tuple[Any, Any]:
    """The INSERT of a row to be numbered at commit (the row and its NULL as parameters),
    and its ORM-enabled form returning the key (None for a key of several columns): built
    once per table, so that SQLAlchemy finds its compiled form without a new cache key."""
    primary_key = list(into.table.primary_key.columns)
    if not primary_key:
        raise TypeError(f"{into.table.name!r} has no primary key to find the row by at commit")
    plain = sa.insert(into.table)
    if len(primary_key) != 1:
        return plain, None
    return plain, seen(plain.returning(primary_key[0].label("value")))


def _listen(owner: Session | Connection) -> None:
    """Hook the transaction's end and its savepoints, once per Session or Connection."""
    if isinstance(owner, Session):
        if not _following_sessions:
            _follow_sessions()
        # The commit on the Session itself, after the hooks it already has (as a listener
        # on every Session would not be): each listener added costs ~50 Python calls.
        if not event.contains(owner, "before_commit", _before_commit):
            event.listen(owner, "before_commit", _before_commit)
    elif not event.contains(owner, "commit", _connection_commit):
        event.listen(owner, "commit", _connection_commit)
        event.listen(owner, "rollback", forget)
        event.listen(owner, "savepoint", connection_savepoint)
        event.listen(owner, "release_savepoint", connection_release_savepoint)
        event.listen(owner, "rollback_savepoint", connection_rollback_savepoint)


_following_sessions = False  # every Session's savepoints and ends, once at_commit is used


def _follow_sessions() -> None:
    """Follow every Session's savepoints and transaction ends, once: cheap where nothing is
    registered, where hooking each Session again would cost every transaction that numbers
    at commit on a new Session ~150 Python calls."""
    global _following_sessions
    with lock:
        if not _following_sessions:
            event.listen(Session, "after_transaction_create", _session_savepoint)
            event.listen(Session, "after_soft_rollback", _session_rollback)
            event.listen(Session, "after_transaction_end", _session_end)
            _following_sessions = True


def _before_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's release fires it too
        _number_pending(session)


def _listen_for_defaults() -> None:
    """Follow every INSERT and Session, once a column default numbering at commit exists:
    the default runs before its row's primary key is known, and sees a Connection only."""
    with lock:
        if event.contains(Engine, "after_execute", _after_execute):
            return
        event.listen(Session, "after_begin", _session_began)
        event.listen(Session, "before_commit", _flush_before_commit)
        event.listen(Engine, "after_execute", _after_execute)


def _flush_before_commit(session: Session) -> None:
    # A commit flushes after before_commit: rows its flush has a column default register
    # would be left unnumbered. Flushing first costs nothing more (the commit then finds
    # the session clean).
    if session.new and not session.in_nested_transaction():
        session.flush()
        with lock:
            registered = session in pending_rows
        if registered:
            _number_pending(session)


def _session_began(session: Session, transaction: Any, connection: Connection) -> None:
    with lock:
        sessions[connection] = weakref.ref(session)


def _owner_of(connection: Connection) -> Session | Connection:
    with lock:
        found = sessions.get(connection)
    session = None if found is None else found()
    if session is not None and session.get_transaction() is not None:
        return session
    return connection


def _after_execute(connection: Connection, *args: Any) -> None:
    if not awaiting:  # the hot path: any statement, anywhere
        return
    context = getattr(args[-1], "context", None)
    if context is None:
        return
    with lock:
        waiting = awaiting.pop(context, None)
    if waiting is None:
        return
    owner = _owner_of(connection)
    pending = _pending_of(owner)
    keys = args[-1].inserted_primary_key_rows
    if len(keys) != len(waiting) or any(key is None or None in key for key in keys):
        pending.failed = True  # rows went in unnumbered: the transaction must not commit
        raise SequenceConfigError(
            f"{len(waiting)} rows were inserted to be numbered at commit, but the database "
            "did not tell their primary keys (several rows in one statement): insert them "
            "one by one, with "
            "insert().return_defaults(), or with insert_at_commit (the transaction must be "
            "rolled back)"
        )
    for (series, into), key in zip(waiting, keys, strict=True):
        pending.rows.append(Row(series, into, tuple(key), by_default=True))


def _session_savepoint(session: Session, transaction: Any) -> None:
    if transaction.nested:
        mark(session, transaction)


def _session_rollback(session: Session, previous: Any) -> None:
    if previous.nested:
        undo(session, previous)


def _session_end(session: Session, transaction: Any) -> None:
    # Every Session's (see _follow_sessions): the lock only where something is registered.
    if transaction.parent is None and session in pending_rows:
        forget(session)


def _connection_commit(connection: Connection) -> None:
    with lock:
        pending = pending_rows.pop(connection, None)
    if pending is not None and (pending.rows or pending.failed):
        # As a COMMIT refused by the database: rolled back, so that the rows are never stored
        # unnumbered. SQLAlchemy leaves a failed commit's transaction for a rollback() and
        # returns the connection to the pool without one: the DBAPI transaction must end here.
        connection.dialect.do_rollback(connection.connection)
        if pending.failed:
            raise SequenceConfigError(_FAILED)
        names = sorted({row.series.definition.name for row in pending.rows})
        raise SequenceConfigError(
            f"{len(pending.rows)} row(s) of {', '.join(map(repr, names))} are still to be "
            "numbered at commit: call number_pending(connection) before committing a "
            "Connection (the transaction is rolled back)"
        )
