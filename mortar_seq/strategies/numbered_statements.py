"""The statements that number rows in one round trip: an INSERT ... SELECT from the counter's
UPDATE inside WITH (PostgreSQL), for one row or for many passed as one array per column."""

from __future__ import annotations

import collections.abc as abc
import re
import string
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..patterns.pattern import around_counter
from .targets import Target

_STATEMENTS_KEPT = 512  # per table, set of columns and counter shape
_COUNTER_SPEC = re.compile(r"(?:0([1-9][0-9]*))?d?")  # {counter}, {counter:d}, {counter:05d}

# Column types whose values travel safely as elements of a one-dimensional array, one per
# row: each value is bound on its own (dimensions=1), so a JSON list or dict stays one
# element. Others (arrays, types rendered through SQL such as geometries, types this list
# does not know) are inserted by a statement of their own, row by row as SQLAlchemy does.
_ARRAY_ELEMENTS = (
    sa.Integer,
    sa.Numeric,
    sa.Float,
    sa.String,
    sa.Boolean,
    sa.Date,
    sa.DateTime,
    sa.Time,
    sa.Interval,
    sa.LargeBinary,
    sa.Uuid,
    sa.JSON,
)


@lru_cache(maxsize=_STATEMENTS_KEPT)
def insert_numbered_by(bump: Any, into: Target, keys: tuple[str, ...]) -> Any:
    """INSERT one row whose number comes from *bump* (an UPDATE ... RETURNING value), in one
    statement that returns the number: ``WITH taken AS (UPDATE ...), inserted AS (INSERT
    INTO t (..., column) SELECT ..., value FROM taken) SELECT value FROM taken``. No counter
    row moved: no row inserted, nothing returned.

    The number comes from the counter, not from the inserted row: a BEFORE INSERT trigger
    that sends the row elsewhere (a partitioning trigger, RETURN NULL) leaves the INSERT
    nothing to return, and the row stored all the same.

    The row's values are bound as ``mortar_row_0``, ``mortar_row_1``, ... in *keys* order.
    """
    taken = bump.cte("mortar_taken")
    table = into.table
    values = [
        sa.bindparam(f"mortar_row_{i}", type_=table.c[key].type) for i, key in enumerate(keys)
    ]
    expressions = expressions_for(into, keys)
    chosen = sa.select(*values, *[expression for _, expression in expressions], taken.c.value)
    names = [*keys, *[key for key, _ in expressions], into.column]
    insert = sa.insert(table).from_select(names, chosen, include_defaults=False)
    return sa.select(taken.c.value).add_cte(insert.cte("mortar_inserted"))


@lru_cache(maxsize=_STATEMENTS_KEPT)
def expressions_for(into: Target, keys: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    """The SQL-expression defaults of the columns left out of *keys*: its defaults must
    already have been checked (`Target.defaults`)."""
    defaults = into.defaults(keys)
    return () if defaults is None else defaults.expressions


def row_parameters(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {f"mortar_row_{i}": row[key] for i, key in enumerate(keys)}


@lru_cache(maxsize=_STATEMENTS_KEPT)
def insert_many_numbered_by(
    bump: Any,
    into: Target,
    keys: tuple[str, ...],
    number: abc.Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[Any]],
) -> Any:
    """INSERT rows numbered from *bump* in one statement, returning the counter's new value.

    ``WITH taken AS (UPDATE ...), inserted AS (INSERT INTO t (..., column) SELECT ...,
    number(value, back) FROM unnest(:back, :c0, ...) AS rows JOIN taken ORDER BY back DESC)
    SELECT value FROM taken``, where *back* counts the rows after each one: the last row has
    0. The rows come as one array per column (`many_rows_parameters`), so the statement is
    the same for any number of rows and compiled once. No counter row moved: no row
    inserted, nothing returned.
    """
    table = into.table
    columns = [
        sa.column("mortar_back", sa.BigInteger),
        *[sa.column(f"mortar_c{i}", table.c[key].type) for i, key in enumerate(keys)],
    ]
    arrays = [
        sa.cast(sa.bindparam(column.name, type_=_array_of(column.type)), _array_of(column.type))
        for column in columns
    ]
    listed = sa.func.unnest(*arrays).table_valued(*columns, name="mortar_rows").render_derived()
    taken = bump.cte("mortar_taken")
    back = listed.c.mortar_back
    expressions = expressions_for(into, keys)
    chosen = (
        sa.select(
            *list(listed.c)[1:],
            *[expression for _, expression in expressions],
            number(taken.c.value, back),
        )
        .select_from(listed.join(taken, sa.true()))
        .order_by(back.desc())
    )
    names = [*keys, *[key for key, _ in expressions], into.column]
    insert = sa.insert(table).from_select(names, chosen, include_defaults=False)
    return sa.select(taken.c.value).add_cte(insert.cte("mortar_inserted"))


def many_rows_parameters(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """The parameters of `insert_many_numbered_by`: one array per column, in row order."""
    parameters: dict[str, Any] = {"mortar_back": list(range(len(rows) - 1, -1, -1))}
    for i, key in enumerate(keys):
        parameters[f"mortar_c{i}"] = [row[key] for row in rows]
    return parameters


@lru_cache(maxsize=_STATEMENTS_KEPT)
def travel_as_arrays(into: Target, keys: tuple[str, ...]) -> bool:
    """Tell whether the columns *keys* of *into* can be passed as one array each
    (`insert_many_numbered_by`)."""
    return all(_array_element(into.table.c[key].type) for key in keys)


def _array_element(type_: TypeEngine[Any]) -> bool:
    while True:
        if getattr(type_, "_variant_mapping", None):
            return False  # with_variant(): which type PostgreSQL gets is not this one
        if type(type_).bind_expression not in (TypeEngine.bind_expression, _DECORATED):
            return False  # rendered through SQL, which an array's elements would skip
        if not isinstance(type_, TypeDecorator):
            return isinstance(type_, _ARRAY_ELEMENTS) and not isinstance(type_, sa.ARRAY)
        type_ = type_.impl_instance


_DECORATED = TypeDecorator.bind_expression  # a decorator's own, which defers to its impl


def _array_of(type_: TypeEngine[Any]) -> ARRAY[Any]:
    return ARRAY(type_, dimensions=1)


@lru_cache(maxsize=_STATEMENTS_KEPT)  # per counter shape, tables and numbering
def number_rows_by(
    bump: Any,
    targets: tuple[Target, ...],
    number: abc.Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[Any]],
    one: bool = False,
) -> Any:
    """Write numbers from *bump* into rows already inserted, in one statement; return the
    counter's new value and how many rows were written.

    ``WITH taken AS (UPDATE ...), numbered_0 AS (UPDATE t SET column = source.number FROM
    (SELECT k0, ..., number(value, back) AS number FROM unnest(:back, :k0, ...) AS rows JOIN
    taken ON true) AS source WHERE t.pk = source.k0 RETURNING ...) SELECT value, (SELECT
    count(*) FROM numbered_0) FROM taken``: one UPDATE per table of
    *targets*, the rows of each passed as one array per primary-key column, *back*
    counting the rows after each one (`numbered_rows_parameters`). No counter row moved:
    nothing updated, nothing returned. With *one* (a single row), its key is bound as it is
    (``SELECT :k0, ..., number(value, 0) AS number FROM taken``): no arrays to pass.
    """
    taken = bump.cte("mortar_taken")
    written: list[Any] = []
    for i, into in enumerate(targets):
        table = into.table
        primary_key = list(table.primary_key.columns)
        if one:
            keys = [
                sa.bindparam(f"mortar_{i}_mortar_k{j}", type_=column.type).label(f"mortar_k{j}")
                for j, column in enumerate(primary_key)
            ]
            alone = number(taken.c.value, sa.literal(0, sa.BigInteger))
            source = sa.select(*keys, alone.label("mortar_number")).subquery(f"mortar_source_{i}")
        else:
            source = _source(i, primary_key, taken, number)
        update = (
            sa.update(table)
            .where(*[column == source.c[f"mortar_k{j}"] for j, column in enumerate(primary_key)])
            .values({into.column: source.c.mortar_number})
            .returning(table.c[into.column])
        )
        numbered = update.cte(f"mortar_numbered_{i}")
        written.append(sa.select(sa.func.count()).select_from(numbered).scalar_subquery())
    return sa.select(taken.c.value, sum(written[1:], written[0]))


def _source(
    i: int,
    primary_key: list[sa.Column[Any]],
    taken: Any,
    number: abc.Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[Any]],
) -> Any:
    """The rows of the *i*-th table with their numbers, from arrays."""
    columns = [
        sa.column("mortar_back", sa.BigInteger),
        *[sa.column(f"mortar_k{j}", column.type) for j, column in enumerate(primary_key)],
    ]
    arrays = [
        sa.cast(
            sa.bindparam(f"mortar_{i}_{column.name}", type_=_array_of(column.type)),
            _array_of(column.type),
        )
        for column in columns
    ]
    listed = sa.func.unnest(*arrays).table_valued(*columns, name=f"mortar_rows_{i}")
    rows = listed.render_derived()
    return (
        sa.select(
            *list(rows.c)[1:],
            number(taken.c.value, rows.c.mortar_back).label("mortar_number"),
        )
        .select_from(rows.join(taken, sa.true()))
        .subquery(f"mortar_source_{i}")
    )


def numbered_rows_parameters(
    targets: tuple[Target, ...], rows: list[tuple[Target, tuple[Any, ...]]]
) -> dict[str, Any]:
    """The parameters of `number_rows_by` for *rows* (a target of *targets* and a primary
    key each), numbered in list order."""
    if len(rows) == 1:  # its *one* form
        return {f"mortar_0_mortar_k{j}": value for j, value in enumerate(rows[0][1])}
    parameters: dict[str, Any] = {}
    for i, into in enumerate(targets):
        width = len(into.table.primary_key.columns)
        parameters[f"mortar_{i}_mortar_back"] = []
        for j in range(width):
            parameters[f"mortar_{i}_mortar_k{j}"] = []
    last = len(rows) - 1
    for position, (into, key) in enumerate(rows):
        i = targets.index(into)
        parameters[f"mortar_{i}_mortar_back"].append(last - position)
        for j, value in enumerate(key):
            parameters[f"mortar_{i}_mortar_k{j}"].append(value)
    return parameters


@lru_cache(maxsize=4096)
def identifier_in_sql(key: str) -> abc.Callable[[ColumnElement[Any]], ColumnElement[Any]] | None:
    """SQL writing what ``identifier(key, number)`` writes, for a counter *key* whose counter
    is ``{counter}``, ``{counter:d}`` or ``{counter:0Nd}`` and which has no check digit
    (PostgreSQL's functions); None for others, whose identifiers Python writes."""
    fields = [
        (name, spec, conversion)
        for _, name, spec, conversion in string.Formatter().parse(key)
        if name is not None
    ]
    if len(fields) != 1 or fields[0][0] != "counter" or fields[0][2] is not None:
        return None
    spec = _COUNTER_SPEC.fullmatch(fields[0][1] or "")
    if spec is None:
        return None
    width = int(spec[1] or 0)
    before, after = around_counter(key)

    def text(number: ColumnElement[Any]) -> ColumnElement[Any]:
        written: ColumnElement[Any] = sa.cast(number, sa.Text)
        if width:
            # As format(n, "05d"): the sign first, zeros up to the width, none cut off.
            sign = sa.case((number < 0, sa.literal("-", sa.Text)), else_=sa.literal("", sa.Text))
            digits = sa.func.ltrim(written, "-", type_=sa.Text)
            missing = sa.func.greatest(width - sa.func.length(sign) - sa.func.length(digits), 0)
            written = sign + sa.func.repeat("0", missing, type_=sa.Text) + digits
        return sa.literal(before, sa.Text) + written + sa.literal(after, sa.Text)

    return text
