"""Numbering rows as they are written: the table a row goes to, and its insert."""

from __future__ import annotations

import collections.abc as abc
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, Session

from ..db.binding import SessionLike, autoflush
from ..model import Counter

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
    # What the ORM writes into every new row of the class unless given: its polymorphic
    # identity (single-table inheritance) and its first version id (version_id_col).
    written: tuple[tuple[str, abc.Callable[[], Any]], ...] = ()

    def row(self, values: abc.Mapping[str, Any]) -> dict[str, Any]:
        """Return *values* keyed by column (a mapped class's attribute names are translated)."""
        if not isinstance(values, abc.Mapping):
            raise TypeError(
                f"values must be a mapping of column names, not {type(values).__name__}"
            )
        row = {self._key(name): value for name, value in values.items()}
        if self.column in row:
            raise TypeError(f"values must not hold {self.column!r}: it receives the number")
        for key, make in self.written:
            if key not in row:
                row[key] = make()
        return row

    def rows(self, rows: abc.Iterable[abc.Mapping[str, Any]]) -> list[dict[str, Any]]:
        if isinstance(rows, abc.Mapping) or not isinstance(rows, abc.Iterable):
            raise TypeError(
                f"rows must be a list of mappings, one per row, not {type(rows).__name__}"
            )
        listed = [self.row(values) for values in rows]
        if any(row.keys() != listed[0].keys() for row in listed):
            raise TypeError("every row must name the same columns")
        return listed

    def defaults(self, keys: abc.Iterable[str]) -> Defaults | None:
        """The Python-side defaults of the columns left out of *keys*, for an INSERT ... SELECT
        (which SQLAlchemy fills only once per statement); None where one is a function that
        must run per row (the INSERT then goes apart, as SQLAlchemy runs it)."""
        return _defaults(self, frozenset(keys))

    def _key(self, name: object) -> str:
        if not isinstance(name, str):
            raise TypeError(f"values must be keyed by column names, not {name!r}")
        if self.mapper is not None and name in self.mapper.column_attrs:
            column = self.mapper.column_attrs[name].columns[0]
            if not (isinstance(column, sa.Column) and column.table is self.table):
                raise TypeError(
                    f"{name!r} is not a column of {self.table.name!r} (an SQL expression)"
                )
            return str(column.key)
        if name not in self.table.c:
            raise TypeError(f"{self.table.name!r} has no column {name!r}")
        return name

    def execute(self, session: SessionLike, statement: Any, parameters: Any) -> Any:
        """Run *statement* on the target's bind in the caller's transaction."""
        if isinstance(session, Connection):
            return session.execute(statement, parameters)
        autoflush(session)
        return session.execute(statement, parameters, bind_arguments=self._bound(statement))

    def with_counters(self, session: SessionLike) -> bool:
        """Tell whether the rows go where the counters are (one statement can write both):
        a Session may bind tables to several databases."""
        if isinstance(session, Connection):
            return True
        return session.get_bind(**self._bound(self.table)) is session.get_bind(Counter)

    def _bound(self, clause: Any) -> dict[str, Any]:
        return {"mapper": self.mapper} if self.mapper is not None else {"clause": clause}

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
    if mapper.persist_selectable is not mapper.local_table:
        raise TypeError(
            f"{mapper.class_.__name__} is written to several tables (joined inheritance), "
            "and insert writes one: number it with a column default (seq.default)"
        )
    found = Target(mapper.local_table, column, mapper, _written_by_orm(mapper))
    return Target(found.table, found._key(column), mapper, found.written)


def _written_by_orm(mapper: Mapper[Any]) -> tuple[tuple[str, abc.Callable[[], Any]], ...]:
    written: list[tuple[str, abc.Callable[[], Any]]] = []
    identity, discriminator = mapper.polymorphic_identity, mapper.polymorphic_on
    if identity is not None and isinstance(discriminator, sa.Column):
        written.append((discriminator.key, lambda: identity))
    version, generate = mapper.version_id_col, mapper.version_id_generator
    if version is not None and generate is not False and callable(generate):
        written.append((str(version.key), lambda: generate(None)))
    return tuple(written)


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
        elif default.is_sequence and not cast(Any, default).optional:
            # (An optional one is left to the server: SERIAL on PostgreSQL.)
            expressions[column.key] = cast(Any, default).next_value()
        elif default.is_clause_element:
            expressions[column.key] = cast(Any, default).arg
    return Defaults(values, tuple(expressions.items()))


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _insert(table: sa.Table) -> Any:
    return sa.insert(table)


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
