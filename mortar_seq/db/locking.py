"""Bounding how long statements wait for other transactions' locks: how ``nowait`` works."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError

from ..errors import SequenceConfigError, SequenceLocked
from .binding import SessionLike, connection_of, dialect_of
from .dialects import lock_wait
from .driver_errors import is_lock_timeout


@contextmanager
def waiting_at_most(session: SessionLike, seconds: int | None, name: str) -> Iterator[None]:
    """Run the block with lock waits bounded to *seconds*; running out raises `SequenceLocked`.

    ``None`` leaves waits as they are. The caller's transaction stays usable after a
    timeout: where an error would abort it (PostgreSQL), the block runs in a savepoint.
    """
    if seconds is None:
        yield
        return
    dialect = dialect_of(session)
    knob = lock_wait(dialect)
    if knob is None:
        raise SequenceConfigError(f"nowait is not supported on {dialect.name}")
    savepoint = session.begin_nested() if knob.aborts_transaction else None
    # Asked for after begin_nested(): a Session emits its SAVEPOINT only when next used.
    connection = connection_of(session)
    previous = None
    try:
        previous = knob.swap(connection, seconds)
        yield
    except BaseException as exc:
        if savepoint is not None:
            savepoint.rollback()  # undoes the swap as well
        elif previous is not None:
            knob.restore(connection, previous)
        if isinstance(exc, DBAPIError) and is_lock_timeout(exc):
            raise SequenceLocked(f"{name!r} is locked by another transaction") from exc
        raise
    knob.restore(connection, previous)
    if savepoint is not None:
        savepoint.commit()
