"""Numbering at commit: rows written now with their number NULL, numbered just before COMMIT,
so that a series is locked only for the commit, not for the whole transaction."""

from __future__ import annotations

import collections.abc as abc
import threading
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper, Session, scoped_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from ..db.binding import SessionLike, check_session
from ..definition import Definition
from ..errors import SequenceConfigError, UnknownSequence
from ..strategies import SequenceStrategy, counts_in_rows, gapless
from ..strategies.targets import Target, observed, seen, target
from .at_flush import refuse_from_select

# Where an UPDATE of a row changed since the transaction's snapshot fails (PostgreSQL's
# REPEATABLE READ and SERIALIZABLE): the counter's UPDATE at commit, after all the work.
_SNAPSHOT_WRITES_FAIL = frozenset({"postgresql"})
_SNAPSHOT_LEVELS = frozenset({"REPEATABLE READ", "SERIALIZABLE"})
_FAILED = (
    "numbering at commit failed earlier in this transaction, leaving rows unnumbered: "
    "roll the transaction back"
)
_ROWS_PER_UPDATE = 2000  # a CASE of bound parameters: SQLite allows 32766 per statement


class Series(Protocol):
    """What numbering needs of a `Sequence`."""

    @property
    def definition(self) -> Definition: ...

    @property
    def strategy(self) -> SequenceStrategy: ...


@runtime_checkable
class Labelled(Series, Protocol):
    """What numbering needs of a template's counter besides: its identifiers."""

    def prepare(self, session: SessionLike, *, again: bool) -> None:
        """Make sure the counter exists (*again*: it was found missing)."""

    def texts(self, numbers: abc.Sequence[int]) -> list[str]:
        """The identifiers of *numbers*; raise `TemplateError` for one it must not issue."""

    def in_sql(self) -> abc.Callable[[ColumnElement[Any]], ColumnElement[Any]] | None:
        """SQL writing the identifier of a number, where the database can (else None)."""


@dataclass
class _Row:
    series: Series
    into: Target
    key: tuple[Any, ...] | None  # None for an ORM object: read from it at numbering
    obj: object = None
    attribute: str = ""
    by_default: bool = False  # written by a column default: perhaps an ORM object's row


@dataclass
class _Pending:
    """What one transaction registered, and where each savepoint began."""

    transaction: object
    rows: list[_Row] = field(default_factory=list)
    marks: dict[object, int] = field(default_factory=dict)  # a Session's, by its savepoint
    stack: list[int] = field(default_factory=list)  # a Connection's, innermost last
    failed: bool = False  # numbering raised: the transaction must not commit


_lock = threading.Lock()
# Keyed by the caller's Session or Connection, weakly: nothing outlives them.
_pending: WeakKeyDictionary[Any, _Pending] = WeakKeyDictionary()
# Column defaults numbering at commit: the rows an INSERT's execution is writing, until it
# has run and tells their primary keys; and the Session each connection works for.
_awaiting: WeakKeyDictionary[Any, list[tuple[Series, Target]]] = WeakKeyDictionary()
_sessions: WeakKeyDictionary[Connection, weakref.ref[Session]] = WeakKeyDictionary()


def register_object(session: SessionLike, series: Series, obj: object, attribute: str) -> None:
    """Have *obj*'s *attribute* numbered from *series* just before *session* commits."""
    owner = _session(session)
    if not isinstance(owner, Session):
        raise TypeError(
            "at_commit numbers an ORM object and takes its Session; on a Connection, "
            "use insert_at_commit"
        )
    into = target(type(obj), attribute)
    if obj not in owner:
        raise TypeError(f"add the {type(obj).__name__} to the session before at_commit")
    _refuse_not_null(series, into)
    _check(series, _connection(owner, into))
    _pending_of(owner).rows.append(_Row(series, into, None, obj, into.column))


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
    owner = _session(session)
    into = target(table, column)
    row = into.row(values)
    _refuse_not_null(series, into)
    _check(series, _connection(owner, into))
    key = _insert(owner, into, row)
    _pending_of(owner).rows.append(_Row(series, into, key))
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
        with _lock:
            _awaiting.setdefault(context, []).append((series, into))

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

    A `Session` calls it itself as it commits; on a `Connection`, call it before
    committing. Series are taken in name order, so that transactions numbering at commit
    never wait for each other in a cycle. In the caller's transaction, which it never
    commits.

    .. versionadded:: 0.1
    """
    check_session(session)
    owner = _session(session)
    pending = _current(owner)
    if pending is not None and pending.failed:
        raise SequenceConfigError(_FAILED)
    if isinstance(owner, Session):
        owner.flush()  # inserts new objects (their keys, rows a column default registers)
        pending = _current(owner)
    if pending is None or not pending.rows:
        return {}
    try:
        return _number_rows(owner, pending)
    except BaseException:
        pending.failed = True  # some rows may be numbered, others not: roll back
        raise


def _number_rows(owner: Session | Connection, pending: _Pending) -> dict[str, list[int | str]]:
    rows = pending.rows
    groups: dict[tuple[str, str], list[tuple[_Row, tuple[Any, ...]]]] = {}
    seen_rows: set[tuple[Any, ...]] = set()
    order: dict[int, int] = {}  # registration order, by row
    for position, row in enumerate(rows):
        key = row.key if row.obj is None else _key_of(row.obj, row.into)
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
        for (row, key), number in zip(listed, _number(owner, listed), strict=True):
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
    owner: Session | Connection, rows: list[_Row]
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
            key = None if obj is None else _key_of(obj, into)
            attribute = _attribute(state.mapper, into)
            if key is not None and attribute is not None:
                found[into, key] = (obj, attribute)
    return found


@lru_cache(maxsize=512)
def _attribute(mapper: Mapper[Any], into: Target) -> str | None:
    column = into.table.c[into.column]
    found = [prop.key for prop in mapper.column_attrs if column in prop.columns]
    return found[0] if found else None


def _session(session: SessionLike) -> Session | Connection:
    return session.registry() if isinstance(session, scoped_session) else session


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


def _pending_of(owner: Session | Connection) -> _Pending:
    """Return the pending rows of *owner*'s transaction (begun by now), made on first use."""
    pending = _current(owner)
    if pending is None:
        pending = _Pending(_root(owner))
        with _lock:
            _pending[owner] = pending
        _listen(owner)
    return pending


def _connection(owner: Session | Connection, into: Target) -> Connection:
    if isinstance(owner, Connection):
        return owner
    if into.mapper is not None:
        return owner.connection(bind_arguments={"mapper": into.mapper})
    return owner.connection(bind_arguments={"clause": into.table})


def _root(owner: Session | Connection) -> object:
    return owner.get_transaction()


def _current(owner: Session | Connection) -> _Pending | None:
    with _lock:
        pending = _pending.get(owner)
    if pending is not None and pending.transaction is not _root(owner):
        _forget(owner)  # left by an earlier transaction whose end was not seen
        return None
    return pending


def _forget(owner: object) -> None:
    with _lock:
        _pending.pop(owner, None)


def _insert(owner: Session | Connection, into: Target, row: dict[str, Any]) -> tuple[Any, ...]:
    primary_key = list(into.table.primary_key.columns)
    if not primary_key:
        raise TypeError(f"{into.table.name!r} has no primary key to find the row by at commit")
    statement = sa.insert(into.table).values(**{into.column: None}, **row)
    if observed(owner) and len(primary_key) == 1:
        # ORM-enabled, so that zope.sqlalchemy sees the transaction write.
        statement = seen(statement.returning(primary_key[0].label("value")))
        return (into.execute(owner, statement, {}).scalar_one(),)
    inserted = into.execute(owner, statement, {}).inserted_primary_key
    if inserted is None or any(value is None for value in inserted):
        raise TypeError(f"{into.table.name!r} returned no primary key for the row inserted")
    return tuple(inserted)


def _key_of(obj: object, into: Target) -> tuple[Any, ...] | None:
    state = sa.inspect(obj)
    if not state.persistent or state.identity is None:
        return None  # deleted, or gone with a savepoint rolled back
    mapper = state.mapper
    by_column = dict(zip(mapper.primary_key, state.identity, strict=True))
    return tuple(by_column[column] for column in into.table.primary_key.columns)


def _number(
    owner: Session | Connection, listed: list[tuple[_Row, tuple[Any, ...]]]
) -> abc.Sequence[int | str | None]:
    """Take one value per row of a series and write them, in the rows' order; return each
    row's number (None for a row found deleted)."""
    series = listed[0][0].series
    rows = [(row.into, key) for row, key in listed]
    labelled = series if isinstance(series, Labelled) else None
    if labelled is None:
        return _take_and_write(owner, series, rows, None)
    labelled.prepare(owner, again=False)
    try:
        return _take_and_write(owner, series, rows, labelled)
    except UnknownSequence:
        # Its counter went away with a rolled-back transaction that created it.
        labelled.prepare(owner, again=True)
        return _take_and_write(owner, series, rows, labelled)


def _take_and_write(
    owner: Session | Connection,
    series: Series,
    rows: list[tuple[Target, tuple[Any, ...]]],
    labelled: Labelled | None,
) -> abc.Sequence[int | str | None]:
    definition, strategy = series.definition, series.strategy
    in_sql = None if labelled is None else labelled.in_sql()
    in_one = getattr(strategy, "number_rows", None)
    done = None
    if in_one is not None and labelled is None:
        done = in_one(owner, definition, rows)
    elif in_one is not None and in_sql is not None:
        done = in_one(owner, definition, rows, render=in_sql)
    values: abc.Sequence[int | str]
    if done is not None:
        numbers, written = done
        # Written already: a refusal here fails the commit (number_pending marks it failed).
        values = numbers if labelled is None else labelled.texts(numbers)
    else:
        numbers = strategy.next_many(owner, definition, len(rows))
        values = numbers if labelled is None else labelled.texts(numbers)
        written = _write(owner, rows, values)
    if written == len(rows):
        return list(values)
    return _renumber(owner, series, rows, numbers, values)


def _write(
    owner: Session | Connection,
    rows: list[tuple[Target, tuple[Any, ...]]],
    numbers: abc.Sequence[int | str],
) -> int:
    """Write *numbers* into *rows*: one UPDATE per table; return how many rows it found."""
    by_table: dict[tuple[sa.Table, str], list[tuple[Target, tuple[Any, ...], int | str]]] = {}
    for (into, key), number in zip(rows, numbers, strict=True):
        by_table.setdefault((into.table, into.column), []).append((into, key, number))
    written = 0
    for numbered in by_table.values():
        for start in range(0, len(numbered), _ROWS_PER_UPDATE):
            chunk = numbered[start : start + _ROWS_PER_UPDATE]
            into = chunk[0][0]
            statement = _numbering_update(into, [(key, number) for _, key, number in chunk])
            written += into.execute(owner, statement, {}).rowcount
    return written


def _numbering_update(into: Target, numbered: list[tuple[tuple[Any, ...], int | str]]) -> Any:
    """``UPDATE t SET column = CASE pk WHEN .. THEN .. END WHERE pk IN (..)``."""
    table = into.table
    primary_key = list(table.primary_key.columns)
    keys = [key for key, _ in numbered]
    if len(primary_key) == 1:
        only = primary_key[0]
        number = sa.case({key[0]: value for key, value in numbered}, value=only)
        where = only.in_([key[0] for key in keys])
    else:
        whens = [
            (sa.and_(*[c == v for c, v in zip(primary_key, key, strict=True)]), value)
            for key, value in numbered
        ]
        number = sa.case(*whens)
        where = sa.tuple_(*primary_key).in_(keys)
    return sa.update(table).where(where).values({into.column: number})


def _renumber(
    owner: Session | Connection,
    series: Series,
    rows: list[tuple[Target, tuple[Any, ...]]],
    numbers: abc.Sequence[int],
    values: abc.Sequence[int | str],
) -> list[int | str | None]:
    """Number again the rows still there (some were deleted unseen, with a Core DELETE or a
    cascade), with the first values taken (*values*: as written, a template's identifiers);
    a gapless counter takes the others back."""
    alive: list[tuple[Target, tuple[Any, ...]]] = []
    for into, keys in _keys_by_table(rows).items():
        primary_key = list(into.table.primary_key.columns)
        found = {
            tuple(found)
            for found in into.execute(
                owner, sa.select(*primary_key).where(sa.tuple_(*primary_key).in_(keys)), {}
            )
        }
        alive.extend((into, key) for key in keys if key in found)
    position = {row: n for n, row in enumerate(rows)}
    alive.sort(key=position.__getitem__)
    kept = list(values[: len(alive)])
    if alive:
        _write(owner, alive, kept)
    strategy = series.strategy
    restart = getattr(strategy, "restart", None)
    if counts_in_rows(strategy) and gapless(strategy) and restart is not None:
        restart(owner, series.definition, numbers[len(alive)])
    renumbered = dict(zip(alive, kept, strict=True))
    return [renumbered.get(row) for row in rows]


def _keys_by_table(
    rows: list[tuple[Target, tuple[Any, ...]]],
) -> dict[Target, list[tuple[Any, ...]]]:
    by_table: dict[Target, list[tuple[Any, ...]]] = {}
    for into, key in rows:
        by_table.setdefault(into, []).append(key)
    return by_table


def _listen(owner: Session | Connection) -> None:
    """Hook the transaction's end and its savepoints, once per Session or Connection."""
    if isinstance(owner, Session):
        if not event.contains(owner, "before_commit", _before_commit):
            event.listen(owner, "before_commit", _before_commit)
            event.listen(owner, "after_transaction_create", _session_savepoint)
            event.listen(owner, "after_soft_rollback", _session_rollback)
            event.listen(owner, "after_transaction_end", _session_end)
    elif not event.contains(owner, "commit", _connection_commit):
        event.listen(owner, "commit", _connection_commit)
        event.listen(owner, "rollback", _forget)
        event.listen(owner, "savepoint", _connection_savepoint)
        event.listen(owner, "release_savepoint", _connection_release_savepoint)
        event.listen(owner, "rollback_savepoint", _connection_rollback_savepoint)


def _before_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's release fires it too
        number_pending(session)


def _listen_for_defaults() -> None:
    """Follow every INSERT and Session, once a column default numbering at commit exists:
    the default runs before its row's primary key is known, and sees a Connection only."""
    with _lock:
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
        with _lock:
            registered = session in _pending
        if registered:
            number_pending(session)


def _session_began(session: Session, transaction: Any, connection: Connection) -> None:
    with _lock:
        _sessions[connection] = weakref.ref(session)


def _owner_of(connection: Connection) -> Session | Connection:
    with _lock:
        found = _sessions.get(connection)
    session = None if found is None else found()
    if session is not None and session.get_transaction() is not None:
        return session
    return connection


def _after_execute(connection: Connection, *args: Any) -> None:
    if not _awaiting:  # the hot path: any statement, anywhere
        return
    context = getattr(args[-1], "context", None)
    if context is None:
        return
    with _lock:
        waiting = _awaiting.pop(context, None)
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
        pending.rows.append(_Row(series, into, tuple(key), by_default=True))


def _session_savepoint(session: Session, transaction: Any) -> None:
    _mark(session, transaction)


def _session_rollback(session: Session, previous: Any) -> None:
    if previous.nested:
        _undo(session, previous)


def _session_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        _forget(session)


def _connection_commit(connection: Connection) -> None:
    with _lock:
        pending = _pending.pop(connection, None)
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


# A Connection's savepoint event comes before its name is chosen: its savepoints are
# followed as a stack (they end innermost first).
def _connection_savepoint(connection: Connection, name: str | None) -> None:
    with _lock:
        pending = _pending.get(connection)
        if pending is not None:
            pending.stack.append(len(pending.rows))


def _connection_release_savepoint(connection: Connection, name: str, context: Any) -> None:
    with _lock:
        pending = _pending.get(connection)
        if pending is not None and pending.stack:
            pending.stack.pop()


def _connection_rollback_savepoint(connection: Connection, name: str, context: Any) -> None:
    with _lock:
        pending = _pending.get(connection)
        if pending is not None:
            del pending.rows[pending.stack.pop() if pending.stack else 0 :]


def _mark(owner: object, savepoint: object) -> None:
    with _lock:
        pending = _pending.get(owner)
        if pending is not None:
            pending.marks[savepoint] = len(pending.rows)


def _undo(owner: object, savepoint: object) -> None:
    # Rows registered since the savepoint began go with it. One begun before the first row
    # was registered (unknown here) encloses them all.
    with _lock:
        pending = _pending.get(owner)
        if pending is not None:
            del pending.rows[pending.marks.pop(savepoint, 0) :]
