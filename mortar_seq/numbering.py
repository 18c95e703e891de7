"""Numbering rows as they are written: the table a row goes to, its insert, column defaults."""

from __future__ import annotations

import collections.abc as abc
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, Session

from .binding import SessionLike
from .model import Counter

_STATEMENTS_KEPT = 512  # per table and set of columns


@dataclass(frozen=True)
class Defaults:
    """The Python-side defaults an INSERT ... SELECT must be given: scalars and SQL."""

    values: dict[str, Any]  # scalars, bound like the row's own values (shared: never changed)
    expressions: tuple[tuple[str, Any], ...]  # SQL expressions and sequences, rendered


@dataclass(frozen=True)
class Target:
    """Where numbered rows go: a table, the column that takes the number, and its mapper."""

    table: sa.Table
    column: str  # the column's key in table.c
    mapper: Mapper[Any] | None

    def row(self, values: abc.Mapping[str, Any]) -> dict[str, Any]:
        """Return *values* keyed by column (a mapped class's attribute names are translated)."""
        if not isinstance(values, abc.Mapping):
            raise TypeError(
                f"values must be a mapping of column names, not {type(values).__name__}"
            )
        row = {self._key(name): value for name, value in values.items()}
        if self.column in row:
            raise TypeError(f"values must not hold {self.column!r}: it receives the number")
        return row

    def rows(self, rows: abc.Iterable[abc.Mapping[str, Any]]) -> list[dict[str, Any]]:
        if isinstance(rows, abc.Mapping):
            raise TypeError("rows must be a list of mappings, one per row")
        listed = [self.row(values) for values in rows]
        if any(row.keys() != listed[0].keys() for row in listed):
            raise TypeError("every row must name the same columns")
        return listed

    def defaults(self, keys: abc.Iterable[str]) -> Defaults | None:
        """The Python-side defaults of the columns left out of *keys*, for an INSERT ... SELECT
        (which SQLAlchemy fills only once per statement); None where one is a function that
        must run per row (the INSERT then goes apart, as SQLAlchemy runs it)."""
        return _defaults(self, frozenset(keys))

    def _key(self, name: str) -> str:
        if self.mapper is not None and name in self.mapper.column_attrs:
            return str(self.mapper.column_attrs[name].columns[0].key)
        if name not in self.table.c:
            raise TypeError(f"{self.table.name!r} has no column {name!r}")
        return name

    def execute(self, session: SessionLike, statement: Any, parameters: Any) -> Any:
        """Run *statement* on the target's bind in the caller's transaction."""
        if isinstance(session, Connection):
            return session.execute(statement, parameters)
        bound = {"mapper": self.mapper} if self.mapper is not None else {"clause": statement}
        return session.execute(statement, parameters, bind_arguments=bound)

    def insert(
        self, session: SessionLike, rows: list[dict[str, Any]], numbers: abc.Iterable[Any]
    ) -> None:
        """Insert *rows*, each with its number: one statement (an executemany for several).

        On a Session with ORM hooks (zope.sqlalchemy) the first row goes in ORM-enabled, on
        its own, so that they see the transaction write.
        """
        numbered = [{**row, self.column: number} for row, number in zip(rows, numbers, strict=True)]
        if observed(session):
            returned = self.table.c[self.column].label("value")
            self.execute(session, seen(_insert(self.table).returning(returned)), numbered[0])
            numbered = numbered[1:]
            if not numbered:
                return
        self.execute(session, _insert(self.table), numbered if len(numbered) > 1 else numbered[0])


def target(table: object, column: object) -> Target:
    """Return the `Target` for a `Table` or a mapped class and the name of its numbered column."""
    if not isinstance(column, str):
        raise TypeError(f"column must be a column name, not {column!r}")
    try:
        return _target(table, column)
    except TypeError:
        if isinstance(table, abc.Hashable):
            raise
        raise TypeError(f"table must be a Table or a mapped class, not {table!r}") from None


@lru_cache(maxsize=_STATEMENTS_KEPT)  # found once per table (or class) and column
def _target(table: object, column: str) -> Target:
    if isinstance(table, sa.Table):
        if column not in table.c:
            raise TypeError(f"{table.name!r} has no column {column!r}")
        return Target(table, column, None)
    mapper = sa.inspect(table, raiseerr=False)
    if not isinstance(mapper, Mapper) or not isinstance(mapper.local_table, sa.Table):
        raise TypeError(f"table must be a Table or a mapped class, not {table!r}")
    found = Target(mapper.local_table, column, mapper)
    return Target(found.table, found._key(column), mapper)


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _defaults(into: Target, keys: frozenset[str]) -> Defaults | None:
    given = {*keys, into.column}
    values: dict[str, Any] = {}
    expressions: dict[str, Any] = {}
    for column in into.table.c:
        default = column.default
        if column.key in given or default is None:
            continue
        if default.is_callable:
            return None
        if default.is_scalar:
            values[column.key] = cast(Any, default).arg
        elif default.is_sequence:
            expressions[column.key] = cast(Any, default).next_value()
        elif default.is_clause_element:
            expressions[column.key] = cast(Any, default).arg
    return Defaults(values, tuple(expressions.items()))


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _insert(table: sa.Table) -> Any:
    return sa.insert(table)


# -- column defaults: numbers taken at flush, in the flush's transaction -------------------

_lock = threading.Lock()
# The numbers taken at once for a multi-row INSERT, per execution and default.
_batches: WeakKeyDictionary[Any, dict[object, abc.Iterator[Any]]] = WeakKeyDictionary()


def numbered_row(
    context: Any,
    owner: object,
    take_one: abc.Callable[[Connection], Any],
    take: abc.Callable[[Connection, int], abc.Sequence[Any]],
) -> Any:
    """Return the number of the row *context* is inserting: *take_one(connection)* for a
    single row, else from *take(connection, count)*.

    An INSERT of many rows (a bulk flush) takes all its numbers in one call, handed out
    in the order of its rows.
    """
    rows = len(getattr(context, "compiled_parameters", None) or ()) or 1
    if rows == 1:
        return take_one(context.connection)
    with _lock:
        batch = _batches.setdefault(context, {}).get(owner)
    if batch is None:
        batch = iter(take(context.connection, rows))
        with _lock:
            _batches[context][owner] = batch
    return next(batch)


def row_keywords(context: Any) -> dict[str, Any]:
    """Return the values of the row *context* is inserting, keyed by column."""
    row = dict(context.get_current_parameters())
    row.pop("nowait", None)  # a template's flag, never one of its keywords
    return row


def observed(session: SessionLike) -> bool:
    """Tell whether *session* has hooks that only see ORM-enabled writes (zope.sqlalchemy)."""
    if isinstance(session, Connection):
        return False
    if not isinstance(session, Session):
        return True  # a scoped_session: take the safe path
    return bool(session.dispatch.do_orm_execute or session.dispatch.after_bulk_update)


def seen(statement: Any) -> Any:
    """Wrap *statement* (DML returning one column labelled ``value``) so that a Session's
    ORM hooks (zope.sqlalchemy) see the write: ``select(...).from_statement(...)``."""
    return sa.select(Counter.value).from_statement(statement)
