"""Numbering at commit: taking a series' values and writing them into its rows."""

from __future__ import annotations

import collections.abc as abc
from functools import lru_cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..errors import UnknownSequence
from ..strategies import counts_in_rows, gapless
from ..strategies.targets import Target
from .pending import Labelled, Row, Series

_ROWS_PER_UPDATE = 2000  # a CASE of bound parameters: SQLite allows 32766 per statement
_UPDATES_KEPT = 64  # per table and number of rows: the commonest, one row, among them


def key_of(obj: object, into: Target) -> tuple[Any, ...] | None:
    state = sa.inspect(obj)
    if not state.persistent or state.identity is None:
        return None  # deleted, or gone with a savepoint rolled back
    mapper = state.mapper
    by_column = dict(zip(mapper.primary_key, state.identity, strict=True))
    return tuple(by_column[column] for column in into.table.primary_key.columns)


def number_series(
    owner: Session | Connection, listed: list[tuple[Row, tuple[Any, ...]]]
) -> abc.Sequence[int | str | None]:
    """Take one value per row of a series and write them, in the rows' order; return each
    row's number (None for a row found deleted)."""
    series = listed[0][0].series
    rows = [(row.into, key) for row, key in listed]
    labelled = _labelled(series)
    if labelled is None:
        return _take_and_write(owner, series, rows, None)
    labelled.prepare(owner, again=False)
    try:
        return _take_and_write(owner, series, rows, labelled)
    except UnknownSequence:
        # Its counter went away with a rolled-back transaction that created it.
        labelled.prepare(owner, again=True)
        return _take_and_write(owner, series, rows, labelled)


# Whether a kind of series is a template's counter, by its class: isinstance() of a runtime
# Protocol looks up each of its members, ~90 Python calls for a Sequence (which is not).
_LABELLED: dict[type, bool] = {}


def _labelled(series: Series) -> Labelled | None:
    kind = type(series)
    found = _LABELLED.get(kind)
    if found is None:
        found = _LABELLED[kind] = isinstance(series, Labelled)
    return cast(Labelled, series) if found else None


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
            texts = isinstance(chunk[0][2], str)
            statement = _numbering_update(into, len(chunk), texts)
            parameters: dict[str, Any] = {}
            for i, (_, key, number) in enumerate(chunk):
                parameters[f"mortar_number_{i}"] = number
                for j, value in enumerate(key):
                    parameters[f"mortar_key_{i}_{j}"] = value
            written += into.execute(owner, statement, parameters).rowcount
    return written


@lru_cache(maxsize=_UPDATES_KEPT)
def _numbering_update(into: Target, count: int, texts: bool) -> Any:
    """``UPDATE t SET column = CASE pk WHEN .. THEN .. END WHERE pk IN (..)`` for *count*
    rows, bound as ``mortar_key_{row}_{column}`` and ``mortar_number_{row}`` (identifiers
    where *texts*): built once per table and number of rows."""
    table = into.table
    primary_key = list(table.primary_key.columns)
    # The numbers as they are, with no conversion of the column's type (as literals were).
    number_type = sa.String() if texts else sa.BigInteger()
    numbers = [sa.bindparam(f"mortar_number_{i}", type_=number_type) for i in range(count)]
    keys = [
        [sa.bindparam(f"mortar_key_{i}_{j}", type_=c.type) for j, c in enumerate(primary_key)]
        for i in range(count)
    ]
    if len(primary_key) == 1:
        only = primary_key[0]
        number = sa.case(
            {key[0]: value for key, value in zip(keys, numbers, strict=True)}, value=only
        )
        where = only.in_([key[0] for key in keys])
    else:
        whens = [
            (sa.and_(*[c == k for c, k in zip(primary_key, key, strict=True)]), value)
            for key, value in zip(keys, numbers, strict=True)
        ]
        number = sa.case(*whens)
        where = sa.tuple_(*primary_key).in_([sa.tuple_(*key) for key in keys])
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
