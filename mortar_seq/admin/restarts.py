"""Managing a series in production: restarting it, continuing it after a column, and the
checks that keep a restart from handing out a value twice."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

from ..db.binding import SessionLike
from ..definition import INT64_MAX, INT64_MIN, Definition, check_integer
from ..errors import SequenceConfigError, TemplateError, UnknownSequence
from ..model import Counter
from ..patterns.pattern import around_counter, counter_in
from ..storage import (
    children,
    counter_deleted_here,
    counter_keys,
    deleted_here,
    note_counter_deleted,
    seen_apart,
)
from ..strategies import SequenceStrategy, counts_in_rows, hold_counter, reaching, restartable


def check_value(definition: Definition, value: object) -> int:
    """Return *value* if the series of *definition* hands it out, else raise `SequenceConfigError`.

    A value of the series is start + k * step for some k >= 0; with a reset, before it.

    >>> check_value(Definition("x", start=1, step=10), 21)
    21
    >>> check_value(Definition("x", start=1, step=10), 25)
    Traceback (most recent call last):
    ...
    mortar_seq.errors.SequenceConfigError: 25 is not a value of 'x' (start=1, step=10)
    """
    number = check_integer(value, "value")
    start, step, reset = definition.start, definition.step, definition.reset
    before_start = (number - start) * step < 0
    past_reset = reset is not None and (reset - number) * step <= 0
    if before_start or past_reset or (number - start) % step:
        settings = f"start={start}, step={step}" + ("" if reset is None else f", reset={reset}")
        raise SequenceConfigError(f"{number} is not a value of {definition.name!r} ({settings})")
    return number


def next_after(definition: Definition, reached: int | None) -> int | None:
    """Return the value handed out after *reached* (start for None); None beyond 64 bits.

    >>> next_after(Definition("m", start=0, reset=3), 2), next_after(Definition("x"), None)
    (0, 1)
    """
    if reached is None:
        return definition.start
    following = reached + definition.step
    if definition.reset is not None and (definition.reset - following) * definition.step <= 0:
        return definition.start
    return following if INT64_MIN <= following <= INT64_MAX else None


def first_beyond(definition: Definition, extreme: int | None) -> int:
    """Return the first value of the series beyond *extreme* (start for None or before it).

    >>> first_beyond(Definition("x"), 41), first_beyond(Definition("x", start=1, step=10), 25)
    (42, 31)
    >>> first_beyond(Definition("x", start=1000), 41), first_beyond(Definition("d", 0, -1), -5)
    (1000, -6)
    """
    start, step = definition.start, definition.step
    if extreme is None:
        return start
    ahead = (extreme - start) * (1 if step > 0 else -1)
    if ahead < 0:
        return start
    value = start + (ahead // abs(step) + 1) * step
    return check_integer(value, f"the value after {extreme} in {definition.name!r}")


def restart_after(
    session: SessionLike,
    definition: Definition,
    strategy: SequenceStrategy,
    column: Any,
    where: Any = None,
) -> int:
    """Continue a sequence after the extreme of *column*; return the next value (see
    `Sequence.restart_after`)."""
    if definition.reset is not None:
        raise SequenceConfigError(
            f"{definition.name!r} resets: the values in a column do not tell where its cycle "
            "stands; use restart()"
        )
    restarting = restartable(strategy, "restart_after")
    rows = counts_in_rows(strategy)
    # A counter row is locked first, so that nobody takes a value between the read of the
    # column and the restart. A native sequence has no row: see the re-read below.
    if rows:
        found, reached = hold_counter(session, definition)
        if not found:
            raise UnknownSequence(definition.name, " in this database")
    else:
        reached = reaching(strategy, "restart_after").reached(session, definition)
    current = next_after(definition, reached)
    value = first_beyond(definition, _extreme(session, column, where, definition.step))
    if current is not None and (value - current) * definition.step < 0:
        raise SequenceConfigError(
            f"restart_after would move {definition.name!r} back from {current} to {value}: "
            "values were handed out beyond the column; restart() moves it back on purpose"
        )
    if value != current:
        restarting.restart(session, definition, value)
        if not rows:
            # The restart holds what lock there is (PostgreSQL's ALTER SEQUENCE waits for
            # transactions that used the sequence and blocks new ones): read again under it.
            again = first_beyond(definition, _extreme(session, column, where, definition.step))
            if again != value:
                restarting.restart(session, definition, again)
                value = again
    return value


def _extreme(session: SessionLike, column: Any, where: Any, step: int) -> int | None:
    """The last value of *column* in the direction of *step*, as committed right now.

    A locking read: under REPEATABLE READ (MariaDB's default) a plain one would see the
    transaction's snapshot, perhaps older than the lock just taken.
    """
    found = column.__clause_element__() if hasattr(column, "__clause_element__") else column
    if not isinstance(found, sa.ColumnElement):
        raise TypeError(f"column must be a SQLAlchemy column, not {column!r}")
    if not isinstance(found.type, sa.Integer):
        raise TypeError(f"column must hold integers, not {found.type!r}: {found}")
    conditions = [found.is_not(None)] if where is None else [found.is_not(None), where]
    order = found.desc() if step > 0 else found.asc()
    query = sa.select(found).where(*conditions).order_by(order).limit(1)
    value = session.execute(query.with_for_update(read=True)).scalar()
    return None if value is None else int(value)


def refuse_children(
    session: SessionLike, counter: Definition, strategy: SequenceStrategy, doing: str
) -> None:
    """Raise `TemplateError` if a child template counts under an identifier of *counter*
    (a template's counter: its name, start, step and key)."""
    key = counter.key
    reached = reaching(strategy, doing).reached(session, counter)
    if reached is None:
        return  # nothing issued there, so nothing counts under it
    for child in children(session, counter.name):
        for child_key in latest_counter_keys(session, child):
            found = _issued_within(child_key, counter, reached)
            if found is not None:
                raise TemplateError(
                    f"cannot {doing} the counter {key!r} of template {counter.name!r}: "
                    f"template {child!r} counts under {found!r}, which it issued "
                    "(delete that child's counters first)"
                )


def _issued_within(child_key: str, counter: Definition, reached: int) -> str | None:
    """Return an identifier of *counter* (issued up to *reached*) in *child_key*, or None."""
    key = counter.key
    prefix, suffix = around_counter(key)
    for text in _literal_parts(child_key):
        position = text.find(prefix)
        while position != -1:
            for end in range(position + len(prefix) + len(suffix), len(text) + 1):
                candidate = text[position:end]
                number = counter_in(key, candidate)
                if number is not None and _issued(counter, number, reached):
                    return candidate
            position = text.find(prefix, position + 1)
    return None


def _issued(counter: Definition, number: int, reached: int) -> bool:
    start, step = counter.start, counter.step
    return not (number - start) % step and 0 <= (number - start) * step <= (reached - start) * step


def _literal_parts(key: str) -> list[str]:
    """The text of a counter key on either side of its counter placeholder (braces unescaped)."""
    return list(around_counter(key))


def delete_counter_row(session: SessionLike, name: str, key: str) -> bool:
    """Delete the counter row (*name*, *key*) in the caller's transaction; tell if it existed."""
    gone = session.execute(
        sa.delete(Counter)
        .where(Counter.name == name, Counter.key == key)
        .execution_options(synchronize_session=False)
    )
    note_counter_deleted(session, name, key)
    return cast("CursorResult[Any]", gone).rowcount > 0


def latest_counter_keys(session: SessionLike, name: str) -> list[str]:
    """Return the keys of *name*'s counters, those created apart included (MariaDB), sorted.

    Without a lock (see `seen_apart`): the caller's view, and what a fresh snapshot sees
    less the counters the caller's transaction deleted. After the caller deleted *name*
    itself, its counters are made in the caller's transaction: its own view says it all.
    """
    found = set(counter_keys(session, name))
    if not deleted_here(session, name):
        query = sa.select(Counter.key).where(Counter.name == name)
        found.update(
            key
            for key in seen_apart(session, query)
            if not counter_deleted_here(session, name, key)
        )
    return sorted(found)
