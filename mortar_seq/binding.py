"""What a caller's session (an ORM Session or a Core Connection) is bound to."""

from __future__ import annotations

from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import Session

from .model import Counter

SessionLike = Session | Connection


def dialect_of(session: SessionLike) -> Dialect:
    if isinstance(session, Connection):
        return session.dialect
    return session.get_bind(Counter).dialect


def engine_of(session: SessionLike) -> Engine:
    bind = session if isinstance(session, Connection) else session.get_bind(Counter)
    return bind.engine if isinstance(bind, Connection) else bind


def connection_of(session: SessionLike) -> Connection:
    """Return the connection (in the caller's transaction) that statements on our tables use."""
    if isinstance(session, Connection):
        return session
    return session.connection(bind_arguments={"mapper": Counter})
