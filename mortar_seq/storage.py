"""Reading, creating and deleting the library's rows, race-free."""

from __future__ import annotations

from contextlib import suppress
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Engine, Row
from sqlalchemy.exc import IntegrityError

from .binding import SessionLike, dialect_of, engine_of
from .dialects import insert_unless_present, lock_wait
from .errors import SequenceLocked
from .locking import waiting_at_most
from .model import Counter, StoredSequence

# How long a row created on a connection of its own may wait for another transaction's lock
# on the same key before it is created in the caller's transaction instead (see create_missing).
_APART_LOCK_WAIT_SECONDS = 1


def load(session: SessionLike, name: str) -> Row[Any] | None:
    """Return what is stored of *name* (impl, options, settings, pattern, parent), or None."""
    stored = StoredSequence
    query = sa.select(
        stored.impl,
        stored.options,
        stored.start,
        stored.step,
        stored.reset,
        stored.pattern,
        stored.parent,
    )
    query = query.where(stored.name == name)
    row = session.execute(query).one_or_none()
    if row is None and creates_apart(session):
        # Where rows are created on a connection of their own, they may be newer than the
        # caller's REPEATABLE READ snapshot. A locking read would see them, but on a missing
        # key it takes a gap lock that a later creation would wait for: look apart instead.
        with engine_of(session).connect() as connection:
            row = connection.execute(query).one_or_none()
    return row


def _insert_for(session: SessionLike, entity: type[Any]) -> Any | None:
    return insert_unless_present(dialect_of(session), entity)


def creates_apart(session: SessionLike) -> bool:
    """Tell whether missing rows are created on a connection of their own (MariaDB)."""
    return _insert_for(session, Counter) is None


def create_missing(
    session: SessionLike,
    entity: type[Any],
    values: dict[str, Any],
    *,
    nowait: bool,
    apart: bool = False,
) -> None:
    """Insert a row of *entity* unless its key exists, racing safely with others doing the same.

    In the caller's transaction where the dialect can do so safely, unless *apart* asks
    for a short transaction of its own (rows other connections must see at once).
    """
    in_transaction = _insert_for(session, entity)
    if in_transaction is not None and not apart:
        session.execute(in_transaction.values(values))
        return
    if _present(session, entity, values):
        return  # inserting it apart would wait for whoever holds the row
    try:
        _insert_apart(engine_of(session), entity, values, nowait=nowait)
    except SequenceLocked:
        if nowait:
            raise
        # Another transaction holds a lock on that key: one that deleted the row or looked
        # for it while it was missing, perhaps the caller's own, which a connection of ours
        # would wait for forever. The caller's transaction waits for any other as usual.
        if in_transaction is None:
            in_transaction = sa.insert(entity).prefix_with("IGNORE", dialect="mysql")
        session.execute(in_transaction.values(values))


def _present(session: SessionLike, entity: type[Any], values: dict[str, Any]) -> bool:
    keys = [column == values[column.key] for column in sa.inspect(entity).primary_key]
    return session.execute(sa.select(sa.literal(1)).where(*keys)).first() is not None


def _insert_apart(
    engine: Engine, entity: type[Any], values: dict[str, Any], *, nowait: bool
) -> None:
    """Insert in a short transaction of its own, committed at once; a duplicate key is fine."""
    with engine.connect() as connection:
        bounded = lock_wait(connection.dialect) is not None
        seconds = (0 if nowait else _APART_LOCK_WAIT_SECONDS) if bounded else None
        name = str(values.get("name"))
        # A duplicate key means someone else created it first. The savepoint (where errors
        # abort a transaction) is rolled back before the error is ignored.
        with suppress(IntegrityError), waiting_at_most(connection, seconds, name):
            connection.execute(sa.insert(entity).values(values))
        connection.commit()


def stored_names(session: SessionLike) -> list[str]:
    """Return the names of the stored sequences, sorted."""
    query = sa.select(StoredSequence.name).order_by(StoredSequence.name)
    return list(session.execute(query).scalars())


def counter_keys(session: SessionLike, name: str) -> list[str]:
    """Return the keys of the counters of *name* (a template's: one per rendering)."""
    return list(session.execute(sa.select(Counter.key).where(Counter.name == name)).scalars())


def delete(session: SessionLike, name: str) -> bool:
    """Delete the stored rows of *name* in the caller's transaction; tell whether it existed."""
    unsynchronised = {"synchronize_session": False}
    session.execute(
        sa.delete(Counter).where(Counter.name == name).execution_options(**unsynchronised)
    )
    gone = session.execute(
        sa.delete(StoredSequence)
        .where(StoredSequence.name == name)
        .execution_options(**unsynchronised)
    )
    return cast("CursorResult[Any]", gone).rowcount > 0
