"""Running the library's own short transactions again after a write conflict.

On a Galera cluster a transaction that touches a row another node wrote at the same time
fails certification (error 1213, "Deadlock found"), at any statement or at COMMIT, and a
node that is joining refuses work for a moment (error 1047). The library's own short
transactions (a row created apart, a pooled block reserved) run again in that case, a
bounded number of times with a random pause, so that such conflicts reach the caller
only from the caller's own transaction.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from .driver_errors import is_write_conflict

T = TypeVar("T")

ATTEMPTS = 8
_FIRST_PAUSE_SECONDS = 0.005
_LONGEST_PAUSE_SECONDS = 0.25


def retrying(work: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Return ``work()``, run again after a write conflict up to *attempts* times in all.

    *work* must be a whole transaction of the library's own: a conflict rolled it back.
    The last conflict reaches the caller as it is.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            if attempt == attempts or not is_write_conflict(exc):
                raise
        # Full jitter: transactions that met each other do not meet again at once.
        ceiling = min(_LONGEST_PAUSE_SECONDS, _FIRST_PAUSE_SECONDS * 2**attempt)
        time.sleep(random.uniform(0, ceiling))
    raise AssertionError("not reached")
