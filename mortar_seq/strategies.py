"""How sequences are stored and advanced: the strategy protocol and its implementations."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, ClassVar, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateSequence, DropSequence, ExecutableDDLElement
from sqlalchemy.sql.elements import ColumnElement

from .arithmetic import Advance, advance, cycle_length, handed_out
from .binding import SessionLike, connection_of, dialect_of, engine_of
from .conflicts import retrying
from .definition import Definition
from .dialects import (
    CurrentValue,
    NextValues,
    Remembered,
    RestartSequence,
    SetSequenceValue,
    caches_per_connection,
    ddl_is_transactional,
    ddl_lock_wait,
    modifies_in_cte,
    remembered_value,
    remembers_written_value,
)
from .driver_errors import is_lock_timeout, is_sequence_exhausted
from .errors import SequenceConfigError, SequenceExhausted, SequenceLocked, UnknownSequence
from .galera import refuse_native_sequences
from .model import Counter
from .numbering import (
    Target,
    insert_many_numbered_by,
    insert_numbered_by,
    many_rows_parameters,
    observed,
    row_parameters,
    seen,
)
from .pool import drop, pool_for
from .side import side_engine
from .storage import briefly, create_missing, deleted_here


class SequenceStrategy(Protocol):
    """How one kind of sequence is created, advanced, read and removed.

    The verbs take the caller's session and the sequence's `Definition`; they run in the
    caller's transaction and never commit or roll it back.
    """

    kind: ClassVar[str]  # stored with each sequence, so other processes find the strategy

    def check(self, dialect: Dialect) -> None:
        """Raise `SequenceConfigError` if *dialect*'s database cannot hold this kind."""

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None: ...

    def next(self, session: SessionLike, definition: Definition) -> int: ...

    def next_many(
        self, session: SessionLike, definition: Definition, count: int
    ) -> Sequence[int]: ...

    def last(self, session: SessionLike, definition: Definition) -> int | None: ...

    def reached(self, session: SessionLike, definition: Definition) -> int | None:
        """Return the furthest value taken or reserved by anyone; None before the first."""

    def restart(self, session: SessionLike, definition: Definition, value: int) -> None:
        """Make *value* (a value of the series, checked by the caller) the next one handed out.

        Under the sequence's lock, as `next` takes it. Raise `SequenceConfigError` where
        that could hand out a value twice (one another process may still hold).
        """

    def delete(self, session: SessionLike, definition: Definition) -> None: ...


@dataclass(frozen=True)
class TableSequence:
    """A counter row per sequence: gapless, in any SQLAlchemy database.

    Values taken in a transaction that rolls back are given back, so the values stored by
    committed transactions form start, start + step, ... with no gap and no duplicate.
    Concurrent transactions on the same sequence are serialised on its row (on SQLite, on
    the database's write lock). A value is only safe if it is saved in the transaction
    that took it.
    """

    kind: ClassVar[str] = "table"

    def check(self, dialect: Dialect) -> None:
        """Every SQLAlchemy database can hold a counter row."""

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None:
        create_missing(session, Counter, _counter_row(definition), nowait=nowait)

    def next(self, session: SessionLike, definition: Definition) -> int:
        return self.next_many(session, definition, 1)[0]

    def next_many(self, session: SessionLike, definition: Definition, count: int) -> Sequence[int]:
        last = self._move(session, definition, count)
        if last is None:
            raise self._refusal(session, definition, count)
        return handed_out(definition, last, count)

    def _move(self, session: SessionLike, definition: Definition, count: int) -> int | None:
        """Move the counter by *count* values; return its new value, None if it did not move."""
        plan = advance(definition, count)
        shape, parameters = _shape(plan, definition.step), _parameters(definition, plan)
        dialect = dialect_of(session)
        if dialect.update_returning:
            # One round trip: UPDATE ... RETURNING.
            returned = _write(session, shape, "returning", parameters)
            return cast("int | None", returned.scalar_one_or_none())
        if remembers_written_value(dialect):
            # One round trip: UPDATE ... SET value = LAST_INSERT_ID(...) (MariaDB); the
            # driver reports the value as lastrowid, and rowcount whether the row moved.
            moved = _write(session, shape, "remembering", parameters)
            return remembered_value(moved.lastrowid) if moved.rowcount else None
        if not _write(session, shape, "plain", parameters).rowcount:
            return None
        # Neither: the row is ours now, read what we wrote.
        return cast("int", _read(session, _CURRENT, _which(definition)).scalar_one())

    def last(self, session: SessionLike, definition: Definition) -> int | None:
        current = _read(session, _CURRENT, _which(definition))
        return cast("int | None", current.scalar_one_or_none())

    def reached(self, session: SessionLike, definition: Definition) -> int | None:
        return self.last(session, definition)

    def restart(self, session: SessionLike, definition: Definition, value: int) -> None:
        # The UPDATE locks the row as next() does, waiting for a transaction that holds it.
        if not restart_counter(session, definition, value):
            raise UnknownSequence(definition.name, " in this database")

    def delete(self, session: SessionLike, definition: Definition) -> None:
        """Nothing beyond the stored rows, which the registry deletes."""

    def _refusal(self, session: SessionLike, definition: Definition, count: int) -> Exception:
        # A locking read, like the UPDATE before it: it sees rows newer than a REPEATABLE
        # READ snapshot, such as a counter just created on a connection of its own.
        query = sa.select(sa.literal(1)).where(_counter(definition)).with_for_update(read=True)
        if session.execute(query).first() is None:
            return UnknownSequence(definition.name, " in this database")
        return SequenceExhausted(
            f"{definition.name!r} cannot hand out {count} more value(s) within 64 bits"
        )

    def insert(
        self, session: SessionLike, definition: Definition, into: Target, row: dict[str, Any]
    ) -> int:
        """Take the next value and insert *row* numbered with it, in the caller's transaction.

        One statement where the database updates inside WITH (PostgreSQL), else two.
        """
        defaults = into.defaults(row)
        if defaults is None or not modifies_in_cte(dialect_of(session)):
            number = self.next(session, definition)
            into.insert(session, [row], [number])
            return number
        plan = advance(definition, 1)
        filled = {**defaults.values, **row}
        keys = tuple(filled)
        bump = _bump(_shape(plan, definition.step), "returning", False)
        statement = insert_numbered_by(bump, into, keys)
        if observed(session):
            statement = seen(statement)
        parameters = {**_parameters(definition, plan), **row_parameters(filled, keys)}
        number = into.execute(session, statement, parameters).scalar_one_or_none()
        if number is None:
            raise self._refusal(session, definition, 1)
        return cast(int, number)

    def insert_many(
        self, session: SessionLike, definition: Definition, into: Target, rows: list[dict[str, Any]]
    ) -> Sequence[int]:
        """Take len(*rows*) values and insert the rows numbered with them, in list order.

        One statement where the database updates inside WITH (PostgreSQL), else two: also
        where a column left out has a Python function as its default (it must run per row),
        and on a Session with ORM hooks (zope.sqlalchemy), which see the counter's write.
        """
        count = len(rows)
        defaults = into.defaults(rows[0])
        if defaults is None or observed(session) or not modifies_in_cte(dialect_of(session)):
            numbers = self.next_many(session, definition, count)
            into.insert(session, rows, numbers)
            return numbers
        plan = advance(definition, count)
        bump = _bump(_shape(plan, definition.step), "returning", False)
        filled = [{**defaults.values, **row} for row in rows]
        keys = tuple(filled[0])
        statement = insert_many_numbered_by(bump, into, keys, _numbering(definition))
        parameters = {**_parameters(definition, plan), **many_rows_parameters(filled, keys)}
        last = into.execute(session, statement, parameters).scalar_one_or_none()
        if last is None:
            raise self._refusal(session, definition, count)
        return handed_out(definition, last, count)


# Statements are built once per shape (which clauses a call needs), with the name, key and
# numbers as bound parameters: a million counters cost no more per call than ten.
#
# A Session runs ORM-enabled DML through its event hooks, re-annotating the statement on
# every call, so that its cache key is computed again each time: measured on SQLite, 300 us
# of CPU per next() against 80 us for the same Core statement. Hooks such as
# zope.sqlalchemy's (which marks the session changed, so that its commit is not skipped)
# only see ORM-enabled DML: a Session that has such hooks gets the ORM-enabled statement,
# any other gets the Core one, on the same connection and in the same transaction.
_TABLE: sa.Table = cast(sa.Table, Counter.__table__)
_VALUE = _TABLE.c.value
_NAME = sa.bindparam("mortar_name", type_=_TABLE.c.name.type)
_KEY = sa.bindparam("mortar_key", type_=_TABLE.c.key.type)
_COUNTER = sa.and_(_TABLE.c.name == _NAME, _TABLE.c.key == _KEY)
_ON_COUNTERS = {"mapper": Counter}  # Session.execute copies it
# Native sequences' statements, per definition (they name a database object each).
_STATEMENTS_KEPT = 4096


@dataclass(frozen=True)
class _Shape:
    """Which clauses taking values needs: a call's `Advance` without its numbers."""

    from_nothing: bool
    wraps: bool
    limited: bool
    upward: bool


def _shape(plan: Advance, step: int) -> _Shape:
    return _Shape(
        plan.from_nothing is not None, plan.wrap_at is not None, plan.limit is not None, step > 0
    )


def _parameters(definition: Definition, plan: Advance) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "mortar_name": definition.name,
        "mortar_key": definition.key,
        "mortar_forward": plan.forward,
    }
    if plan.from_nothing is not None:
        parameters["mortar_first"] = plan.from_nothing
    if plan.wrap_at is not None:
        parameters["mortar_wrap_at"] = plan.wrap_at
        parameters["mortar_backward"] = plan.backward
    if plan.limit is not None:
        parameters["mortar_limit"] = plan.limit
    return parameters


def _write(session: SessionLike, shape: _Shape, form: str, parameters: dict[str, Any]) -> Any:
    if isinstance(session, Connection):
        return session.execute(_bump(shape, form, False), parameters)
    statement = _bump(shape, form, observed(session))
    return session.execute(statement, parameters, bind_arguments=_ON_COUNTERS)


def _read(session: SessionLike, statement: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(session, Connection):
        return session.execute(statement, parameters)
    return session.execute(statement, parameters, bind_arguments=_ON_COUNTERS)


def _number(name: str) -> ColumnElement[int]:
    return sa.bindparam(name, type_=sa.BigInteger)


@cache  # at most 16 shapes
def _new_value(shape: _Shape) -> ColumnElement[Any]:
    value = _TABLE.c.value
    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    if shape.from_nothing:
        whens.append((value.is_(None), _number("mortar_first")))
    if shape.wraps:
        wrap_at = _number("mortar_wrap_at")
        reached = value >= wrap_at if shape.upward else value <= wrap_at
        whens.append((reached, value + _number("mortar_backward")))
    moved = value + _number("mortar_forward")
    return sa.case(*whens, else_=moved) if whens else moved


@cache
def _fits(shape: _Shape) -> ColumnElement[bool]:
    """The rows this call may move: any whose new value stays within 64 bits."""
    value = _TABLE.c.value
    allowed: list[ColumnElement[bool]] = [value.is_(None)] if shape.from_nothing else []
    if not shape.limited:
        allowed.append(value.is_not(None))
    else:
        limit = _number("mortar_limit")
        allowed.append(value <= limit if shape.upward else value >= limit)
    return sa.or_(*allowed)


@cache  # 16 shapes, 3 forms, Core or ORM-enabled
def _bump(shape: _Shape, form: str, orm: bool) -> Any:
    """The UPDATE that moves a counter: *form* "returning" returns the new value,
    "remembering" leaves it as the cursor's lastrowid (see dialects.Remembered)."""
    new_value = _new_value(shape)
    if form == "remembering":
        new_value = Remembered(new_value)
    target = Counter if orm else _TABLE
    statement = sa.update(target).where(_COUNTER, _fits(shape)).values(value=new_value)
    if form == "returning":
        statement = statement.returning(_VALUE)
    return statement.execution_options(synchronize_session=False) if orm else statement


_CURRENT = sa.select(_VALUE).where(_COUNTER)


def _counter_row(definition: Definition) -> dict[str, Any]:
    return {"name": definition.name, "key": definition.key, "value": None}


def _counter(definition: Definition) -> ColumnElement[bool]:
    return sa.and_(Counter.name == definition.name, Counter.key == definition.key)


def _which(definition: Definition) -> dict[str, Any]:
    return {"mortar_name": definition.name, "mortar_key": definition.key}


def _numbering(
    definition: Definition,
) -> Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[Any]]:
    """The SQL that numbers a row from the counter's new value (*last*) and the number of
    rows after it (*back*), as `handed_out` does in Python."""
    start, step = _literal(definition.start), _literal(definition.step)
    if definition.reset is None:
        return lambda last, back: last - back * step
    length = _literal(cycle_length(definition))

    def number(last: ColumnElement[Any], back: ColumnElement[Any]) -> ColumnElement[Any]:
        position = (last - start) // step - back
        wrapped = position % length  # negative below 0, as in C: brought back by one length
        return start + step * sa.case((wrapped < 0, wrapped + length), else_=wrapped)

    return number


def _literal(value: int) -> ColumnElement[int]:
    return sa.literal(value, sa.BigInteger)


def _contiguous(values: list[int], step: int) -> Sequence[int]:
    """Return *values* as a range where they follow each other by *step*."""
    candidate = range(values[0], values[-1] + step, step)
    return candidate if len(candidate) == len(values) else values


@dataclass(frozen=True)
class NativeSequence:
    """A database SEQUENCE object: fast, never blocks other transactions, not gapless.

    Runs on PostgreSQL, MariaDB 10.3 and later, and Oracle (compile-tested only); other
    databases raise `SequenceConfigError` at registration. Values are unique and
    increasing, but a rolled-back or cached value is never given back. *cache* is how
    many values each connection reserves at once (None: the database's default; 1 for a
    resetting sequence, whose cycle may be shorter than that default).
    """

    cache: int | None = None
    kind: ClassVar[str] = "native"

    def __post_init__(self) -> None:
        if self.cache is not None and (
            isinstance(self.cache, bool) or not isinstance(self.cache, int) or self.cache < 1
        ):
            raise SequenceConfigError(
                f"cache must be None or an integer of at least 1, not {self.cache!r}"
            )

    def check(self, dialect: Dialect) -> None:
        if not dialect.supports_sequences:
            raise SequenceConfigError(
                f"{dialect.name} has no SEQUENCE objects: use TableSequence (gapless) "
                "or PooledSequence (fast) there"
            )

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None:
        refuse_native_sequences(session, definition.name)
        _run_ddl(session, CreateSequence(self.sequence(definition), if_not_exists=True))
        if definition.key:
            # A template's counter: its row lists the key (its value stays unused).
            create_missing(session, Counter, _counter_row(definition), nowait=nowait)

    def next(self, session: SessionLike, definition: Definition) -> int:
        with _exhaustion(definition):
            return int(session.execute(_next_value(self, definition)).scalar_one())

    def next_many(self, session: SessionLike, definition: Definition, count: int) -> Sequence[int]:
        if count == 1:
            return [self.next(session, definition)]
        with _exhaustion(definition):
            # all() fetches in one go; iterating would fetch row by row (measured: 3x slower).
            # In the order the database handed them out: a cycle may wrap within them.
            values = list(session.execute(_next_values(self, definition, count)).scalars().all())
        if definition.reset is not None or definition.step < 0:
            return values
        return _contiguous(values, definition.step)

    def last(self, session: SessionLike, definition: Definition) -> int | None:
        """The database's current value: the last value taken or reserved by any connection's
        cache (exact with ``cache=1``); None before the first."""
        value = session.execute(CurrentValue(self.sequence(definition))).scalar_one_or_none()
        return None if value is None else int(value)

    def reached(self, session: SessionLike, definition: Definition) -> int | None:
        return self.last(session, definition)

    def restart(self, session: SessionLike, definition: Definition, value: int) -> None:
        """ALTER SEQUENCE ... RESTART in the caller's transaction where DDL is transactional
        (PostgreSQL: it waits for transactions that used the sequence and blocks others
        until the caller's ends). Elsewhere (MariaDB) a move forward is a SETVAL on the
        caller's connection, and a move back an ALTER SEQUENCE committed apart at once,
        which waits a few seconds at most for the transactions that used the sequence
        (the caller's own included): `SequenceLocked` then."""
        sequence = self.sequence(definition)
        if caches_per_connection(dialect_of(session)) and (sequence.cache or 1) > 1:
            # Values other connections cached stay theirs (PostgreSQL): only forward is safe.
            refuse_behind(
                definition,
                value,
                self.reached(session, definition),
                "other connections may still hold cached values up to it",
            )
        if ddl_is_transactional(dialect_of(session)):
            _run_ddl(session, RestartSequence(sequence, value))
        else:
            _restart_apart(session, definition, sequence, value)

    def delete(self, session: SessionLike, definition: Definition) -> None:
        _run_ddl(session, DropSequence(self.sequence(definition), if_exists=True))

    def sequence(self, definition: Definition) -> sa.Sequence:
        """Return the database SEQUENCE that holds *definition*'s values."""
        return _database_sequence(self, definition)

    def insert(
        self, session: SessionLike, definition: Definition, into: Target, row: dict[str, Any]
    ) -> int:
        """Insert *row* numbered with the sequence's next value: one statement (``nextval``
        inside the INSERT) where INSERT ... RETURNING exists, else two."""
        if not dialect_of(session).insert_returning:
            number = self.next(session, definition)
            into.insert(session, [row], [number])
            return number
        statement = _native_insert(self, definition, into)
        if observed(session):
            statement = seen(statement)
        with _exhaustion(definition):
            return int(into.execute(session, statement, row).scalar_one())


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _next_value(strategy: NativeSequence, definition: Definition) -> Any:
    return sa.select(strategy.sequence(definition).next_value())


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _next_values(strategy: NativeSequence, definition: Definition, count: int) -> NextValues:
    return NextValues(strategy.sequence(definition), count)


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _native_insert(strategy: NativeSequence, definition: Definition, into: Target) -> Any:
    number = strategy.sequence(definition).next_value()
    insert = sa.insert(into.table).values({into.column: number})
    return insert.returning(into.table.c[into.column].label("value"))


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _database_sequence(strategy: NativeSequence, definition: Definition) -> sa.Sequence:
    step, cycle = definition.step, definition.reset is not None
    low, high = (definition.start, None) if step > 0 else (None, definition.start)
    if cycle:
        last = definition.start + step * (cycle_length(definition) - 1)
        low, high = (definition.start, last) if step > 0 else (last, definition.start)
    cache = strategy.cache if strategy.cache is not None or not cycle else 1
    return sa.Sequence(
        native_name(definition.name, definition.key),
        start=definition.start,
        increment=step,
        minvalue=low,
        maxvalue=high,
        cycle=cycle or None,  # None leaves out NO CYCLE, the default everywhere
        cache=cache,
    )


def native_name(name: str, key: str = "") -> str:
    """Return the name of the database SEQUENCE behind sequence *name* (a template's: and *key*).

    A readable part and a digest of the whole name: never more than 30 characters of
    ``[a-z0-9_]``, so any name is safe on every database, and distinct names stay distinct.

    >>> native_name("Invoice 2026/A")
    'mseq_invoice_2026_a_2a32b2eee1'
    """
    readable = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:14].strip("_")
    whole = name if not key else f"{name}\x00{key}"  # NUL is in neither
    digest = hashlib.sha256(whole.encode("utf-8")).hexdigest()[:10]
    return f"mseq_{readable}_{digest}" if readable else f"mseq_{digest}"


def _run_ddl(session: SessionLike, ddl: ExecutableDDLElement) -> None:
    """Run *ddl* in the caller's transaction where DDL is transactional, else apart."""
    if ddl_is_transactional(dialect_of(session)):
        connection_of(session).execute(ddl)
        return
    with side_engine(engine_of(session)).begin() as connection:
        connection.execute(ddl)


@contextmanager
def _exhaustion(definition: Definition) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if is_sequence_exhausted(exc):
            raise SequenceExhausted(f"{definition.name!r} reached its limit") from exc
        raise


@dataclass(frozen=True)
class PooledSequence:
    """Blocks of values reserved in a short transaction of their own, handed out from memory.

    Unique across processes, not gapless, not ordered across processes: values increase
    within a process, and values a process reserved but did not hand out (at exit, or
    taken by a transaction that rolled back) are never handed out again. About one
    reservation per *block* values; thread-safe, and a child process after ``fork()``
    never reuses its parent's block. Runs on every database.
    """

    block: int = 1000
    kind: ClassVar[str] = "pooled"

    def __post_init__(self) -> None:
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1:
            raise SequenceConfigError(f"block must be an integer of at least 1, not {self.block!r}")

    def check(self, dialect: Dialect) -> None:
        """Every SQLAlchemy database can hold the counter row behind the blocks."""

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None:
        # Committed at once: blocks are reserved on other connections, which must see it.
        apart = not _holds_sqlite_write_lock(session)
        create_missing(session, Counter, _counter_row(definition), nowait=nowait, apart=apart)

    def next(self, session: SessionLike, definition: Definition) -> int:
        pool = pool_for(engine_of(session), definition.name, definition.key)
        return pool.take_one(lambda missing: self._reserve(session, definition, missing))

    def next_many(self, session: SessionLike, definition: Definition, count: int) -> Sequence[int]:
        pool = pool_for(engine_of(session), definition.name, definition.key)
        values = pool.take(count, lambda missing: self._reserve(session, definition, missing))
        return _contiguous(values, definition.step) if definition.reset is None else values

    def last(self, session: SessionLike, definition: Definition) -> int | None:
        return pool_for(engine_of(session), definition.name, definition.key).last

    def reached(self, session: SessionLike, definition: Definition) -> int | None:
        return TableSequence().last(session, definition)  # the end of the last reserved block

    def restart(self, session: SessionLike, definition: Definition, value: int) -> None:
        """Move forward only, beyond every block reserved: processes still hand out what they
        hold (all of it before *value*), and every block reserved from now on starts at
        *value* or beyond, so no value is handed out twice. This process's blocks are
        dropped: its next value is *value*."""
        if definition.reset is not None:
            raise SequenceConfigError(
                f"{definition.name!r} is pooled and resets: processes may still hand out "
                "reserved values anywhere in its cycle, so it cannot be restarted"
            )
        found, reached = hold_counter(session, definition)
        if not found:
            raise UnknownSequence(definition.name, " in this database")
        refuse_behind(
            definition, value, reached, "processes may still hand out reserved values up to it"
        )
        restart_counter(session, definition, value)
        drop(engine_of(session), definition.name)

    def delete(self, session: SessionLike, definition: Definition) -> None:
        drop(engine_of(session), definition.name)

    def _reserve(self, session: SessionLike, definition: Definition, missing: int) -> Sequence[int]:
        counter = TableSequence()
        if _holds_sqlite_write_lock(session) or deleted_here(session, definition.name):
            # Another connection would wait for the caller's locks forever: take just
            # what is missing in the caller's transaction (a rollback gives it back).
            return counter.next_many(session, definition, missing)
        wanted = max(self.block, missing)

        def reserve() -> Sequence[int]:
            with side_engine(engine_of(session)).connect() as connection:
                with briefly(connection, definition.name):
                    reserved = counter.next_many(connection, definition, wanted)
                connection.commit()
            return reserved

        try:
            # Run again after a write conflict (Galera nodes reserving at once): rolled back.
            return retrying(reserve)
        except SequenceLocked:
            # Its row is locked longer than a reservation takes: perhaps by the caller's own
            # transaction, which created it there. Wait for it there, as any caller would.
            return counter.next_many(session, definition, missing)


def _holds_sqlite_write_lock(session: SessionLike) -> bool:
    # pysqlite opens a transaction only before a write: an open one holds the write lock.
    if dialect_of(session).name != "sqlite":
        return False
    driver_connection = connection_of(session).connection.driver_connection
    return bool(getattr(driver_connection, "in_transaction", False))


_STRATEGIES: dict[str, type[Any]] = {
    TableSequence.kind: TableSequence,
    NativeSequence.kind: NativeSequence,
    PooledSequence.kind: PooledSequence,
}


def strategy_for(impl: object) -> SequenceStrategy:
    """Return the strategy *impl* names: None (the default), a strategy class or an instance."""
    if impl is None:
        return TableSequence()
    if isinstance(impl, type) and impl in _STRATEGIES.values():
        return cast(SequenceStrategy, impl())
    if type(impl) in _STRATEGIES.values():
        return cast(SequenceStrategy, impl)
    known = ", ".join(cls.__name__ for cls in _STRATEGIES.values())
    raise SequenceConfigError(f"impl must be one of {known} (a class or an instance), not {impl!r}")


def stored_strategy(kind: str, options: dict[str, Any]) -> SequenceStrategy:
    """Rebuild the strategy stored as *kind* with *options*."""
    cls = _STRATEGIES.get(kind)
    if cls is None:
        raise SequenceConfigError(f"this version of mortar_seq does not know the {kind!r} kind")
    return cast(SequenceStrategy, cls(**options))


def strategy_options(strategy: SequenceStrategy) -> dict[str, Any]:
    """Return the options stored with a strategy (its dataclass fields)."""
    return dataclasses.asdict(cast(Any, strategy))


def restart_counter(session: SessionLike, definition: Definition, value: int) -> bool:
    """Store what makes *value* the next value of a counter row; tell whether the row exists.

    The row stores the value before *value*, or NULL (nothing handed out) for *start*:
    ``value - step`` always fits in 64 bits for a value of the series beyond its start.
    """
    before = None if value == definition.start else value - definition.step
    update = (
        sa.update(Counter)
        .where(_counter(definition))
        .values(value=sa.literal(before, sa.BigInteger) if before is not None else None)
        .execution_options(synchronize_session=False)
    )
    return bool(cast("CursorResult[Any]", session.execute(update)).rowcount)


def hold_counter(session: SessionLike, definition: Definition) -> tuple[bool, int | None]:
    """Lock a counter row as `next` does; tell whether it exists, and its latest value.

    A write that changes nothing takes the lock (on SQLite, the database's write lock);
    then a locking read gives the latest value, where a plain read would give a
    REPEATABLE READ snapshot's (MariaDB: a write that changes nothing leaves it as it was).
    """
    update = (
        sa.update(Counter)
        .where(_counter(definition))
        .values(value=Counter.value)
        .execution_options(synchronize_session=False)
    )
    if not cast("CursorResult[Any]", session.execute(update)).rowcount:
        return False, None
    locked = _read(session, _CURRENT.with_for_update(), _which(definition))
    return True, locked.scalar_one_or_none()


def refuse_behind(definition: Definition, value: int, reached: int | None, why: str) -> None:
    """Raise `SequenceConfigError` unless *value* lies beyond *reached* (None: nothing reached)."""
    if reached is not None and (value - reached) * definition.step <= 0:
        raise SequenceConfigError(
            f"{definition.name!r} can only move forward, beyond {reached} ({why}); got {value}"
        )


# How long an ALTER SEQUENCE committed apart waits for the transactions that used the
# sequence (MariaDB's metadata locks): the caller's own would never end while it waits.
_APART_DDL_WAIT_SECONDS = 5


def _restart_apart(
    session: SessionLike,
    definition: Definition,
    sequence: sa.Sequence,
    value: int,
) -> None:
    # Apart, so that the caller's transaction holds no metadata lock on the sequence that the
    # ALTER below would wait for. Forward: SETVAL, which takes effect at once (as NEXTVAL
    # does) without DDL; it answers NULL where it would move back, leaving the sequence be.
    try:
        with side_engine(engine_of(session)).connect() as connection:
            moved = connection.execute(SetSequenceValue(sequence, value)).scalar()
            connection.commit()
            if moved is not None:
                return
            previous = ddl_lock_wait(connection, _APART_DDL_WAIT_SECONDS)
            try:
                connection.execute(RestartSequence(sequence, value))
            finally:
                ddl_lock_wait(connection, previous)
            connection.commit()
    except DBAPIError as exc:
        if is_lock_timeout(exc):
            raise SequenceLocked(
                f"{definition.name!r}: moving a native sequence back is an ALTER SEQUENCE "
                "here, which waits for every transaction that used the sequence; restart it "
                "from a transaction that has not used it"
            ) from exc
        raise
