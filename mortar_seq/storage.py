"""Reading, creating and deleting the library's rows, race-free."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from .db.binding import SessionLike, connection_of, dialect_of, engine_of
from .db.conflicts import retrying
from .db.dialects import BoundedInsert, bounds_one_statement, insert_unless_present, lock_wait
from .db.driver_errors import is_lock_timeout, is_table_missing
from .db.locking import waiting_at_most
from .db.side import side_engine
from .errors import SequenceConfigError, SequenceLocked
from .model import Counter, StoredSequence

# How long a row created on a connection of its own may wait for another transaction's lock
# on the same key before it is created in the caller's transaction instead (see create_missing).
_APART_LOCK_WAIT_SECONDS = 1


@dataclass(frozen=True)
class Stored:
    """What is stored of a sequence or template: implementation and settings."""

    impl: str
    options: dict[str, Any]
    start: int
    step: int
    reset: int | None = None
    pattern: str | None = None  # templates only
    parent: str | None = None  # a template's parent template


def load(session: SessionLike, name: str) -> Stored | None:
    """Return what is stored of *name*, or None.

    Every first use of a name comes here before anything else touches the library's
    tables: where they are missing, `SequenceConfigError` says how to make them (the
    driver's error is its ``__cause__``; on PostgreSQL it has aborted the caller's
    transaction, which the caller rolls back).
    """
    query = _LOAD.where(StoredSequence.name == name)
    try:
        row = session.execute(query).one_or_none()
    except DBAPIError as exc:
        # The statement names our table alone: any missing table is ours.
        if is_table_missing(exc):
            raise SequenceConfigError(_tables_missing(session)) from exc
        raise
    if row is None and creates_apart(session) and not deleted_here(session, name):
        # Where rows are created on a connection of their own, they may be newer than the
        # caller's REPEATABLE READ snapshot. A locking read would see them, but on a missing
        # key it takes a gap lock that a later creation would wait for: look apart instead.
        # Not after the caller's own delete, which no other connection sees.
        with side_engine(engine_of(session)).connect() as connection:
            row = connection.execute(query).one_or_none()
    return None if row is None else Stored(*row)


def _tables_missing(session: SessionLike) -> str:
    shown = engine_of(session).url.render_as_string(hide_password=True)
    return (
        f"mortar_seq's tables are missing from database {shown}: create them with "
        "mortar_seq.create_tables(engine), or apply the shipped Alembic migrations "
        "(alembic upgrade mortar_seq@head)"
    )


_LOAD = sa.select(
    StoredSequence.impl,
    StoredSequence.options,
    StoredSequence.start,
    StoredSequence.step,
    StoredSequence.reset,
    StoredSequence.pattern,
    StoredSequence.parent,
)


def children(session: SessionLike, name: str) -> list[str]:
    """Return the stored templates whose parent is template *name*, as *session* sees them,
    those registered apart included (see `seen_apart`)."""
    query = sa.select(StoredSequence.name).where(StoredSequence.parent == name)
    found = set(session.execute(query).scalars())
    found.update(child for child in seen_apart(session, query) if not deleted_here(session, child))
    return sorted(found)


def seen_apart(session: SessionLike, query: sa.Select[Any]) -> list[Any]:
    """Run *query* on a connection of the library's, where rows are created apart (MariaDB).

    Those rows may be newer than the caller's REPEATABLE READ snapshot. A locking read in
    the caller's transaction would see them, but hold every writer of them (and, on a
    missing key, their creation) until the caller's transaction ends: a listing would
    stall the series it lists. A plain read on a fresh snapshot never locks nor waits; it
    does not see the caller's uncommitted work, so callers merge it with their own read
    and leave out what the caller's transaction deleted (`deleted_here`).
    """
    if not creates_apart(session):
        return []
    with side_engine(engine_of(session)).connect() as connection:
        return list(connection.execute(query).scalars())


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
    fresh: bool = False,
) -> bool:
    """Insert a row of *entity* unless its key exists, racing safely with others doing the same.

    Tell whether this call inserted it. In the caller's transaction where the dialect can
    do so safely, unless *apart* asks for a short transaction of its own (rows other
    connections must see at once). After the caller's own delete of that name, always in
    the caller's transaction: only it sees the row gone, and a connection of ours would
    wait for its lock. *fresh* says the caller has just looked and found no such row.
    """
    in_transaction = _insert_for(session, entity)
    deleted = deleted_here(session, str(values.get("name")))
    if in_transaction is None:
        in_transaction = sa.insert(entity).prefix_with("IGNORE", dialect="mysql")
    elif not apart:
        deleted = True  # the same path: in the caller's transaction
    if deleted:
        return _inserted(session.execute(in_transaction.values(values)))
    if not fresh and _present(session, entity, values):
        return False  # inserting it apart would wait for whoever holds the row
    try:
        return _insert_apart(side_engine(engine_of(session)), entity, values, nowait=nowait)
    except SequenceLocked:
        if nowait:
            raise
        # Another transaction holds a lock on that key: one that deleted the row or looked
        # for it while it was missing. The caller's transaction waits for it as usual.
        return _inserted(session.execute(in_transaction.values(values)))


def _inserted(result: Any) -> bool:
    return bool(cast("CursorResult[Any]", result).rowcount)


def _present(session: SessionLike, entity: type[Any], values: dict[str, Any]) -> bool:
    keys = [column == values[column.key] for column in sa.inspect(entity).primary_key]
    return session.execute(sa.select(sa.literal(1)).where(*keys)).first() is not None


def _insert_apart(
    engine: Engine, entity: type[Any], values: dict[str, Any], *, nowait: bool
) -> bool:
    """Insert in a short transaction of its own, committed at once; tell whether it inserted.

    A duplicate key means someone else created it first: nothing to do. Run again after a
    write conflict (Galera nodes creating the same name at once).
    """
    name = str(values.get("name"))

    def insert() -> bool:
        with engine.connect() as connection:
            try:
                if bounds_one_statement(connection.dialect):
                    # One round trip where the bound can go with the statement.
                    bounded = BoundedInsert(entity).values(values)
                    bounded.seconds = 0 if nowait else _APART_LOCK_WAIT_SECONDS
                    with _locked_as(name):
                        connection.execute(bounded)
                else:
                    # The savepoint (where errors abort a transaction) is rolled back first.
                    with briefly(connection, name, nowait=nowait):
                        connection.execute(sa.insert(entity).values(values))
            except IntegrityError:
                return False
            connection.commit()
        return True

    return retrying(insert)


@contextmanager
def _locked_as(name: str) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if is_lock_timeout(exc):
            raise SequenceLocked(f"{name!r} is locked by another transaction") from exc
        raise


@contextmanager
def briefly(connection: Connection, name: str, *, nowait: bool = False) -> Iterator[None]:
    """Bound how long the library's own *connection* waits for a lock on *name*'s rows.

    Its short transactions must never wait long for a caller's: running out raises
    `SequenceLocked`, and the work is then done in the caller's transaction instead.
    """
    bounded = lock_wait(connection.dialect) is not None
    seconds = (0 if nowait else _APART_LOCK_WAIT_SECONDS) if bounded else None
    with waiting_at_most(connection, seconds, name):
        yield


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
    _deleted_in(connection_of(session)).add(name)
    return cast("CursorResult[Any]", gone).rowcount > 0


def note_counter_deleted(session: SessionLike, name: str, key: str) -> None:
    """Remember that the caller's current transaction deleted the counter (*name*, *key*)."""
    _deleted_in(connection_of(session)).add((name, key))


_DELETED = "mortar_seq deleted"  # a key of Connection.info, the DBAPI connection's dict


def deleted_here(session: SessionLike, name: str) -> bool:
    """Tell whether the caller's current transaction deleted *name*: its rows are locked by
    the caller, so a connection of the library's would wait for them forever."""
    return name in _deleted_in(connection_of(session))


def counter_deleted_here(session: SessionLike, name: str, key: str) -> bool:
    """Tell whether the caller's current transaction deleted the counter (*name*, *key*)."""
    return (name, key) in _deleted_in(connection_of(session))


def _deleted_in(connection: Connection) -> set[str | tuple[str, str]]:
    """The names, and (name, key) of counters, deleted in *connection*'s current
    transaction; forgotten when it ends."""
    transaction = connection.get_transaction()
    if transaction is None:
        return set()
    owner, names = connection.info.get(_DELETED, (None, set()))
    if owner is None or owner() is not transaction:
        names = set()
        connection.info[_DELETED] = (weakref.ref(transaction), names)
    return cast("set[str | tuple[str, str]]", names)


def existing_keys(session: SessionLike, name: str, keys: Sequence[str]) -> list[str]:
    """Return which of *keys* are counters of *name*: a primary-key lookup, however many it has."""
    if not keys:
        return []
    return list(session.execute(_EXISTING_KEYS, {"name": name, "keys": keys}).scalars())


_EXISTING_KEYS = sa.select(Counter.key).where(
    Counter.name == sa.bindparam("name"), Counter.key.in_(sa.bindparam("keys", expanding=True))
)
