"""restart_after racing with processes that take values and insert their rows."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mortar_seq import SequenceConfigError, audit, get_sequence, register_sequence

from . import admin_workers
from .tables import committed, issued

WORKERS = 4
SPAWN = multiprocessing.get_context("spawn")
# Under pytest-xdist, one worker runs the multi-process loads one at a time.
pytestmark = pytest.mark.xdist_group("serial")


@pytest.mark.slow
def test_restart_after_racing_with_writers(engine: Engine, record_property: Any) -> None:
    url = engine.url.render_as_string(hide_password=False)
    mine = issued.c.sequence == "invoice"
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
        # Rows an older system wrote, before the sequence existed.
        old = [{"sequence": "invoice", "value": v, "worker": -1} for v in range(1, 21)]
        connection.execute(issued.insert(), old)
        assert invoice.restart_after(connection, issued.c.value, where=mine) == 21

    transactions = 40
    barrier, results = SPAWN.Barrier(WORKERS), SPAWN.Queue()
    processes = [
        SPAWN.Process(
            target=admin_workers.take_and_insert,
            args=(url, "invoice", transactions, worker, barrier, results),
        )
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    restarts: list[int] = []
    refusals: list[str] = []
    stop = threading.Event()

    def restart_repeatedly() -> None:
        while not stop.is_set():
            with Session(engine) as session, session.begin():
                # A read first: under REPEATABLE READ (MariaDB) the snapshot is older than
                # the lock taken below, which a plain read of the column would not see past.
                session.execute(sa.select(sa.func.count()).select_from(issued)).scalar()
                time.sleep(0.01)
                try:
                    sequence = get_sequence("invoice", session)
                    restarts.append(sequence.restart_after(session, issued.c.value, where=mine))
                except SequenceConfigError as exc:  # never: the column holds every value
                    refusals.append(str(exc))

    restarter = threading.Thread(target=restart_repeatedly)
    restarter.start()
    reports = [results.get(timeout=240) for _ in processes]
    stop.set()
    restarter.join(60)
    for process in processes:
        process.join(30)
    assert not [report for report in reports if report[2] is not None], reports
    assert refusals == []
    total = sum(count for _, count, _ in reports)
    assert total == WORKERS * transactions
    assert committed(engine, "invoice") == list(range(1, 21 + total))  # no gap, no duplicate
    with engine.connect() as connection:
        assert audit(connection, issued.c.value, start=1, where=mine).clean
    assert len(restarts) > 3
    record_property("restarts", len(restarts))
