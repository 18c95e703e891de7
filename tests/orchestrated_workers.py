"""Workers and checks for the scenarios behind an orchestrator (Patroni, HAProxy).

Each worker process numbers invoices through one URL (HAProxy's) with the shipped retry
helper until told to stop: a unit of work takes the next value of gapless sequence
``INVOICE`` and inserts one row carrying it and the unit's own name, which stays the same
across its attempts. A unit committed twice therefore shows as two rows of one name.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from mortar_seq import get_sequence, run_in_transaction

INVOICE = "invoice"

units_metadata = sa.MetaData()

# No unique constraint on `unit`: a unit committed twice must be seen, not refused.
invoices = sa.Table(
    "orchestrated_invoice",
    units_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("unit", sa.String(40), nullable=False),
    sa.Column("number", sa.BigInteger, nullable=False),
)


@dataclass
class Report:
    """What one worker saw: each acknowledged unit, each unit given up, its retries."""

    worker: int
    acknowledged: list[tuple[str, int, float]] = field(default_factory=list)  # unit, number, at
    gave_up: list[tuple[str, str]] = field(default_factory=list)  # unit, repr(error)
    attempts: int = 0


def number_invoices(url: str, worker: int, timeout: float, stop: Any, results: Any) -> None:
    """Number invoices until *stop* (a multiprocessing Event) is set; put a Report on *results*."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    factory = sessionmaker(engine)
    report = Report(worker)

    try:
        serial = 0
        while not stop.is_set():
            serial += 1
            unit = f"{worker}-{serial}"

            def work(session: Session, unit: str = unit) -> int:
                report.attempts += 1
                number = get_sequence(INVOICE, session).next(session)
                session.execute(invoices.insert(), {"unit": unit, "number": number})
                return number

            try:
                number = run_in_transaction(factory, work, timeout=timeout)
            except Exception as exc:  # the unit failed for its user
                report.gave_up.append((unit, repr(exc)[:300]))
            else:
                report.acknowledged.append((unit, number, time.monotonic()))
    finally:
        results.put(report)
        engine.dispose()


@contextmanager
def running(url: str, workers: int, retry_seconds: float) -> Iterator[list[Report]]:
    """Run *workers* processes numbering invoices through *url* during the block; stop them
    after it and fill the yielded list with their reports (a failing block's error gets a
    note of the units they gave up)."""
    spawn = multiprocessing.get_context("spawn")
    stop, results = spawn.Event(), spawn.Queue()
    processes = [
        spawn.Process(
            target=number_invoices,
            args=(url, worker, retry_seconds, stop, results),
            daemon=True,  # a failing test must not leave them behind
        )
        for worker in range(workers)
    ]
    for process in processes:
        process.start()
    reports: list[Report] = []

    def collect() -> None:
        stop.set()
        # A worker spends at most retry_seconds on its unit of work, then reports.
        reports.extend(results.get(timeout=retry_seconds + 60) for _ in processes)
        for process in processes:
            process.join(30)

    try:
        yield reports
    except BaseException as error:
        collect()
        given_up = [unit for report in reports for unit in report.gave_up]
        error.add_note(f"{len(given_up)} units given up by the workers, first: {given_up[:3]}")
        raise
    collect()


@dataclass(frozen=True)
class Outcome:
    """The figures of one scenario, for the assertions and the closing note."""

    committed: int
    retries: int
    longest_without_commit: float
    gave_up: int
    committed_twice: int
    wall_time: float

    def as_properties(self) -> dict[str, object]:
        return {
            "committed": self.committed,
            "retries": self.retries,
            "longest_without_commit_s": round(self.longest_without_commit, 2),
            "gave_up": self.gave_up,
            "committed_twice": self.committed_twice,
            "wall_time_s": round(self.wall_time, 1),
        }


def committed_rows(engine: sa.Engine) -> list[tuple[str, int]]:
    """(unit, number) of every committed invoice row on *engine*'s server, by number."""
    with engine.connect() as connection:
        query = sa.select(invoices.c.unit, invoices.c.number).order_by(invoices.c.number)
        return [(unit, number) for unit, number in connection.execute(query)]


def check(rows: list[tuple[str, int]], reports: list[Report], wall_time: float) -> Outcome:
    """Assert the invariants on the committed *rows* and the workers' *reports*."""
    numbers = [number for _, number in rows]
    assert numbers == list(range(1, len(numbers) + 1)), "committed numbers are not exactly 1..N"
    stored = set(rows)
    acknowledged = [(unit, number) for r in reports for unit, number, _ in r.acknowledged]
    missing = [pair for pair in acknowledged if pair not in stored]
    assert not missing, f"acknowledged commits missing from the database: {missing[:10]}"
    units = [unit for unit, _ in rows]
    twice = len(units) - len(set(units))
    moments = sorted(at for r in reports for _, _, at in r.acknowledged)
    longest = max((b - a for a, b in itertools.pairwise(moments)), default=0.0)
    return Outcome(
        committed=len(rows),
        retries=sum(r.attempts for r in reports) - len(acknowledged),
        longest_without_commit=longest,
        gave_up=sum(len(r.gave_up) for r in reports),
        committed_twice=twice,
        wall_time=wall_time,
    )
