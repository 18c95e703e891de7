"""Worker processes for the fault-injection tests (importable, for the spawn start method).

Each worker reports ``(worker, committed, retries, error)`` on its results queue; the
tests fail on any error.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mortar_seq import SequenceError, get_sequence, get_template, retry

from .tables import issued

TEMPLATE_KEY = "k"


class RollBack(Exception):
    """Raised inside a unit of work to roll it back on purpose."""


def take_and_record(
    session: Session, names: tuple[str, ...], template: str | None, worker: int
) -> int:
    """Take a value of each sequence in *names* (and of *template*'s counter), record them,
    and return the first."""
    rows = [
        {"sequence": name, "value": get_sequence(name, session).next(session), "worker": worker}
        for name in names
    ]
    if template is not None:
        identifier = get_template(template, session).next(session, key=TEMPLATE_KEY)
        rows.append(
            {"sequence": template, "value": int(identifier.split("#")[1]), "worker": worker}
        )
    session.execute(issued.insert(), rows)
    return int(rows[0]["value"])


def steady(
    url: str,
    names: tuple[str, ...],
    template: str | None,
    target: int,
    rollback_every: int,
    isolation: str | None,
    worker: int,
    results: Any,
) -> None:
    """Commit *target* values, rolling back every *rollback_every*-th attempt on purpose and
    retrying transactions that fail with a transient fault (the documented recipe)."""
    options: dict[str, Any] = {}
    if isolation:
        options["isolation_level"] = isolation
    engine = sa.create_engine(url, **options)
    committed = retries = attempts = 0

    def work(session: Session) -> None:
        nonlocal retries, attempts
        attempts += 1
        take_and_record(session, names, template, worker)
        if attempts % rollback_every == 0:
            raise RollBack

    try:
        while committed < target:
            before = attempts
            try:
                retry.run_in_transaction(engine, work)
                committed += 1
            except RollBack:
                pass
            retries += attempts - before - 1
        results.put((worker, committed, retries, None))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put((worker, committed, retries, repr(exc)))
    finally:
        engine.dispose()


def hold_until_killed(
    url: str, names: tuple[str, ...], template: str | None, worker: int, said: Any
) -> None:
    """Take values and record them, say so, then wait inside the transaction to be killed."""
    engine = sa.create_engine(url)
    with Session(engine) as session, session.begin():
        said.put(("holding", take_and_record(session, names, template, worker)))
        time.sleep(600)


def hold_until_cut(
    url: str, names: tuple[str, ...], template: str | None, worker: int, said: Any, told: Any
) -> None:
    """Take values and give the server's id of this connection; once told, commit (which
    must fail: the test cuts the connection), then run the transaction again."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        with Session(engine) as session:
            session.begin()
            take_and_record(session, names, template, worker)
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            else:
                backend = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one()
            said.put(("holding", backend))
            told.get(timeout=120)
            try:
                session.commit()
                seen: dict[str, Any] = {"error": None}
            except Exception as exc:
                seen = {
                    "error": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "invalidated": getattr(exc, "connection_invalidated", None),
                    "wrapped": isinstance(exc, SequenceError),
                    "retryable": isinstance(exc, sa.exc.DBAPIError) and retry.worth_retrying(exc),
                }
        seen["value"] = retry.run_in_transaction(
            engine, lambda s: take_and_record(s, names, template, worker)
        )
        said.put(("done", seen))
    except BaseException as exc:
        said.put(("failed", repr(exc)))
    finally:
        engine.dispose()
