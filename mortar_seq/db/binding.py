"""What a caller's session (an ORM Session or a Core Connection) is bound to."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import Session, scoped_session

from ..model import Counter

# A scoped_session (Flask-SQLAlchemy's db.session) stands for the Session it proxies.
SessionLike = Session | Connection | scoped_session[Any]
# What check_session lets through at once; call sites on hot paths test it inline.
SESSIONS = (Session, Connection)


def dialect_of(session: SessionLike) -> Dialect:
    if isinstance(session, Connection):
        return session.dialect
    if not isinstance(session, Session):
        check_session(session)
    return session.get_bind(Counter).dialect


def engine_of(session: SessionLike) -> Engine:
    if isinstance(session, Connection):
        return session.engine
    if not isinstance(session, Session):
        check_session(session)
    bind = session.get_bind(Counter)
    return bind.engine if isinstance(bind, Connection) else bind


def connected_dialect(session: SessionLike) -> Dialect:
    """Return the dialect as the first connection has set it up (MariaDB behind mysql://)."""
    return connection_of(session).dialect


def connection_of(session: SessionLike) -> Connection:
    """Return the connection (in the caller's transaction) that statements on our tables use."""
    if isinstance(session, Connection):
        return session
    if not isinstance(session, Session):
        check_session(session)
    return session.connection(bind_arguments={"mapper": Counter})


def check_session(session: object, call: str = "", *others: object) -> None:
    """Raise a `TypeError` saying what to pass instead, unless *session* can be one.

    Cheap where it matters: a Session or a Connection costs one isinstance. *call* and
    *others* (the call's other arguments) let a session passed in the wrong place be named.
    """
    if isinstance(session, (*SESSIONS, scoped_session)):
        return
    kind = type(session).__name__
    if hasattr(session, "run_sync"):  # AsyncSession, AsyncConnection, async_scoped_session
        name = "connection" if hasattr(session, "sync_connection") else "session"
        raise TypeError(
            f"mortar_seq calls are synchronous; with an {kind}, call them through run_sync: "
            f"await {name}.run_sync(seq.next)"
        )
    if isinstance(session, Engine):
        raise TypeError(
            f"pass a Session or a Connection (engine.begin()), not an {kind}: "
            "values are taken in the caller's transaction"
        )
    if hasattr(session, "sync_engine"):  # AsyncEngine
        raise TypeError(
            f"pass a Session or a Connection (engine.begin()), not an {kind}: with asyncio, "
            "async with engine.begin() as connection: await connection.run_sync(seq.next)"
        )
    if call and any(isinstance(other, (*SESSIONS, scoped_session)) for other in others):
        raise TypeError(f"the session comes first: {call}(session, ...); got {kind} first")
    if not hasattr(session, "execute"):  # anything else a Session would be used as
        raise TypeError(f"pass a Session or a Connection, not {kind}")


# Where SQLAlchemy 2.0 differs from 2.1 in what the library relies on.
SQLALCHEMY_2_0 = tuple(int(part) for part in sa.__version__.split(".")[:2]) < (2, 1)


def autoflush(session: Session | scoped_session[Any]) -> None:
    """Flush *session* before one of the library's statements, as SQLAlchemy 2.1 does.

    2.1 flushes a Session before every statement it executes; 2.0 only before ORM-enabled
    ones, and a row the library inserts may refer to an object not yet flushed.
    """
    if SQLALCHEMY_2_0 and session.autoflush:
        session.flush()
