"""Numbering at commit: what each transaction registered to be numbered, savepoints included.

Keyed by the caller's Session or Connection, weakly, so that nothing outlives them.
"""

from __future__ import annotations

import collections.abc as abc
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.sql.elements import ColumnElement

from ..db.binding import SessionLike
from ..definition import Definition
from ..strategies import SequenceStrategy
from ..strategies.targets import Target


class Series(Protocol):
    """What numbering needs of a `Sequence`."""

    @property
    def definition(self) -> Definition: ...

    @property
    def strategy(self) -> SequenceStrategy: ...


@runtime_checkable
class Labelled(Series, Protocol):
    """What numbering needs of a template's counter besides: its identifiers."""

    def prepare(self, session: SessionLike, *, again: bool) -> None:
        """Make sure the counter exists (*again*: it was found missing)."""

    def texts(self, numbers: abc.Sequence[int]) -> list[str]:
        """The identifiers of *numbers*; raise `TemplateError` for one it must not issue."""

    def in_sql(self) -> abc.Callable[[ColumnElement[Any]], ColumnElement[Any]] | None:
        """SQL writing the identifier of a number, where the database can (else None)."""


@dataclass
class Row:
    series: Series
    into: Target
    key: tuple[Any, ...] | None  # None for an ORM object: read from it at numbering
    obj: object = None
    attribute: str = ""
    by_default: bool = False  # written by a column default: perhaps an ORM object's row


@dataclass
class Pending:
    """What one transaction registered, and where each savepoint began."""

    transaction: object
    rows: list[Row] = field(default_factory=list)
    marks: dict[object, int] = field(default_factory=dict)  # a Session's, by its savepoint
    stack: list[int] = field(default_factory=list)  # a Connection's, innermost last
    failed: bool = False  # numbering raised: the transaction must not commit


lock = threading.Lock()


# Keyed by the caller's Session or Connection, weakly: nothing outlives them.
pending_rows: WeakKeyDictionary[Any, Pending] = WeakKeyDictionary()


# Column defaults numbering at commit: the rows an INSERT's execution is writing, until it
# has run and tells their primary keys; and the Session each connection works for.
awaiting: WeakKeyDictionary[Any, list[tuple[Series, Target]]] = WeakKeyDictionary()


sessions: WeakKeyDictionary[Connection, weakref.ref[Session]] = WeakKeyDictionary()


def owner_of_session(session: SessionLike) -> Session | Connection:
    return session.registry() if isinstance(session, scoped_session) else session


def connection_for(owner: Session | Connection, into: Target) -> Connection:
    if isinstance(owner, Connection):
        return owner
    if into.mapper is not None:
        return owner.connection(bind_arguments={"mapper": into.mapper})
    return owner.connection(bind_arguments={"clause": into.table})


def root(owner: Session | Connection) -> object:
    return owner.get_transaction()


def current(owner: Session | Connection) -> Pending | None:
    with lock:
        pending = pending_rows.get(owner)
    if pending is not None and pending.transaction is not root(owner):
        forget(owner)  # left by an earlier transaction whose end was not seen
        return None
    return pending


def forget(owner: object) -> None:
    with lock:
        pending_rows.pop(owner, None)


# A Connection's savepoint event comes before its name is chosen: its savepoints are
# followed as a stack (they end innermost first).
def connection_savepoint(connection: Connection, name: str | None) -> None:
    with lock:
        pending = pending_rows.get(connection)
        if pending is not None:
            pending.stack.append(len(pending.rows))


def connection_release_savepoint(connection: Connection, name: str, context: Any) -> None:
    with lock:
        pending = pending_rows.get(connection)
        if pending is not None and pending.stack:
            pending.stack.pop()


def connection_rollback_savepoint(connection: Connection, name: str, context: Any) -> None:
    with lock:
        pending = pending_rows.get(connection)
        if pending is not None:
            del pending.rows[pending.stack.pop() if pending.stack else 0 :]


def mark(owner: object, savepoint: object) -> None:
    with lock:
        pending = pending_rows.get(owner)
        if pending is not None:
            pending.marks[savepoint] = len(pending.rows)


def undo(owner: object, savepoint: object) -> None:
    # Rows registered since the savepoint began go with it. One begun before the first row
    # was registered (unknown here) encloses them all.
    with lock:
        pending = pending_rows.get(owner)
        if pending is not None:
            del pending.rows[pending.marks.pop(savepoint, 0) :]
