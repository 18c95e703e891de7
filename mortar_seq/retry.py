"""Running a unit of work again, in a transaction of its own, after a transient fault."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from . import commit_marker
from .db.driver_errors import is_connection_lost, is_transient
from .errors import SequenceConfigError

T = TypeVar("T")
S = TypeVar("S", bound=Session)
AS = TypeVar("AS", bound=AsyncSession)

# Full jitter (a pause drawn between 0 and a ceiling that doubles up to a cap): transactions
# that met each other do not meet again at once (writers on several Galera nodes, a failover).
_FIRST_CEILING_SECONDS = 0.05
_LONGEST_CEILING_SECONDS = 2.0
_UNKNOWN_OUTCOME = (
    "mortar_seq: the connection was lost during COMMIT; the transaction may have committed"
)
_SYNC_BINDS: tuple[type, ...] = (sa.Engine, sessionmaker)
_ASYNC_BINDS: tuple[type, ...] = (AsyncEngine, async_sessionmaker)


def worth_retrying(error: BaseException) -> bool:
    """Tell whether *error* is a transient fault after which the whole transaction may run again.

    True for deadlocks, serialization failures, lock wait timeouts, failed Galera
    certifications, a lost connection and a server failing over, shutting down or starting
    up; false for everything else (integrity errors, bad SQL, :class:`SequenceError`...).
    *error* may be SQLAlchemy's ``DBAPIError`` or the driver's own exception (what
    zope.sqlalchemy hands to its retry hook).

    .. versionadded:: 0.1
    """
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or (error.orig is not None and is_transient(error.orig))
    return is_transient(error)


@overload
def run_in_transaction(
    bind: sa.Engine, work: Callable[[sa.Connection], T], *, timeout: float = ...
) -> T: ...
@overload
def run_in_transaction(
    bind: sessionmaker[S], work: Callable[[S], T], *, timeout: float = ...
) -> T: ...
def run_in_transaction(bind: Any, work: Callable[[Any], T], *, timeout: float = 60.0) -> T:
    """Run ``work(session)`` in a new transaction and commit it; again after a transient fault.

    *bind* is an ``Engine`` (*work* gets a ``Connection`` in ``engine.begin()``) or a
    ``sessionmaker`` (*work* gets a ``Session`` in ``session.begin()``). Each attempt is a
    transaction of its own: a fault rolls back everything *work* did, values taken from a
    sequence included, so a gapless sequence stays gapless; *work* must therefore have no
    effect outside it. Attempts go on, after a random growing pause, for up to *timeout*
    seconds; then the last fault is raised. Any other error is raised at once, and so is a
    connection lost during the COMMIT itself: that attempt may have committed.

    .. versionadded:: 0.1
    """
    deadline = _deadline(timeout)
    if isinstance(bind, sa.Engine):
        begin: Callable[[], Any] = bind.begin
    elif isinstance(bind, sessionmaker):
        begin = bind.begin
    else:
        raise _wrong_bind(bind, "an Engine or a sessionmaker", _ASYNC_BINDS, "_async")
    attempt = 0
    while True:
        mark: _Mark | None = None
        committing = False
        try:
            with begin() as session:
                # First, not last: it then never lengthens the time a series stays locked.
                mark = _mark(_connection(session))
                result = work(session)
                committing = True
            if mark is not None:
                _acknowledged(*mark)
            return result
        except Exception as error:
            if committing and _cut_off(error):
                if mark is None:
                    error.add_note(_UNKNOWN_OUTCOME)
                    raise
                if _committed(*mark, deadline, error):
                    _acknowledged(*mark)
                    return result
            pause = _pause(error, attempt, deadline)
            if pause is None:
                raise
        time.sleep(pause)
        attempt += 1


@overload
async def run_in_transaction_async(
    bind: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], *, timeout: float = ...
) -> T: ...
@overload
async def run_in_transaction_async(
    bind: async_sessionmaker[AS], work: Callable[[AS], Awaitable[T]], *, timeout: float = ...
) -> T: ...
async def run_in_transaction_async(
    bind: Any, work: Callable[[Any], Awaitable[T]], *, timeout: float = 60.0
) -> T:
    """Run ``await work(session)`` in a new transaction, commit it; again after a transient fault.

    As :func:`run_in_transaction`, with an ``AsyncEngine`` (*work* gets an
    ``AsyncConnection``) or an ``async_sessionmaker`` (*work* gets an ``AsyncSession``);
    the pauses do not block the event loop.

    .. versionadded:: 0.1
    """
    deadline = _deadline(timeout)
    if isinstance(bind, AsyncEngine):
        begin: Callable[[], Any] = bind.begin
    elif isinstance(bind, async_sessionmaker):
        begin = bind.begin
    else:
        raise _wrong_bind(bind, "an AsyncEngine or an async_sessionmaker", _SYNC_BINDS, "")
    attempt = 0
    while True:
        mark: _AsyncMark | None = None
        committing = False
        try:
            async with begin() as session:
                mark = await _mark_async(session)
                result = await work(session)
                committing = True
            if mark is not None:
                await _acknowledged_async(*mark)
            return result
        except Exception as error:
            if committing and _cut_off(error):
                if mark is None:
                    error.add_note(_UNKNOWN_OUTCOME)
                    raise
                if await _committed_async(*mark, deadline, error):
                    await _acknowledged_async(*mark)
                    return result
            pause = _pause(error, attempt, deadline)
            if pause is None:
                raise
        await asyncio.sleep(pause)
        attempt += 1


_Mark = tuple[sa.Engine, str]
_AsyncMark = tuple[AsyncEngine, str]


def _connection(session: sa.Connection | Session) -> sa.Connection:
    return session if isinstance(session, sa.Connection) else session.connection()


def _mark(connection: sa.Connection) -> _Mark | None:
    """Write this attempt's marker in its transaction; None where none is needed."""
    if not commit_marker.needs_marker(connection.dialect):
        return None
    token = commit_marker.new_token()
    commit_marker.write_marker(connection, token)
    return connection.engine, token


async def _mark_async(session: AsyncConnection | AsyncSession) -> _AsyncMark | None:
    connection = session if isinstance(session, AsyncConnection) else await session.connection()
    mark = await connection.run_sync(_mark)
    return None if mark is None else (connection.engine, mark[1])


def _acknowledged(engine: sa.Engine, token: str) -> None:
    batch = commit_marker.acknowledged(engine, token)
    if batch:
        try:
            with engine.begin() as connection:
                commit_marker.delete(connection, batch)
        except DBAPIError as error:
            commit_marker.not_deleted(engine, batch, error)


async def _acknowledged_async(engine: AsyncEngine, token: str) -> None:
    batch = commit_marker.acknowledged(engine.sync_engine, token)
    if batch:
        try:
            async with engine.begin() as connection:
                await connection.run_sync(commit_marker.delete, batch)
        except DBAPIError as error:
            commit_marker.not_deleted(engine.sync_engine, batch, error)


def committed(engine: sa.Engine, token: str, *, deadline: float) -> bool:
    """Tell whether the attempt that wrote marker *token* committed, asking fresh connections
    until one answers (a failover may be under way) or *deadline* passes."""
    attempt = 0
    while True:
        try:
            with engine.connect() as connection:
                return commit_marker.found(connection, token, deadline - time.monotonic())
        except Exception as error:
            pause = _pause(error, attempt, deadline)
            if pause is None:
                raise
        time.sleep(pause)
        attempt += 1


async def committed_async(engine: AsyncEngine, token: str, *, deadline: float) -> bool:
    """As `committed`, on an ``AsyncEngine``."""
    attempt = 0
    while True:
        try:
            async with engine.connect() as connection:
                seconds = deadline - time.monotonic()
                return await connection.run_sync(commit_marker.found, token, seconds)
        except Exception as error:
            pause = _pause(error, attempt, deadline)
            if pause is None:
                raise
        await asyncio.sleep(pause)
        attempt += 1


def _committed(engine: sa.Engine, token: str, deadline: float, cut_off: Exception) -> bool:
    try:
        return committed(engine, token, deadline=deadline)
    except Exception as error:
        cut_off.add_note(f"{_UNKNOWN_OUTCOME}; finding out failed: {error!r}")
        raise cut_off from error


async def _committed_async(
    engine: AsyncEngine, token: str, deadline: float, cut_off: Exception
) -> bool:
    try:
        return await committed_async(engine, token, deadline=deadline)
    except Exception as error:
        cut_off.add_note(f"{_UNKNOWN_OUTCOME}; finding out failed: {error!r}")
        raise cut_off from error


def _deadline(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout >= 0):
        raise SequenceConfigError(f"timeout must be a finite number of seconds >= 0, not {timeout}")
    return time.monotonic() + timeout


def _wrong_bind(
    bind: object, expected: str, other_kinds: tuple[type, ...], suffix: str
) -> TypeError:
    hint = f"; use run_in_transaction{suffix}()" if isinstance(bind, other_kinds) else ""
    return TypeError(f"bind must be {expected}, not {type(bind).__name__}{hint}")


def _pause(error: Exception, attempt: int, deadline: float) -> float | None:
    """How long to wait before the next attempt, or None to raise *error*."""
    if not worth_retrying(error) or (left := deadline - time.monotonic()) <= 0:
        return None
    ceiling = min(_LONGEST_CEILING_SECONDS, _FIRST_CEILING_SECONDS * 2 ** min(attempt, 32))
    return min(left, random.uniform(0, ceiling))


def _cut_off(error: Exception) -> bool:
    """Tell whether *error* is the connection lost during the COMMIT (or in the last moment
    before it), so that the COMMIT may or may not have happened."""
    if not worth_retrying(error):
        return False
    if isinstance(error, DBAPIError):
        if error.statement is not None:  # lost in a statement (a flush), before any COMMIT
            return False
        return error.connection_invalidated or (
            error.orig is not None and is_connection_lost(error.orig)
        )
    return is_connection_lost(error)
