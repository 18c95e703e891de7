"""Column defaults at flush: the number of each row an INSERT writes, in its transaction."""

from __future__ import annotations

import collections.abc as abc
import threading
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ..db.binding import SQLALCHEMY_2_0
from ..errors import SequenceConfigError

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
    in the order of its rows, for each column the default numbers.
    """
    refuse_from_select(context)
    rows = len(getattr(context, "compiled_parameters", None) or ()) or 1
    try:
        if rows == 1:
            return take_one(context.connection)
        batch_key = (owner, getattr(context, "current_column", None))
        with _lock:
            batch = _batches.setdefault(context, {}).get(batch_key)
        if batch is None:
            batch = iter(take(context.connection, rows))
            with _lock:
                _batches[context][batch_key] = batch
        return next(batch)
    except DBAPIError as error:
        if not SQLALCHEMY_2_0 or error.orig is None:
            raise
        # SQLAlchemy 2.0 hands a DBAPIError raised in a default on as a StatementError,
        # which zope.sqlalchemy never retries (2.1 passes it through): raised as the
        # driver's own error, it comes out as the INSERT's DBAPIError.
        raise error.orig from error


def refuse_from_select(context: Any) -> None:
    """Raise `SequenceConfigError` for an INSERT ... FROM SELECT: SQLAlchemy runs a column
    default once for all its rows, which would all get the same number."""
    statement = getattr(getattr(context, "compiled", None), "statement", None)
    if getattr(statement, "select", None) is not None:
        raise SequenceConfigError(
            "a column default numbers rows inserted with their values; INSERT ... FROM "
            "SELECT runs it once for all its rows (one number for all): number such rows "
            "with seq.insert_many, or insert the number column from the SELECT"
        )


def row_keywords(context: Any) -> dict[str, Any]:
    """Return the values of the row *context* is inserting, keyed by column.

    A column whose scalar default SQLAlchemy has not yet applied (it comes after this one
    in the table) counts with that default, as the row will be stored.
    """
    row = dict(context.get_current_parameters())
    row.pop("nowait", None)  # a template's flag, never one of its keywords
    pending = getattr(context.compiled, "insert_prefetch", ())
    for column in pending:
        default = column.default
        if row.get(column.key) is None and default is not None and default.is_scalar:
            row[column.key] = default.arg
    return row


def scalar_defaults(table: Any, row: abc.Mapping[str, Any]) -> dict[str, Any]:
    """Return the scalar defaults of *table*'s columns that *row* leaves out, keyed by
    column: the values the row will be stored with, as a template's keywords read them."""
    return {
        column.key: column.default.arg
        for column in table.c
        if row.get(column.key) is None and column.default is not None and column.default.is_scalar
    }
