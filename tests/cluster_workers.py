"""Worker processes for the cluster scenarios (importable, for the spawn start method).

Each worker commits *target* transactions, each taking a value of every sequence in
*names* and of template "T"'s counter and recording them in test_issued, retrying with
the documented recipe. It reports ``(worker, acknowledged, retries, most_attempts,
error)``: the (sequence, value) pairs of the transactions whose COMMIT returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mortar_seq import SequenceLocked, get_sequence, get_template, retry

from .tables import issued

TEMPLATE = "T"
TEMPLATE_KEY = "k"


class RollBack(Exception):
    """Raised inside a unit of work to roll it back on purpose."""


def galera_creator(nodes: list[tuple[str, int]], database: str) -> Callable[[], Any]:
    """Connect to the first node of *nodes* that answers: the worker's own node first, then
    the others (what a load balancer in front of the cluster does)."""
    import pymysql

    def connect() -> Any:
        failure: Exception | None = None
        for host, port in nodes:
            try:
                return pymysql.connect(
                    host=host, port=port, user="root", database=database, connect_timeout=3
                )
            except pymysql.err.OperationalError as exc:
                failure = exc
        assert failure is not None
        raise failure

    return connect


def _engine(url: str, galera: list[tuple[str, int]] | None, database: str) -> sa.Engine:
    if galera is not None:
        return sa.create_engine(
            "mysql+pymysql://", creator=galera_creator(galera, database), pool_pre_ping=True
        )
    # prepare_threshold=None: no server-side prepared statements, as PgBouncer's transaction
    # pooling needs (harmless elsewhere).
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})


def take(
    session: Session, names: tuple[str, ...], worker: int, *, nowait: bool = False
) -> list[tuple[str, int]]:
    """Take a value of each sequence in *names* and of the template's counter; record them."""
    taken = [(name, get_sequence(name, session).next(session, nowait=nowait)) for name in names]
    identifier = get_template(TEMPLATE, session).next(session, nowait=nowait, key=TEMPLATE_KEY)
    taken.append((TEMPLATE, int(identifier.split("#")[1])))
    rows = [{"sequence": name, "value": value, "worker": worker} for name, value in taken]
    session.execute(issued.insert(), rows)
    return taken


def steady(
    url: str,
    galera: list[tuple[str, int]] | None,
    database: str,
    names: tuple[str, ...],
    target: int,
    rollback_every: int,
    nowait: bool,
    worker: int,
    results: Any,
) -> None:
    """Commit *target* transactions, rolling back every *rollback_every*-th attempt on purpose
    and retrying faults with the recipe; with *nowait*, a locked sequence is tried again."""
    engine = _engine(url, galera, database)
    acknowledged: list[tuple[str, int]] = []
    retries = attempts = most = tries = 0

    def work(session: Session) -> list[tuple[str, int]]:
        nonlocal attempts, tries
        attempts += 1
        tries += 1
        taken = take(session, names, worker, nowait=nowait)
        if attempts % rollback_every == 0:
            raise RollBack
        return taken

    try:
        while len(acknowledged) // (len(names) + 1) < target:
            tries = 0
            try:
                acknowledged.extend(retry.run_in_transaction(engine, work))
            except RollBack:
                pass
            except SequenceLocked:
                retries += 1
                time.sleep(0.01)  # nowait: the sequence was busy; come back to it
            except sa.exc.DBAPIError as exc:
                if exc.statement is not None or not retry.worth_retrying(exc):
                    raise
                retries += 1  # a COMMIT cut off (outcome unknown): not acknowledged
            retries += max(tries - 1, 0)
            most = max(most, tries)
        results.put((worker, acknowledged, retries, most, None))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put((worker, acknowledged, retries, most, repr(exc)))
    finally:
        engine.dispose()
