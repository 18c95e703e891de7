"""Worker processes for the administration tests (importable, for the spawn start method)."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mortar_seq import get_sequence

from .tables import issued


def take_and_insert(
    url: str, name: str, transactions: int, worker: int, barrier: Barrier, results: Any
) -> None:
    """Take a value and insert its row, one committed transaction at a time."""
    engine = sa.create_engine(url)
    committed = 0
    try:
        barrier.wait(60)
        for _ in range(transactions):
            with Session(engine) as session, session.begin():
                value = get_sequence(name, session).next(session)
                session.execute(issued.insert().values(sequence=name, value=value, worker=worker))
            committed += 1
        results.put((worker, committed, None))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put((worker, committed, repr(exc)))
    finally:
        engine.dispose()
