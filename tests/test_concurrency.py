"""Concurrency, shown with several processes; the committed rows are checked afterwards."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import NativeSequence, PooledSequence, register_sequence, register_template

from . import workers
from .tables import committed, issued

WORKERS = 4
SPAWN = multiprocessing.get_context("spawn")
# Under pytest-xdist, one worker runs the multi-process loads one at a time.
pytestmark = pytest.mark.xdist_group("serial")


def _run(target: Callable[..., None], *args: Any) -> list[tuple[int, int, str | None]]:
    """Run *target* in WORKERS processes at once; return what each reported."""
    barrier, results = SPAWN.Barrier(WORKERS), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=target, args=(*args, worker, barrier, results))
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(30)
    failures = [report for report in reports if report[2] is not None]
    assert not failures, failures
    return sorted(reports)


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.slow
def test_gapless_across_processes(engine: Engine, record_property: Any) -> None:
    with engine.begin() as connection:
        register_sequence("invoice", connection)
    transactions = 40
    reports = _run(workers.take_values, _url(engine), "invoice", transactions, 0.25)
    total = sum(count for _, count, _ in reports)
    values = committed(engine, "invoice")
    assert values == list(range(1, total + 1))  # no gap, no duplicate
    assert 0 < total < WORKERS * transactions  # some rolled back, most committed
    record_property("attempts", WORKERS * transactions)
    record_property("committed", total)


@pytest.mark.slow
def test_first_use_and_registration_race(engine: Engine) -> None:
    names = [f"new-{i}" for i in range(3)]
    reports = _run(workers.first_use, _url(engine), names)
    for name in names:
        # Worker 0 rolled back; the three others share one counter, with no gap.
        assert committed(engine, name) == [1, 2, 3]
    assert committed(engine, "registered-at-once") == [100, 101, 102, 103]
    assert [count for _, count, _ in reports] == [0, 3, 3, 3]


def _by_worker(engine: Engine, name: str) -> dict[int, list[int]]:
    with engine.connect() as connection:
        query = sa.select(issued.c.worker, issued.c.value).where(issued.c.sequence == name)
        rows = connection.execute(query.order_by(issued.c.id)).all()
    taken: dict[int, list[int]] = {}
    for worker, value in rows:
        taken.setdefault(worker, []).append(value)
    return taken


@pytest.mark.slow
def test_pooled_unique_across_processes(engine: Engine, record_property: Any) -> None:
    with engine.begin() as connection:
        register_sequence("pooled", connection, PooledSequence(block=100))
    _run(workers.take_many, _url(engine), "pooled", 3000)
    taken = _by_worker(engine, "pooled")
    everything = [value for values in taken.values() for value in values]
    assert len(everything) == len(set(everything)) == 12000  # no duplicate
    assert all(values == sorted(values) for values in taken.values())  # increasing per process
    record_property("distinct", len(set(everything)))
    record_property("highest", max(everything))


@pytest.mark.slow
@pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)
def test_native_unique_across_processes(engine: Engine) -> None:
    with engine.begin() as connection:
        register_sequence("native", connection, NativeSequence)
    _run(workers.take_many, _url(engine), "native", 500)
    taken = _by_worker(engine, "native")
    everything = [value for values in taken.values() for value in values]
    assert len(everything) == len(set(everything)) == 2000
    assert all(values == sorted(values) for values in taken.values())


@pytest.mark.slow
def test_first_use_of_template_keys_race(engine: Engine) -> None:
    with engine.begin() as connection:
        register_template("T", "{k}#{counter}", connection)
    keys = [f"key-{i}" for i in range(3)]
    reports = _run(workers.first_use_of_keys, _url(engine), keys)
    for key in keys:
        assert committed(engine, key) == [1, 2, 3]  # worker 0 rolled back: no gap
    assert [count for _, count, _ in reports] == [0, 3, 3, 3]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["insert", "insert_many", "default"])
def test_numbered_rows_gapless_across_processes(engine: Engine, how: str) -> None:
    with engine.begin() as connection:
        register_sequence("rows", connection)
    reports = _run(workers.insert_rows, _url(engine), "rows", how, 25, 0.25)
    total = sum(count for _, count, _ in reports)
    assert committed(engine, "rows") == list(range(1, total + 1))  # no gap, no duplicate
    assert total > 0
