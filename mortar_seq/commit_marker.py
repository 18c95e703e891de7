"""Finding out whether a COMMIT whose answer was lost committed: a marker row in the unit.

`run_in_transaction` writes a random token into ``mortar_seq_commit_marker`` in each
attempt's transaction. When the connection is lost during the COMMIT, it asks a fresh
connection: inserting the same token fails if the attempt committed, succeeds if it did not
(and is rolled back at once), and waits while that attempt's transaction is still under way
on the server, so the answer never comes too early. Markers of acknowledged units are
deleted in batches by a later unit of the same process; those of processes that stopped
are swept after a day by any process.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
import weakref

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from .db.dialects import lock_wait
from .db.driver_errors import is_table_missing
from .db.galera import is_galera
from .errors import SequenceConfigError
from .model import CommitMarker

KEPT_SECONDS = 86_400  # markers older than this are swept, whoever wrote them
CLEAN_EVERY = 100  # acknowledged markers a process deletes at a time
_REMEMBERED_AT_MOST = 100_000  # beyond this (clean-ups failing), the sweep deletes them

_log = logging.getLogger("mortar_seq")


def needs_marker(dialect: Dialect) -> bool:
    """Tell whether a COMMIT on *dialect* can be cut off: not SQLite's, made in the process."""
    return dialect.name != "sqlite"


def new_token() -> str:
    return secrets.token_hex(16)


def write_marker(connection: Connection, token: str) -> None:
    """Insert *token* in *connection*'s transaction."""
    try:
        connection.execute(sa.insert(CommitMarker).values(token=token, written_at=int(time.time())))
    except DBAPIError as exc:
        if is_table_missing(exc):
            raise SequenceConfigError(
                "run_in_transaction writes a marker in each transaction, and table "
                "mortar_seq_commit_marker is missing: apply the shipped Alembic migrations "
                "(alembic upgrade mortar_seq@head) or mortar_seq.create_tables(engine)"
            ) from exc
        raise


def found(connection: Connection, token: str, seconds: float) -> bool:
    """Tell, in a transaction of its own on fresh *connection*, whether *token* was committed.

    Waits up to *seconds* for a transaction that still holds the token; a longer wait is
    the server's lock-timeout error. The connection's settings are changed for the question,
    so it is invalidated afterwards rather than pooled.
    """
    try:
        with connection.begin() as transaction:
            if is_galera(connection):
                # Apply what the cluster has already ordered before reading (a commit
                # replicated by a node that died may not have been applied here yet).
                connection.exec_driver_sql("SET SESSION wsrep_sync_wait = 15")
            knob = lock_wait(connection.dialect)
            if knob is not None:
                knob.swap(connection, max(1, math.ceil(seconds)))
            try:
                connection.execute(sa.insert(CommitMarker).values(token=token, written_at=0))
            except IntegrityError:
                return True
            finally:
                transaction.rollback()
            return False
    finally:
        connection.invalidate()


class _Acknowledged:
    """The tokens of one engine's acknowledged units, waiting to be deleted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: list[str] = []

    def add(self, token: str) -> list[str]:
        """Remember *token*; return a batch to delete now, or nothing."""
        with self._lock:
            self._tokens.append(token)
            del self._tokens[:-_REMEMBERED_AT_MOST]
            if len(self._tokens) < CLEAN_EVERY:
                return []
            batch, self._tokens = self._tokens, []
            return batch

    def give_back(self, batch: list[str]) -> None:
        with self._lock:
            self._tokens[:0] = batch


_acknowledged: weakref.WeakKeyDictionary[Engine, _Acknowledged] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def acknowledged(engine: Engine, token: str) -> list[str]:
    """Remember that *token*'s unit committed; return a batch of markers to delete now."""
    with _registry_lock:
        tokens = _acknowledged.setdefault(engine, _Acknowledged())
    return tokens.add(token)


def delete(connection: Connection, batch: list[str]) -> None:
    """Delete the markers in *batch*, and every marker older than a day, on *connection*."""
    connection.execute(sa.delete(CommitMarker).where(CommitMarker.token.in_(batch)))
    cutoff = int(time.time()) - KEPT_SECONDS
    connection.execute(sa.delete(CommitMarker).where(CommitMarker.written_at < cutoff))


def not_deleted(engine: Engine, batch: list[str], error: Exception) -> None:
    """Keep *batch* for the next clean-up: its units are committed and acknowledged, and a
    failing clean-up must never make them look failed."""
    _log.warning("mortar_seq: commit markers not deleted this time (%s)", error)
    with _registry_lock:
        tokens = _acknowledged.get(engine)
    if tokens is not None:
        tokens.give_back(batch)
