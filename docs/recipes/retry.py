"""Run a unit of work in a transaction of its own, and again after a fault worth retrying."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

T = TypeVar("T")

# Serialization failure, deadlock and lock timeout; a server shutting down, starting up or
# read-only (a standby, during a failover); any connection exception (SQLSTATE, PostgreSQL).
RETRY_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "25006"}
RETRY_SQLSTATE_CLASSES = {"08"}
# Lock wait timeout and deadlock (on Galera also a failed certification); on Galera a node
# not ready ("WSREP has not yet prepared node") and a COMMIT refused while the node is out of
# the primary component (rolled back); server shutting down, cannot connect, server gone
# away, connection lost (MariaDB error numbers).
RETRY_MARIADB_ERRORS = {1205, 1213, 1047, 1180, 1053, 2002, 2003, 2006, 2013}
RETRY_SQLITE_ERRORS = {5}
# What libpq says, without a SQLSTATE, when connecting fails during a failover: the old
# primary is down, or no host is writable yet (target_session_attrs=read-write).
RETRY_CONNECT_MESSAGES = ("connection refused", "session is read-only", "server closed")


def worth_retrying(error: sa.exc.DBAPIError) -> bool:
    """Tell whether the whole transaction may simply run again."""
    if error.connection_invalidated:  # the connection was lost: a new one will do
        return True
    driver_error = error.orig
    sqlstate = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
    number = getattr(driver_error, "args", (None,))[0]
    sqlite_code = getattr(driver_error, "sqlite_errorcode", None)
    connecting = error.statement is None and isinstance(error, sa.exc.OperationalError)
    return (
        sqlstate in RETRY_SQLSTATES
        or str(sqlstate)[:2] in RETRY_SQLSTATE_CLASSES
        or number in RETRY_MARIADB_ERRORS
        or sqlite_code in RETRY_SQLITE_ERRORS
        or (connecting and any(text in str(driver_error) for text in RETRY_CONNECT_MESSAGES))
    )


def run_in_transaction(
    engine: sa.Engine,
    work: Callable[[Session], T],
    *,
    attempts: int = 30,
    first_pause: float = 0.01,
    longest_pause: float = 1.0,
) -> T:
    """Run ``work(session)`` in a new transaction and commit it; retry it on a transient fault.

    Everything *work* did is rolled back before it runs again, values taken from a
    sequence included, so a gapless sequence stays gapless. Between attempts it pauses a
    random time up to a ceiling that doubles from *first_pause* to *longest_pause*, so
    that transactions which met each other do not meet again at once (writers on several
    Galera nodes, a failover). The default budget rides out a failover of several seconds.
    """
    for attempt in range(1, attempts + 1):
        try:
            with Session(engine) as session, session.begin():
                return work(session)
        except sa.exc.DBAPIError as error:
            if attempt == attempts or not worth_retrying(error):
                raise
        time.sleep(random.uniform(0, min(longest_pause, first_pause * 2**attempt)))
    raise AssertionError("not reached")
