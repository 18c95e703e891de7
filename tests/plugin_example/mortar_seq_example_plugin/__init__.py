"""A worked example of a mortar_seq implementation: a counter row in a table of its own.

Gapless like `mortar_seq.TableSequence`, in a dozen lines of Core SQL: the row is locked
by the UPDATE that moves it, so concurrent transactions take turns, and a rollback gives
the values back. No resetting sequences; no fast paths (``insert`` is left to the
library, which takes `next` and then inserts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from mortar_seq import SequenceConfigError, UnknownSequence

if TYPE_CHECKING:
    from mortar_seq import Definition

metadata = sa.MetaData()
counters = sa.Table(
    "example_plugin_counters",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),  # a template's rendering
    sa.Column("value", sa.BigInteger, nullable=True),  # the last value handed out
)


def create_tables(bind: sa.Engine | sa.Connection) -> None:
    """Create the plug-in's table where missing: at setup, as `mortar_seq.create_tables`."""
    metadata.create_all(bind)


def _row(definition: Definition) -> sa.ColumnElement[bool]:
    return sa.and_(counters.c.name == definition.name, counters.c.key == definition.key)


@dataclass(frozen=True)
class CounterRowSequence:
    """Hand out start, start + step, ... from a row of ``example_plugin_counters``: gapless.

    *label* is an option like any other: stored with each sequence, compared when a
    sequence is registered again.
    """

    label: str = ""
    kind: ClassVar[str] = "example-counter"
    gapless: ClassVar[bool] = True  # next_many is one UPDATE: any count at once
    counts_in_rows: ClassVar[bool] = False  # its row is not in mortar_seq's counter table

    def check(self, dialect: Dialect, definition: Definition) -> None:
        """Every SQLAlchemy database can hold the row."""

    def create(self, session: Any, definition: Definition, *, nowait: bool) -> None:
        if definition.reset is not None:
            raise SequenceConfigError(f"{self.kind!r} sequences do not reset")
        # Its table is created at setup (create_tables), never here: DDL would commit the
        # caller's transaction on MariaDB.
        row = {"name": definition.name, "key": definition.key, "value": None}
        try:
            with session.begin_nested():  # a savepoint: a concurrent create wins, we go on
                session.execute(sa.insert(counters).values(row))
        except sa.exc.IntegrityError:
            pass

    def next(self, session: Any, definition: Definition) -> int:
        return self.next_many(session, definition, 1)[0]

    def next_many(self, session: Any, definition: Definition, count: int) -> Sequence[int]:
        step = definition.step
        value = counters.c.value
        first = sa.literal(definition.start + (count - 1) * step, sa.BigInteger)
        moved = sa.case((value.is_(None), first), else_=value + count * step)
        update = sa.update(counters).where(_row(definition)).values(value=moved)
        if not session.execute(update).rowcount:  # the row is ours until the transaction ends
            raise UnknownSequence(definition.name, " in this database")
        last: int = session.execute(sa.select(value).where(_row(definition))).scalar_one()
        return range(last - (count - 1) * step, last + step, step)

    def last(self, session: Any, definition: Definition) -> int | None:
        found = session.execute(sa.select(counters.c.value).where(_row(definition)))
        return found.scalar_one_or_none()  # type: ignore[no-any-return]

    def reached(self, session: Any, definition: Definition) -> int | None:
        return self.last(session, definition)

    def restart(self, session: Any, definition: Definition, value: int) -> None:
        before = None if value == definition.start else value - definition.step
        update = sa.update(counters).where(_row(definition))
        if not session.execute(update.values(value=before)).rowcount:
            raise UnknownSequence(definition.name, " in this database")

    def delete(self, session: Any, definition: Definition) -> None:
        session.execute(sa.delete(counters).where(_row(definition)))
