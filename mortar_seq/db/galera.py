"""Galera clusters (MariaDB's multi-primary replication): what they cannot hold.

A Galera node refuses a cached SEQUENCE (error 1235: "CACHE without INCREMENT BY 0 in
Galera cluster"), and a ``NOCACHE`` one with ``INCREMENT BY 1`` hands out the same value on
two nodes at once. ``INCREMENT BY 0`` takes values by each node's
``auto_increment_offset``, which the cluster renumbers whenever a node leaves or joins, so
a node may then hand out a value another one handed out before: `NativeSequence` is refused
there, and `PooledSequence` does that job.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import SequenceConfigError
from .binding import SessionLike, connection_of

# Galera is a MariaDB (and MySQL) matter only; other dialects have no such variable.
_MYSQL_FAMILY = frozenset({"mysql", "mariadb"})
_WSREP_ON = sa.text("SHOW VARIABLES LIKE 'wsrep_on'")


def is_galera(session: SessionLike) -> bool:
    """Tell whether *session*'s server is a node of a Galera cluster (``wsrep_on`` is ON)."""
    connection = connection_of(session)
    if connection.dialect.name not in _MYSQL_FAMILY:
        return False
    row = connection.execute(_WSREP_ON).first()
    return row is not None and str(row[1]).upper() == "ON"


def refuse_native_sequences(session: SessionLike, name: str) -> None:
    """Raise `SequenceConfigError` where *session*'s server is a Galera node."""
    if is_galera(session):
        raise SequenceConfigError(
            f"{name!r}: NativeSequence cannot run on a Galera cluster (its SEQUENCE objects "
            "hand out duplicates across nodes): use PooledSequence (fast, unique) or "
            "TableSequence (gapless) there"
        )
