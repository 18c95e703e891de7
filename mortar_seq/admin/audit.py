"""Audit a column of numbers for gaps, duplicates and strays, in one query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..db.binding import SessionLike
from ..definition import INT64_MAX, INT64_MIN, check_integer
from ..errors import AuditError, SequenceConfigError


@dataclass(frozen=True)
class Audit:
    """What `audit` found in a column: its extent, and every break in its series.

    Values are listed in the direction of ``step`` (descending for a negative step).
    """

    count: int
    """Rows holding a value; NULLs are not counted (nor audited)."""
    first: int | None
    """The first value in the direction of step (the lowest when step > 0); None if empty."""
    last: int | None
    """The last value in the direction of step (the highest when step > 0); None if empty."""
    gaps: list[range]
    """Missing runs of the series, such as ``range(4, 7)`` for 4, 5 and 6 (with its step)."""
    duplicates: dict[int, int]
    """Each value held by more than one row, and by how many rows."""
    off_step: list[int]
    """Values the series never reaches: off the step's grid, or before ``start``."""

    @property
    def clean(self) -> bool:
        """Whether the column has no gap, no duplicate and no value off the series."""
        return not (self.gaps or self.duplicates or self.off_step)


def audit(
    session: SessionLike,
    column: Any,
    *,
    start: int | None = None,
    step: int = 1,
    where: Any = None,
) -> Audit:
    """Check that *column* holds start, start + step, ... with no gap and no duplicate.

    *column* is an integer column (``Invoice.number`` or ``table.c.number``) and *where* an
    optional condition on its rows (one series, one year). The series runs from *start*
    (by default, the first value found, so that only gaps between values are reported) by
    *step*, which may be negative. Where it should end is not known: compare `Audit.last`
    with the sequence's ``last()`` to see a missing tail.

    One statement, in the caller's transaction (a `~sqlalchemy.orm.Session` or a
    `~sqlalchemy.engine.Connection`); nothing is committed or rolled back. The database does
    the counting, with window functions (SQLite 3.25+, PostgreSQL, MariaDB 10.2+), so
    Python's memory grows with what is reported, not with the rows.

    A column whose type is not an integer type raises `TypeError`; a stored value that is
    not an integer (SQLite keeps text in an INTEGER column) raises `AuditError` naming it.
    """
    number = _expression(column, "column")
    if not isinstance(number.type, sa.Integer):
        raise TypeError(f"column must hold integers, not {number.type!r}: {number}")
    condition = None if where is None else _expression(where, "where")
    increment = check_integer(step, "step")
    if increment == 0:
        raise SequenceConfigError("step must not be 0")
    if abs(increment) > INT64_MAX:
        raise SequenceConfigError(f"step must lie within ±{INT64_MAX}, not {increment}")
    origin = None if start is None else check_integer(start, "start")
    rows = session.execute(_findings(number, condition, origin, increment)).all()
    return _report(rows, origin, increment, str(number))


def _expression(given: Any, what: str) -> sa.ColumnElement[Any]:
    found = given.__clause_element__() if hasattr(given, "__clause_element__") else given
    if not isinstance(found, sa.ColumnElement):
        raise TypeError(f"{what} must be a SQLAlchemy column or expression, not {given!r}")
    return found


def _residue(value: Any, modulus: sa.ColumnElement[int]) -> Any:
    # value mod modulus, in [0, modulus): SQL's % keeps the sign of value. The addition is
    # only made where the remainder is negative, so it never leaves 64 bits.
    remainder = value % modulus
    return sa.case((remainder < 0, remainder + modulus), else_=remainder)


def _findings(
    column: sa.ColumnElement[Any], where: Any, start: int | None, step: int
) -> sa.Select[Any]:
    """The statement: the rows that break the series, with the first and the last row.

    Each row comes with the value before it (``prior``) and whether that one is on the
    series, so that the caller can follow the series from one row returned to the next.
    """

    def bigint(value: int) -> sa.ColumnElement[int]:
        return sa.literal(value, sa.BigInteger)

    present = [column.is_not(None)] if where is None else [column.is_not(None), where]
    on_series = []
    if start is not None:
        on_series.append(column <= bigint(start) if step < 0 else column >= bigint(start))
    if abs(step) > 1:  # every integer lies on a grid of step 1
        modulus = bigint(abs(step))
        if start is None:  # the first value found sets the grid
            earliest = sa.func.max(column) if step < 0 else sa.func.min(column)
            first = sa.select(_residue(earliest, modulus)).where(*present).correlate(None)
            grid: Any = first.scalar_subquery()
        else:
            grid = bigint(start % abs(step))
        on_series.append(_residue(column, modulus) == grid)
    series = sa.and_(sa.true(), *on_series).label("on_series")
    placed = sa.select(column.label("value"), series).where(*present).cte("placed")

    # Window functions without a frame, all over the same ordering: one sort, one pass.
    value = placed.c.value
    order = value.desc() if step < 0 else value
    marked = sa.select(
        placed,
        sa.func.lag(value).over(order_by=order).label("prior"),
        sa.func.lag(placed.c.on_series).over(order_by=order).label("prior_on_series"),
        sa.func.row_number().over(order_by=order).label("position"),
        sa.func.lead(value).over(order_by=order).label("following"),
    ).cte("marked")

    row = marked.c
    # value - step leaves 64 bits beyond this limit, where no value can precede at one step.
    limit = INT64_MAX + step if step < 0 else INT64_MIN + step
    reachable = row.value <= bigint(limit) if step < 0 else row.value >= bigint(limit)
    unexpected = sa.case((reachable, row.value - bigint(step) != row.prior), else_=sa.true())
    findings = sa.or_(
        row.prior.is_(None),  # the first row
        row.following.is_(None),  # the last row: its position is the count
        row.prior == row.value,  # a second (third ...) row with this value
        sa.not_(row.on_series),
        unexpected,  # its predecessor is not one step before: a gap, or an off-series value
    )
    # In the windows' own order: rows of equal value come in no set order otherwise.
    return sa.select(marked).where(findings).order_by(row.position)


def _report(rows: Sequence[sa.Row[Any]], start: int | None, step: int, column: str) -> Audit:
    if not rows:
        return Audit(0, None, None, [], {}, [])
    gaps: list[range] = []
    duplicates: dict[int, int] = {}
    off_step: list[int] = []
    latest = None  # the last value on the series before this row
    for row in rows:
        value = _integer(row.value, column)
        prior = None if row.prior is None else _integer(row.prior, column)
        if row.prior_on_series:
            # Otherwise the row before is off the series, hence returned just before this one.
            latest = prior
        if prior == value:
            duplicates[value] = duplicates.get(value, 1) + 1
        elif not row.on_series:
            off_step.append(value)
        elif latest is not None and value - latest != step:
            gaps.append(range(latest + step, value, step))
        elif latest is None and start is not None and value != start:
            gaps.append(range(start, value, step))
    first, last = rows[0], rows[-1]
    return Audit(int(last.position), first.value, last.value, gaps, duplicates, off_step)


def _integer(value: Any, column: str) -> int:
    # SQLite keeps text, blobs and fractions in an INTEGER column as they were given. Such a
    # value always reaches here: text and blobs sort after numbers (the last row, or the
    # first for a negative step), and the first of a run of fractions one step apart has a
    # predecessor that is not one step before it.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise AuditError(f"{column} holds {value!r}: only integers can be audited")
