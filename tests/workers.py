"""Worker processes for the concurrency tests (importable, for the spawn start method)."""

from __future__ import annotations

import random
import time
from multiprocessing.synchronize import Barrier
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mortar_seq import get_next_value, get_sequence, get_template, register_sequence

from .tables import issued


class _RollBack(Exception):
    pass


def _record(session: Session, name: str, value: int, worker: int) -> None:
    session.execute(issued.insert().values(sequence=name, value=value, worker=worker))


def take_values(
    url: str,
    name: str,
    transactions: int,
    rollback_share: float,
    worker: int,
    barrier: Barrier,
    results: Any,
) -> None:
    """Take values in transactions that record them and commit, some rolled back at random.

    Even workers use the one-call form, odd ones the registered sequence.
    """
    engine = sa.create_engine(url)
    rng = random.Random(worker)
    committed = 0
    try:
        barrier.wait(60)
        for _ in range(transactions):
            try:
                with Session(engine) as session, session.begin():
                    if worker % 2:
                        value = get_sequence(name, session).next(session)
                    else:
                        value = get_next_value(session, name)
                    _record(session, name, value, worker)
                    if rng.random() < rollback_share:
                        raise _RollBack
                committed += 1
            except _RollBack:
                pass
        results.put((worker, committed, None))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put((worker, committed, repr(exc)))
    finally:
        engine.dispose()


def _at_once_then_roll_back_one(
    engine: sa.Engine, names: list[str], worker: int, barrier: Barrier, take: Any
) -> int:
    """For each name, at the same moment as the others: take a value with *take(session,
    name)*, record it and commit; worker 0 rolls back instead. Return how many committed."""
    committed = 0
    for name in names:
        barrier.wait(60)
        try:
            with Session(engine) as session, session.begin():
                _record(session, name, take(session, name), worker)
                time.sleep(0.02)
                if worker == 0:
                    raise _RollBack
            committed += 1
        except _RollBack:
            pass
    return committed


def first_use(url: str, names: list[str], worker: int, barrier: Barrier, results: Any) -> None:
    """Use each new name for the first time at once (worker 0 rolls back); then register one."""
    engine = sa.create_engine(url)
    committed = 0
    try:
        committed = _at_once_then_roll_back_one(engine, names, worker, barrier, get_next_value)
        barrier.wait(60)
        with Session(engine) as session, session.begin():
            seq = register_sequence("registered-at-once", session, start=100)
        with Session(engine) as session, session.begin():
            _record(session, seq.name, seq.next(session), worker)
        results.put((worker, committed, None))
    except BaseException as exc:
        results.put((worker, committed, repr(exc)))
    finally:
        engine.dispose()


def take_many(
    url: str, name: str, values: int, worker: int, barrier: Barrier, results: Any
) -> None:
    """Take *values* values one by one with next(), recorded 100 to a committed transaction."""
    engine = sa.create_engine(url)
    try:
        barrier.wait(60)
        with Session(engine) as session:
            with session.begin():
                sequence = get_sequence(name, session)
            for _ in range(0, values, 100):
                with session.begin():
                    taken = [sequence.next(session) for _ in range(100)]
                    rows = [{"sequence": name, "value": v, "worker": worker} for v in taken]
                    session.execute(issued.insert(), rows)
        results.put((worker, values, None))
    except BaseException as exc:
        results.put((worker, 0, repr(exc)))
    finally:
        engine.dispose()


def first_use_of_keys(
    url: str, keys: list[str], worker: int, barrier: Barrier, results: Any
) -> None:
    """Use each new key of template "T" (pattern "{k}#{counter}") for the first time at once."""
    engine = sa.create_engine(url)
    committed = 0
    try:
        with Session(engine) as session, session.begin():
            template = get_template("T", session)

        def take(session: Session, key: str) -> int:
            return int(template.next(session, k=key).split("#")[1])

        committed = _at_once_then_roll_back_one(engine, keys, worker, barrier, take)
        results.put((worker, committed, None))
    except BaseException as exc:
        results.put((worker, committed, repr(exc)))
    finally:
        engine.dispose()


def insert_rows(
    url: str,
    name: str,
    how: str,
    transactions: int,
    rollback_share: float,
    worker: int,
    barrier: Barrier,
    results: Any,
) -> None:
    """Number rows of test_issued as they are written, *how*: "insert" (one row a
    transaction), "insert_many" (three) or "default" (an ORM flush of two); some roll back."""
    from .numbered import IssuedAtFlush  # its default resolves *name* at flush

    engine = sa.create_engine(url)
    rng = random.Random(worker)
    committed = 0
    try:
        with Session(engine) as session, session.begin():
            sequence = get_sequence(name, session)
        row = {"sequence": name, "worker": worker}
        barrier.wait(60)
        for _ in range(transactions):
            try:
                with Session(engine) as session, session.begin():
                    if how == "insert":
                        sequence.insert(session, issued, row, column="value")
                        taken = 1
                    elif how == "insert_many":
                        sequence.insert_many(session, issued, [row] * 3, column="value")
                        taken = 3
                    else:
                        session.add_all([IssuedAtFlush(**row) for _ in range(2)])
                        taken = 2
                    if rng.random() < rollback_share:
                        raise _RollBack
                committed += taken
            except _RollBack:
                pass
        results.put((worker, committed, None))
    except BaseException as exc:
        results.put((worker, committed, repr(exc)))
    finally:
        engine.dispose()
