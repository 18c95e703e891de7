"""Run a unit of work in a transaction of its own, and again after a fault worth retrying."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

T = TypeVar("T")

# Serialization failure, deadlock and lock timeout (SQLSTATE, PostgreSQL), deadlock and
# lock wait timeout (MariaDB error numbers), SQLITE_BUSY.
RETRY_SQLSTATES = {"40001", "40P01", "55P03"}
RETRY_MARIADB_ERRORS = {1205, 1213}
RETRY_SQLITE_ERRORS = {5}


def worth_retrying(error: sa.exc.DBAPIError) -> bool:
    """Tell whether the whole transaction may simply run again."""
    if error.connection_invalidated:  # the connection was lost: a new one will do
        return True
    driver_error = error.orig
    sqlstate = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
    number = getattr(driver_error, "args", (None,))[0]
    sqlite_code = getattr(driver_error, "sqlite_errorcode", None)
    return (
        sqlstate in RETRY_SQLSTATES
        or number in RETRY_MARIADB_ERRORS
        or sqlite_code in RETRY_SQLITE_ERRORS
    )


def run_in_transaction(engine: sa.Engine, work: Callable[[Session], T], *, attempts: int = 5) -> T:
    """Run ``work(session)`` in a new transaction and commit it; retry it on a transient fault.

    Everything *work* did is rolled back before it runs again, values taken from a
    sequence included, so a gapless sequence stays gapless.
    """
    for attempt in range(1, attempts + 1):
        try:
            with Session(engine) as session, session.begin():
                return work(session)
        except sa.exc.DBAPIError as error:
            if attempt == attempts or not worth_retrying(error):
                raise
    raise AssertionError("not reached")
