"""The object users hold: a named sequence bound to its implementation."""

from __future__ import annotations

import collections.abc as abc
from dataclasses import dataclass
from typing import Any

from .admin.restarts import check_value, restart_after
from .agreement import agree
from .db.binding import SESSIONS, SessionLike, check_session
from .db.locking import waiting_at_most
from .definition import Definition, check_count
from .numbering.at_commit import insert_row, numbering_default, register_object
from .numbering.at_flush import numbered_row
from .strategies import SequenceStrategy, restartable
from .strategies.targets import target


def no_wait(nowait: bool) -> int | None:
    """Return the lock-wait bound for a ``nowait`` flag: 0 seconds, or None to wait as usual."""
    return 0 if nowait else None


@dataclass(frozen=True)
class Sequence:
    """A named sequence; ``seq.next(session)`` hands out its next value.

    Every call runs in the caller's transaction (a `~sqlalchemy.orm.Session` or a
    `~sqlalchemy.engine.Connection`) and never commits or rolls it back. A value is only
    safe if it is saved in that same transaction.
    """

    definition: Definition
    strategy: SequenceStrategy

    @property
    def name(self) -> str:
        """The sequence's name."""
        return self.definition.name

    def next(self, session: SessionLike, *, nowait: bool = False) -> int:
        """Take the next value in the caller's transaction and return it.

        Save it in the same transaction. With *nowait*, raise `SequenceLocked` instead of
        waiting for another transaction that holds the sequence.
        """
        if not isinstance(session, SESSIONS):
            check_session(session)
        agree(session, self)
        if not nowait:  # the hot path: nothing to bound
            return self.strategy.next(session, self.definition)
        with waiting_at_most(session, 0, self.name):
            return self.strategy.next(session, self.definition)

    def next_many(
        self, session: SessionLike, count: int, *, nowait: bool = False
    ) -> abc.Sequence[int]:
        """Take *count* values at once (a range where they are contiguous) and return them.

        As `next`: one call, in the caller's transaction; save them there.
        """
        if not isinstance(session, SESSIONS):
            check_session(session)
        agree(session, self)
        number = check_count(count, self.definition)
        with waiting_at_most(session, no_wait(nowait), self.name):
            return self.strategy.next_many(session, self.definition, number)

    def last(self, session: SessionLike) -> int | None:
        """Return the last value handed out and visible to *session*; None before the first."""
        check_session(session)
        agree(session, self)
        return self.strategy.last(session, self.definition)

    def restart(self, session: SessionLike, value: int, *, nowait: bool = False) -> None:
        """Make *value* the next value handed out, in the caller's transaction.

        *value* must be a value of the series (start + k * step, before any reset). Takes
        the sequence's lock as `next` does (with *nowait*, `SequenceLocked` instead of
        waiting). A `PooledSequence` only moves forward, beyond every reserved block
        (`SequenceConfigError` otherwise); a `NativeSequence` restarts with ALTER SEQUENCE,
        committed at once where DDL is not transactional (MariaDB).
        """
        check_session(session)
        agree(session, self)
        number = check_value(self.definition, value)
        strategy = restartable(self.strategy, "restart")
        with waiting_at_most(session, no_wait(nowait), self.name):
            strategy.restart(session, self.definition, number)

    def restart_after(
        self, session: SessionLike, column: Any, *, where: Any = None, nowait: bool = False
    ) -> int:
        """Continue after the values stored in *column*: return the next value, now set.

        The next value is max(column) + step (min(column) + step for a negative step), or
        the first value of the series beyond it, or *start* for an empty column (or one
        holding only values before *start*); *where* selects the column's rows. The
        sequence's lock is taken first and the column read under it, so values taken
        through the sequence meanwhile are counted. It never moves the sequence back: a
        value already handed out beyond the column raises `SequenceConfigError` (use
        `restart` for that). A resetting sequence is refused. In the caller's transaction.
        """
        check_session(session)
        agree(session, self)
        with waiting_at_most(session, no_wait(nowait), self.name):
            return restart_after(session, self.definition, self.strategy, column, where)

    def values(self, session: SessionLike) -> abc.Iterator[int]:
        """Iterate over next values, without end (``itertools.islice`` takes some)."""
        while True:
            yield self.next(session)

    def insert(
        self, session: SessionLike, table: object, values: abc.Mapping[str, Any], *, column: str
    ) -> int:
        """Take the next value and insert a row of *table* numbered with it; return the number.

        *table* is a `~sqlalchemy.schema.Table` or a mapped class, *values* the row's other
        columns, *column* the one that receives the number. Runs in the caller's
        transaction, with the sequence's guarantees (gapless for `TableSequence`: a rollback
        gives the number back with the row). One statement on PostgreSQL, at most two
        elsewhere.

        .. versionadded:: 0.1
        """
        if not isinstance(session, SESSIONS):
            check_session(session, "insert", table)
        agree(session, self)
        into = target(table, column)
        row = into.row(values)
        insert = getattr(self.strategy, "insert", None)
        if insert is not None:
            return int(insert(session, self.definition, into, row))
        number = self.strategy.next(session, self.definition)
        into.insert(session, [row], [number])
        return number

    def insert_many(
        self,
        session: SessionLike,
        table: object,
        rows: abc.Iterable[abc.Mapping[str, Any]],
        *,
        column: str,
    ) -> abc.Sequence[int]:
        """Insert *rows* of *table*, numbered in list order; return their numbers.

        As `insert`, for many rows: one statement on PostgreSQL however many rows, at most
        two elsewhere. Every row names the same columns. On PostgreSQL the rows travel as
        one array per column; columns of other types than numbers, text, dates and times,
        booleans, bytes, UUIDs and JSON (arrays, types bound through SQL such as
        geometries), or with a Python function as default, take two statements instead.

        .. versionadded:: 0.1
        """
        if not isinstance(session, SESSIONS):
            check_session(session, "insert_many", table)
        agree(session, self)
        into = target(table, column)
        listed = into.rows(rows)
        if not listed:
            return range(0)
        count = check_count(len(listed), self.definition)
        insert_many = getattr(self.strategy, "insert_many", None)
        if insert_many is not None:
            numbers: abc.Sequence[int] = insert_many(session, self.definition, into, listed)
            return numbers
        numbers = self.strategy.next_many(session, self.definition, count)
        into.insert(session, listed, numbers)
        return numbers

    def at_commit(self, session: SessionLike, obj: object, attribute: str) -> None:
        """Number *obj*'s *attribute* just before *session* commits.

        *obj* is an ORM object added to *session* (a `~sqlalchemy.orm.Session`). Its row is
        written without the number (NULL: the column must accept it) and numbered as the
        session commits, so the sequence is locked only for the commit; after COMMIT the
        object carries its number. See `number_pending`.

        .. versionadded:: 0.1
        """
        if not isinstance(session, SESSIONS):
            check_session(session, "at_commit", obj)
        agree(session, self)
        register_object(session, self, obj, attribute)

    def insert_at_commit(
        self, session: SessionLike, table: object, values: abc.Mapping[str, Any], *, column: str
    ) -> tuple[Any, ...]:
        """Insert a row of *table* now, with *column* NULL, numbered just before COMMIT;
        return the row's primary key.

        As `insert`, but the sequence is locked only for the commit. A
        `~sqlalchemy.orm.Session` numbers the row as it commits; on a
        `~sqlalchemy.engine.Connection`, call `number_pending` before committing.

        .. versionadded:: 0.1
        """
        if not isinstance(session, SESSIONS):
            check_session(session, "insert_at_commit", table)
        agree(session, self)
        return insert_row(session, self, table, values, column)

    @property
    def default(self) -> abc.Callable[[Any], int]:
        """A column default that numbers each new row at flush, in the flush's transaction.

        ``mapped_column(BigInteger, default=invoice.default)``: ``session.add(Invoice())``
        gets its number when the session flushes; a flush of many rows takes their
        numbers in one call. See also `column_default`, by name.

        .. versionadded:: 0.1
        """

        def default(context: Any) -> int:
            return int(numbered_row(context, default, self.next, self.next_many))

        return default

    @property
    def default_at_commit(self) -> abc.Callable[[Any], None]:
        """A column default that leaves the column NULL at flush and numbers the row just
        before COMMIT, so the sequence is locked only for the commit.

        ``mapped_column(BigInteger, default=invoice.default_at_commit)``: a
        `~sqlalchemy.orm.Session` numbers the rows as it commits (the object then carries its
        number); on a `~sqlalchemy.engine.Connection`, call `number_pending` before
        committing. An INSERT of many rows (executemany) is numbered where the database tells
        each row's key (``insert().return_defaults()``, the ORM's flush), else refused. See
        `at_commit`.

        .. versionadded:: 0.1
        """

        def series(context: Any) -> Sequence:
            agree(context.connection, self)
            return self

        return numbering_default(series)
