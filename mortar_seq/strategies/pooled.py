"""`PooledSequence`: blocks of values reserved apart, handed out from memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy.engine import Dialect

from ..db.binding import SessionLike, connection_of, dialect_of, engine_of
from ..db.conflicts import retrying
from ..db.side import side_engine
from ..definition import Definition
from ..errors import SequenceConfigError, SequenceLocked, UnknownSequence
from ..model import Counter
from ..storage import briefly, create_missing, deleted_here
from .block_pool import Pool, drop, pool_for, to_completion
from .table import (
    TableSequence,
    _contiguous,
    _counter_row,
    hold_counter,
    refuse_behind,
    restart_counter,
)


@dataclass(frozen=True)
class PooledSequence:
    """Blocks of values reserved in a short transaction of their own, handed out from memory.

    Unique across processes, not gapless, not ordered across processes: values increase
    within a process, and values a process reserved but did not hand out (at exit, or
    taken by a transaction that rolled back) are never handed out again. About one
    reservation per *block* values; thread-safe, and a child process after ``fork()``
    never reuses its parent's block. Runs on every database.
    """

    block: int = 1000
    kind: ClassVar[str] = "pooled"
    counts_in_rows: ClassVar[bool] = True  # the end of the last block reserved
    gapless: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1:
            raise SequenceConfigError(f"block must be an integer of at least 1, not {self.block!r}")

    def check(self, dialect: Dialect, definition: Definition) -> None:
        """Every SQLAlchemy database can hold the counter row behind the blocks."""

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None:
        # Committed at once: blocks are reserved on other connections, which must see it.
        apart = not _holds_sqlite_write_lock(session)
        create_missing(session, Counter, _counter_row(definition), nowait=nowait, apart=apart)

    def next(self, session: SessionLike, definition: Definition) -> int:
        pool = pool_for(engine_of(session), definition.name, definition.key)
        value = pool.pop_one()
        if value is not None:
            return value
        return self._take(pool, session, definition, 1)[0]

    def next_many(self, session: SessionLike, definition: Definition, count: int) -> Sequence[int]:
        pool = pool_for(engine_of(session), definition.name, definition.key)
        values = pool.pop(count) or self._take(pool, session, definition, count)
        return _contiguous(values, definition.step) if definition.reset is None else values

    def _take(
        self, pool: Pool, session: SessionLike, definition: Definition, count: int
    ) -> list[int]:
        connection_of(session)  # before waiting for another's reservation: see Pool.take
        return pool.take(count, lambda missing: self._reserve(session, definition, missing))

    def last(self, session: SessionLike, definition: Definition) -> int | None:
        return pool_for(engine_of(session), definition.name, definition.key).last

    def reached(self, session: SessionLike, definition: Definition) -> int | None:
        return TableSequence().last(session, definition)  # the end of the last reserved block

    def restart(self, session: SessionLike, definition: Definition, value: int) -> None:
        """Move forward only, beyond every block reserved: processes still hand out what they
        hold (all of it before *value*), and every block reserved from now on starts at
        *value* or beyond, so no value is handed out twice. This process's blocks are
        dropped: its next value is *value*."""
        if definition.reset is not None:
            raise SequenceConfigError(
                f"{definition.name!r} is pooled and resets: processes may still hand out "
                "reserved values anywhere in its cycle, so it cannot be restarted"
            )
        found, reached = hold_counter(session, definition)
        if not found:
            raise UnknownSequence(definition.name, " in this database")
        refuse_behind(
            definition, value, reached, "processes may still hand out reserved values up to it"
        )
        restart_counter(session, definition, value)
        drop(engine_of(session), definition.name)

    def delete(self, session: SessionLike, definition: Definition) -> None:
        drop(engine_of(session), definition.name)

    def _reserve(self, session: SessionLike, definition: Definition, missing: int) -> Sequence[int]:
        counter = TableSequence()
        if _holds_sqlite_write_lock(session) or deleted_here(session, definition.name):
            # Another connection would wait for the caller's locks forever: take just
            # what is missing in the caller's transaction (a rollback gives it back).
            return counter.next_many(session, definition, missing)
        wanted = max(self.block, missing)

        def reserve() -> Sequence[int]:
            with side_engine(engine_of(session)).connect() as connection:
                with briefly(connection, definition.name):
                    reserved = counter.next_many(connection, definition, wanted)
                connection.commit()
            return reserved

        try:
            # Run again after a write conflict (Galera nodes reserving at once): rolled back.
            # To its end if the caller's task is cancelled meanwhile: see to_completion.
            return to_completion(lambda: retrying(reserve))
        except SequenceLocked:
            # Its row is locked longer than a reservation takes: perhaps by the caller's own
            # transaction, which created it there. Wait for it there, as any caller would.
            return counter.next_many(session, definition, missing)


def _holds_sqlite_write_lock(session: SessionLike) -> bool:
    # pysqlite opens a transaction only before a write: an open one holds the write lock.
    if dialect_of(session).name != "sqlite":
        return False
    driver_connection = connection_of(session).connection.driver_connection
    return bool(getattr(driver_connection, "in_transaction", False))
