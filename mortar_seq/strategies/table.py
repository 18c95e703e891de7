"""`TableSequence`: a counter row per sequence, gapless; the counter statements others share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, ClassVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.sql.elements import ColumnElement

from ..arithmetic import Advance, advance, cycle_length, handed_out
from ..db.binding import SessionLike, autoflush, dialect_of
from ..db.dialects import (
    Remembered,
    modifies_in_cte,
    remembered_value,
    remembers_written_value,
)
from ..definition import Definition
from ..errors import SequenceConfigError, SequenceExhausted, UnknownSequence
from ..model import Counter
from ..storage import create_missing
from .numbered_statements import (
    insert_many_numbered_by,
    insert_numbered_by,
    many_rows_parameters,
    number_rows_by,
    numbered_rows_parameters,
    row_parameters,
    travel_as_arrays,
)
from .targets import Target, observed

_STATEMENTS_KEPT = 512  # numbering statements, per counter shape, tables and settings


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
    counts_in_rows: ClassVar[bool] = True
    gapless: ClassVar[bool] = True

    def check(self, dialect: Dialect, definition: Definition) -> None:
        """Every SQLAlchemy database can hold a counter row, with any settings."""

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None:
        create_missing(session, Counter, _counter_row(definition), nowait=nowait)

    def next(self, session: SessionLike, definition: Definition) -> int:
        # The hot path: one value, whose statement and numbers depend on the definition only.
        shape, parameters = _taking_one(definition)
        last = _move(session, shape, parameters)
        if last is None:
            raise self._refusal(session, definition, 1)
        return last  # the one value handed out

    def next_many(self, session: SessionLike, definition: Definition, count: int) -> Sequence[int]:
        plan = advance(definition, count)
        last = _move(session, _shape(plan, definition.step), _parameters(definition, plan))
        if last is None:
            raise self._refusal(session, definition, count)
        return handed_out(definition, last, count)

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

        One statement where the database updates inside WITH (PostgreSQL) and the row goes
        to the counters' database, else two: also on a Session with ORM hooks
        (zope.sqlalchemy), which see no write inside WITH.
        """
        apart = observed(session) or not _in_one_statement(session, into)
        if apart or (defaults := into.defaults(row)) is None:
            number = self.next(session, definition)
            into.insert(session, [row], [number])
            return number
        shape, taking = _taking_one(definition)
        filled = {**defaults.values, **row}
        keys = tuple(filled)
        statement = insert_numbered_by(_bump(shape, "returning", False), into, keys)
        parameters = {**taking, **row_parameters(filled, keys)}
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
        where a column's type cannot be passed as an array of one value per row (arrays,
        types bound through SQL: `travel_as_arrays`), where a Session binds the table to
        another database than the counters, and on a Session with ORM hooks
        (zope.sqlalchemy), which see the counter's write.
        """
        count = len(rows)
        apart = observed(session) or not _in_one_statement(session, into)
        if apart or (defaults := into.defaults(rows[0])) is None:
            return self._insert_apart(session, definition, into, rows)
        keys = tuple({**defaults.values, **rows[0]})
        if not travel_as_arrays(into, keys):
            return self._insert_apart(session, definition, into, rows)
        filled = [{**defaults.values, **row} for row in rows]
        plan = advance(definition, count)
        bump = _bump(_shape(plan, definition.step), "returning", False)
        statement = insert_many_numbered_by(bump, into, keys, _numbering(definition))
        parameters = {**_parameters(definition, plan), **many_rows_parameters(filled, keys)}
        last = into.execute(session, statement, parameters).scalar_one_or_none()
        if last is None:
            raise self._refusal(session, definition, count)
        return handed_out(definition, last, count)

    def number_rows(
        self,
        session: SessionLike,
        definition: Definition,
        rows: list[tuple[Target, tuple[Any, ...]]],
        render: Callable[[ColumnElement[Any]], ColumnElement[Any]] | None = None,
    ) -> tuple[Sequence[int], int] | None:
        """Take len(*rows*) values and write them into *rows* (already inserted, each a
        target and a primary key), in list order; return them and how many rows were found.
        With *render*, write ``render(value)`` (a template's identifier) instead.

        One statement where the database updates inside WITH (PostgreSQL), every table goes
        to the counters' database and its primary key can be passed as arrays; else None,
        and the caller takes `next_many`, then writes.
        """
        if not modifies_in_cte(dialect_of(session)):
            return None
        targets = tuple(dict.fromkeys(into for into, _ in rows)) if rows[1:] else (rows[0][0],)
        for into in targets:
            if not (into.with_counters(session) and _keys_travel_as_arrays(into)):
                return None
        count = len(rows)
        plan = advance(definition, count)
        bump = _bump(_shape(plan, definition.step), "returning", False)
        number = _numbering(definition)
        if render is not None:
            number = _rendered(render, number)
        # Built once per shape (cached, as the functions it is given): the same statement
        # object each commit, whose cache key SQLAlchemy computes once.
        statement = number_rows_by(bump, targets, number, count == 1)
        parameters = {**_parameters(definition, plan), **numbered_rows_parameters(targets, rows)}
        taken = targets[0].execute(session, statement, parameters).one_or_none()
        if taken is None:
            raise self._refusal(session, definition, count)
        return handed_out(definition, taken[0], count), int(taken[1])

    def _insert_apart(
        self, session: SessionLike, definition: Definition, into: Target, rows: list[dict[str, Any]]
    ) -> Sequence[int]:
        """Take the rows' numbers, then insert them: two statements."""
        numbers = self.next_many(session, definition, len(rows))
        into.insert(session, rows, numbers)
        return numbers


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


def _in_one_statement(session: SessionLike, into: Target) -> bool:
    """Tell whether one statement can take a value and insert a row: the database updates
    inside WITH (PostgreSQL), and the row goes to the counters' database."""
    return modifies_in_cte(dialect_of(session)) and into.with_counters(session)


@lru_cache(maxsize=4096)  # a counter in use each: as many as a process keeps of templates'
def _taking_one(definition: Definition) -> tuple[_Shape, dict[str, Any]]:
    """The shape and parameters of taking one value (shared: never changed)."""
    plan = advance(definition, 1)
    return _shape(plan, definition.step), _parameters(definition, plan)


def _move(session: SessionLike, shape: _Shape, parameters: dict[str, Any]) -> int | None:
    """Move a counter as *shape* and *parameters* say; return its new value, None if it did
    not move (no such row, or it would leave 64 bits)."""
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
    which = {"mortar_name": parameters["mortar_name"], "mortar_key": parameters["mortar_key"]}
    return cast("int", _read(session, _CURRENT, which).scalar_one())


def _write(session: SessionLike, shape: _Shape, form: str, parameters: dict[str, Any]) -> Any:
    if isinstance(session, Connection):
        return session.execute(_bump(shape, form, False), parameters)
    autoflush(session)
    statement = _bump(shape, form, observed(session))
    return session.execute(statement, parameters, bind_arguments=_ON_COUNTERS)


def _read(session: SessionLike, statement: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(session, Connection):
        return session.execute(statement, parameters)
    autoflush(session)
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


_Numbering = Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[Any]]


def _numbering(definition: Definition) -> _Numbering:
    """The SQL that numbers a row from the counter's new value (*last*) and the number of
    rows after it (*back*), as `handed_out` does in Python: the same function for the same
    settings, so that the statements built from it are cached."""
    length = None if definition.reset is None else cycle_length(definition)
    return _numbering_by(definition.start, definition.step, length)


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _numbering_by(start_value: int, step_value: int, length_value: int | None) -> _Numbering:
    start, step = _literal(start_value), _literal(step_value)
    if length_value is None:
        return lambda last, back: last - back * step
    length = _literal(length_value)

    def number(last: ColumnElement[Any], back: ColumnElement[Any]) -> ColumnElement[Any]:
        position = (last - start) // step - back
        wrapped = position % length  # negative below 0, as in C: brought back by one length
        return start + step * sa.case((wrapped < 0, wrapped + length), else_=wrapped)

    return number


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _rendered(
    render: Callable[[ColumnElement[Any]], ColumnElement[Any]], number: _Numbering
) -> _Numbering:
    """*number*, written as *render* says (a template's identifier)."""
    return lambda last, back: render(number(last, back))


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _keys_travel_as_arrays(into: Target) -> bool:
    keys = tuple(column.key for column in into.table.primary_key.columns)
    return travel_as_arrays(into, keys)


def _literal(value: int) -> ColumnElement[int]:
    return sa.literal(value, sa.BigInteger)


def _contiguous(values: list[int], step: int) -> Sequence[int]:
    """Return *values* as a range where they follow each other by *step*."""
    candidate = range(values[0], values[-1] + step, step)
    return candidate if len(candidate) == len(values) else values


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


def read_counter(session: SessionLike, definition: Definition) -> tuple[bool, int | None]:
    """Tell whether a counter row exists, and its value, with a plain read and no lock: for
    plans that change nothing (a dry run)."""
    found = _read(session, _CURRENT, _which(definition)).one_or_none()
    return (False, None) if found is None else (True, found[0])


def refuse_behind(definition: Definition, value: int, reached: int | None, why: str) -> None:
    """Raise `SequenceConfigError` unless *value* lies beyond *reached* (None: nothing reached)."""
    if reached is not None and (value - reached) * definition.step <= 0:
        raise SequenceConfigError(
            f"{definition.name!r} can only move forward, beyond {reached} ({why}); got {value}"
        )
