"""`NativeSequence`: a database SEQUENCE object per sequence."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateSequence, DropSequence, ExecutableDDLElement

from ..arithmetic import cycle_length
from ..db.binding import SessionLike, connection_of, dialect_of, engine_of
from ..db.dialects import (
    CurrentValue,
    NextValues,
    RestartSequence,
    SetSequenceValue,
    caches_per_connection,
    ddl_is_transactional,
    ddl_lock_wait,
    sequence_refusal,
)
from ..db.driver_errors import is_lock_timeout, is_sequence_exhausted, is_sequence_refused
from ..db.galera import refuse_native_sequences
from ..db.side import side_engine
from ..definition import Definition
from ..errors import SequenceConfigError, SequenceExhausted, SequenceLocked
from ..model import Counter
from ..storage import create_missing
from .table import _contiguous, _counter_row, refuse_behind
from .targets import (
    Target,
    observed,
    seen,
)

# About a millisecond of PostgreSQL's nextval per million values cached; far more would hang
# the connection that refills its cache (2**63 - 1 spins for ever, deaf to cancel).
CACHE_MAX = 1_000_000

# Native sequences' statements, per definition (they name a database object each).
_STATEMENTS_KEPT = 4096


@dataclass(frozen=True)
class NativeSequence:
    """A database SEQUENCE object: fast, never blocks other transactions, not gapless.

    Runs on PostgreSQL, MariaDB 10.3 and later, and Oracle (compile-tested only); other
    databases raise `SequenceConfigError` at registration. Values are unique and
    increasing, but a rolled-back or cached value is never given back. *cache* is how
    many values each connection reserves at once (None: the database's default; 1 for a
    resetting sequence, whose cycle may be shorter than that default).
    """

    cache: int | None = None
    kind: ClassVar[str] = "native"
    counts_in_rows: ClassVar[bool] = False
    gapless: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.cache is not None and (
            isinstance(self.cache, bool)
            or not isinstance(self.cache, int)
            or not 1 <= self.cache <= CACHE_MAX
        ):
            raise SequenceConfigError(
                f"cache must be None or an integer from 1 to {CACHE_MAX:,}, not {self.cache!r} "
                "(PostgreSQL computes the cached values one by one in nextval, holding the "
                "sequence; PooledSequence hands out larger blocks from memory)"
            )

    def check(self, dialect: Dialect, definition: Definition) -> None:
        """Refuse databases without SEQUENCE objects, and settings their CREATE SEQUENCE refuses.

        Before any SQL: a cycle of one value everywhere, and each database's own limits
        (`sequence_refusal`: MariaDB's range and CACHE times INCREMENT BY, Oracle's CACHE).
        """
        if not dialect.supports_sequences:
            raise SequenceConfigError(
                f"{dialect.name} has no SEQUENCE objects: use TableSequence (gapless) "
                "or PooledSequence (fast) there"
            )
        if definition.reset is not None and cycle_length(definition) == 1:
            refusal: str | None = (
                "a cycle of one value (reset is within one step of start), and a SEQUENCE "
                "needs MINVALUE below MAXVALUE"
            )
        else:
            refusal = sequence_refusal(dialect, self.sequence(definition))
        if refusal is not None:
            raise SequenceConfigError(
                f"{definition.name!r}: NativeSequence cannot have {self._settings(definition)} "
                f"on this database: {refusal}; TableSequence takes any settings"
            )

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None:
        refuse_native_sequences(session, definition.name)
        try:
            _run_ddl(session, CreateSequence(self.sequence(definition), if_not_exists=True))
        except DBAPIError as exc:
            # A limit `check` does not know (another server version): said as clearly.
            if is_sequence_refused(exc):
                raise SequenceConfigError(
                    f"{definition.name!r}: the database refused a SEQUENCE with "
                    f"{self._settings(definition)} ({exc.orig}); TableSequence takes any settings"
                ) from exc
            raise
        if definition.key:
            # A template's counter: its row lists the key (its value stays unused).
            create_missing(session, Counter, _counter_row(definition), nowait=nowait)

    def next(self, session: SessionLike, definition: Definition) -> int:
        with _exhaustion(definition):
            return int(session.execute(_next_value(self, definition)).scalar_one())

    def next_many(self, session: SessionLike, definition: Definition, count: int) -> Sequence[int]:
        if count == 1:
            return [self.next(session, definition)]
        with _exhaustion(definition):
            # all() fetches in one go; iterating would fetch row by row (measured: 3x slower).
            # In the order the database handed them out: a cycle may wrap within them.
            values = list(session.execute(_next_values(self, definition, count)).scalars().all())
        if definition.reset is not None or definition.step < 0:
            return values
        return _contiguous(values, definition.step)

    def last(self, session: SessionLike, definition: Definition) -> int | None:
        """The database's current value: the last value taken or reserved by any connection's
        cache (exact with ``cache=1``); None before the first. After a restart, the value
        before the one it set, as `TableSequence` answers (None for a restart at start)."""
        value = session.execute(CurrentValue(self.sequence(definition))).scalar_one_or_none()
        return None if value is None else int(value)

    def reached(self, session: SessionLike, definition: Definition) -> int | None:
        return self.last(session, definition)

    def restart(self, session: SessionLike, definition: Definition, value: int) -> None:
        """ALTER SEQUENCE ... RESTART in the caller's transaction where DDL is transactional
        (PostgreSQL: it waits for transactions that used the sequence and blocks others
        until the caller's ends). Elsewhere (MariaDB) a move forward is a SETVAL on the
        caller's connection, and a move back an ALTER SEQUENCE committed apart at once,
        which waits a few seconds at most for the transactions that used the sequence
        (the caller's own included): `SequenceLocked` then."""
        sequence = self.sequence(definition)
        if caches_per_connection(dialect_of(session)) and (sequence.cache or 1) > 1:
            # Values other connections cached stay theirs (PostgreSQL): only forward is safe.
            # After a restart, reached() is the value before it, so the refusal holds across
            # restarts; back at start it reads as fresh (None), which only a sequence that had
            # reached nothing can get to, since any other is refused here.
            refuse_behind(
                definition,
                value,
                self.reached(session, definition),
                "other connections may still hold cached values up to it",
            )
        if ddl_is_transactional(dialect_of(session)):
            _run_ddl(session, RestartSequence(sequence, value))
        else:
            _restart_apart(session, definition, sequence, value)

    def delete(self, session: SessionLike, definition: Definition) -> None:
        _run_ddl(session, DropSequence(self.sequence(definition), if_exists=True))

    def sequence(self, definition: Definition) -> sa.Sequence:
        """Return the database SEQUENCE that holds *definition*'s values."""
        return _database_sequence(self, definition)

    def _settings(self, definition: Definition) -> str:
        settings = {**definition.settings(), "cache": self.cache}
        return ", ".join(f"{key}={value}" for key, value in settings.items() if value is not None)

    def insert(
        self, session: SessionLike, definition: Definition, into: Target, row: dict[str, Any]
    ) -> int:
        """Insert *row* numbered with the sequence's next value: one statement (``nextval``
        inside the INSERT) where INSERT ... RETURNING exists and the row goes to the
        sequence's database, else two."""
        if not (dialect_of(session).insert_returning and into.with_counters(session)):
            number = self.next(session, definition)
            into.insert(session, [row], [number])
            return number
        statement = _native_insert(self, definition, into)
        if observed(session):
            statement = seen(statement)
        with _exhaustion(definition):
            return int(into.execute(session, statement, row).scalar_one())


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _next_value(strategy: NativeSequence, definition: Definition) -> Any:
    return sa.select(strategy.sequence(definition).next_value())


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _next_values(strategy: NativeSequence, definition: Definition, count: int) -> NextValues:
    return NextValues(strategy.sequence(definition), count)


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _native_insert(strategy: NativeSequence, definition: Definition, into: Target) -> Any:
    number = strategy.sequence(definition).next_value()
    insert = sa.insert(into.table).values({into.column: number})
    return insert.returning(into.table.c[into.column].label("value"))


@lru_cache(maxsize=_STATEMENTS_KEPT)
def _database_sequence(strategy: NativeSequence, definition: Definition) -> sa.Sequence:
    step, cycle = definition.step, definition.reset is not None
    low, high = (definition.start, None) if step > 0 else (None, definition.start)
    if cycle:
        last = definition.start + step * (cycle_length(definition) - 1)
        low, high = (definition.start, last) if step > 0 else (last, definition.start)
    cache = strategy.cache if strategy.cache is not None or not cycle else 1
    return sa.Sequence(
        native_name(definition.name, definition.key),
        start=definition.start,
        increment=step,
        minvalue=low,
        maxvalue=high,
        cycle=cycle or None,  # None leaves out NO CYCLE, the default everywhere
        cache=cache,
    )


def native_name(name: str, key: str = "") -> str:
    """Return the name of the database SEQUENCE behind sequence *name* (a template's: and *key*).

    A readable part and a digest of the whole name: never more than 30 characters of
    ``[a-z0-9_]``, so any name is safe on every database, and distinct names stay distinct.

    >>> native_name("Invoice 2026/A")
    'mseq_invoice_2026_a_2a32b2eee1'
    """
    readable = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:14].strip("_")
    whole = name if not key else f"{name}\x00{key}"  # NUL is in neither
    digest = hashlib.sha256(whole.encode("utf-8")).hexdigest()[:10]
    return f"mseq_{readable}_{digest}" if readable else f"mseq_{digest}"


def _run_ddl(session: SessionLike, ddl: ExecutableDDLElement) -> None:
    """Run *ddl* in the caller's transaction where DDL is transactional, else apart."""
    if ddl_is_transactional(dialect_of(session)):
        connection_of(session).execute(ddl)
        return
    with side_engine(engine_of(session)).begin() as connection:
        connection.execute(ddl)


@contextmanager
def _exhaustion(definition: Definition) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if is_sequence_exhausted(exc):
            raise SequenceExhausted(f"{definition.name!r} reached its limit") from exc
        raise


# How long an ALTER SEQUENCE committed apart waits for the transactions that used the
# sequence (MariaDB's metadata locks): the caller's own would never end while it waits.
_APART_DDL_WAIT_SECONDS = 5


def _restart_apart(
    session: SessionLike,
    definition: Definition,
    sequence: sa.Sequence,
    value: int,
) -> None:
    # Apart, so that the caller's transaction holds no metadata lock on the sequence that the
    # ALTER below would wait for. Forward: SETVAL, which takes effect at once (as NEXTVAL
    # does) without DDL; it answers NULL where it would move back, leaving the sequence be.
    try:
        with side_engine(engine_of(session)).connect() as connection:
            moved = connection.execute(SetSequenceValue(sequence, value)).scalar()
            connection.commit()
            if moved is not None:
                return
            previous = ddl_lock_wait(connection, _APART_DDL_WAIT_SECONDS)
            try:
                connection.execute(RestartSequence(sequence, value))
            finally:
                ddl_lock_wait(connection, previous)
            connection.commit()
    except DBAPIError as exc:
        if is_lock_timeout(exc):
            raise SequenceLocked(
                f"{definition.name!r}: moving a native sequence back is an ALTER SEQUENCE "
                "here, which waits for every transaction that used the sequence; restart it "
                "from a transaction that has not used it"
            ) from exc
        raise
