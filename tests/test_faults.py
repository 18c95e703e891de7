"""Faults injected while worker processes take values: nothing lost, duplicated or skipped.

Every scenario checks the committed rows afterwards: exactly 1..N for a gapless sequence
(and a template's counter). Figures go to the JUnit report as properties.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import mortar_seq
from mortar_seq import (
    NativeSequence,
    PooledSequence,
    SequenceError,
    get_sequence,
    register_sequence,
    register_template,
    retry,
)

from . import fault_workers
from .conftest import at_once, fresh_registry
from .private_cluster import private_cluster, server_binaries
from .tables import committed, issued, test_metadata

# Under pytest-xdist, one worker runs these one at a time: many processes, SIGKILL, private
# servers on free ports.
pytestmark = pytest.mark.xdist_group("serial")

SPAWN = multiprocessing.get_context("spawn")
servers = pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)

Report = tuple[int, int, int, str | None]


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _register(engine: Engine) -> tuple[str, ...]:
    """Register the gapless "audit", template "T" and fast sequences; return the names the
    workers take values of: "audit" first."""
    with engine.begin() as connection:
        register_sequence("audit", connection)
        register_template("T", "{key}#{counter}", connection)
        register_sequence("pooled", connection, PooledSequence(block=7))
        names = ("audit", "pooled")
        if connection.dialect.supports_sequences:
            register_sequence("native", connection, NativeSequence)
            names += ("native",)
    return names


@contextmanager
def _steady_workers(
    engine: Engine,
    names: tuple[str, ...],
    count: int,
    target: int,
    *,
    rollback_every: int = 4,
    isolation: str | None = None,
    template: str | None = "T",
) -> Iterator[list[Report]]:
    """Run *count* steady workers during the block; afterwards the list holds their reports."""
    results = SPAWN.Queue()
    processes = [
        SPAWN.Process(
            target=fault_workers.steady,
            args=(_url(engine), names, template, target, rollback_every, isolation, n, results),
            daemon=True,  # a failing test must not leave them behind
        )
        for n in range(count)
    ]
    for process in processes:
        process.start()
    reports: list[Report] = []
    yield reports
    reports.extend(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(30)
    failures = [report for report in reports if report[3] is not None]
    assert not failures, failures
    assert [report[1] for report in reports] == [target] * count


def _assert_gapless(
    engine: Engine, names: tuple[str, ...], total: int, *, template: bool = True
) -> None:
    """The gapless ones read exactly 1..total; the fast ones hold *total* distinct values."""
    gapless, *fast = names
    assert committed(engine, gapless) == list(range(1, total + 1))
    if template:
        assert committed(engine, "T") == list(range(1, total + 1))
    for name in fast:
        values = committed(engine, name)
        assert len(values) == len(set(values)) == total, name


def _wait_for_waiters(engine: Engine) -> None:
    """Return once some transaction waits for a lock (on SQLite, which cannot tell: after 1 s)."""
    queries = {
        # This database's waiters only: other tests may run beside these (pytest-xdist).
        "postgresql": "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid)"
        " WHERE NOT granted AND datname = current_database()",
        "mariadb": "SELECT count(*) FROM information_schema.innodb_trx"
        " JOIN information_schema.processlist ON id = trx_mysql_thread_id"
        " WHERE trx_state = 'LOCK WAIT' AND db = DATABASE()",
    }
    query = queries.get(engine.dialect.name)
    if query is None:
        time.sleep(1)
        return
    deadline = time.monotonic() + 60
    with engine.connect() as connection:
        while connection.exec_driver_sql(query).scalar_one() == 0:
            assert time.monotonic() < deadline, "no worker ever waited"
            time.sleep(0.05)
            connection.rollback()


@pytest.mark.slow
def test_worker_killed_mid_transaction(engine: Engine, record_property: Any) -> None:
    """SIGKILL after next() and before commit: the others, waiting behind it, go on once the
    server notices; no gap, no duplicate."""
    names = _register(engine)
    kills, workers, target = 3, 3, 10
    for victim in range(kills):
        said = SPAWN.Queue()
        process = SPAWN.Process(
            target=fault_workers.hold_until_killed,
            args=(_url(engine), names, "T", 100 + victim, said),
            daemon=True,
        )
        process.start()
        assert said.get(timeout=120)[0] == "holding"
        with _steady_workers(engine, names, workers, target):
            _wait_for_waiters(engine)
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
            process.join(30)
            assert process.exitcode == -signal.SIGKILL
    _assert_gapless(engine, names, kills * workers * target)
    with engine.connect() as connection:  # the victims' values were given back
        victims = sa.select(issued.c.id).where(issued.c.worker >= 100)
        assert connection.execute(victims).first() is None
    record_property("faults", f"{kills} workers killed with SIGKILL holding a value")
    record_property("committed", kills * workers * target)


@pytest.mark.slow
@servers
def test_connection_cut_by_the_server(engine: Engine, record_property: Any) -> None:
    """The server ends a worker's session mid-transaction: the worker sees SQLAlchemy's own
    disconnect error, unwrapped, runs the transaction again, and the rows stay gapless."""
    names = _register(engine)
    workers, target = 3, 20
    said, told = SPAWN.Queue(), SPAWN.Queue()
    victim = SPAWN.Process(
        target=fault_workers.hold_until_cut,
        args=(_url(engine), names, "T", 99, said, told),
        daemon=True,
    )
    victim.start()
    kind, backend = said.get(timeout=120)
    assert kind == "holding"
    with _steady_workers(engine, names, workers, target):
        _wait_for_waiters(engine)
        with engine.connect() as admin:
            if admin.dialect.name == "postgresql":
                cut = admin.execute(sa.select(sa.func.pg_terminate_backend(backend)))
                assert cut.scalar_one() is True
            else:
                admin.exec_driver_sql(f"KILL CONNECTION {int(backend)}")
        told.put("commit")
        kind, seen = said.get(timeout=120)
        victim.join(30)
    assert kind == "done", seen
    assert seen["error"] in {"sqlalchemy.exc.OperationalError", "sqlalchemy.exc.InterfaceError"}
    assert seen["invalidated"] is True
    assert seen["wrapped"] is False
    assert seen["retryable"] is True
    _assert_gapless(engine, names, workers * target + 1)
    record_property("faults", "1 connection cut by the server mid-transaction")


def _take_both(session: Any, one: Any, other: Any, meet: Callable[[], object]) -> None:
    one.next(session)
    meet()
    other.next(session)


@servers
def test_opposite_order_deadlock(engine: Engine) -> None:
    """Two transactions take two sequences in opposite orders: one gets the database's
    deadlock error, unwrapped; the other proceeds; run again, the loser completes."""
    with engine.begin() as connection:
        first, second = register_sequence("a", connection), register_sequence("b", connection)
    orders = [(first, second), (second, first)]
    barrier = threading.Barrier(2)

    def attempt(one: Any, other: Any) -> None:
        with engine.begin() as connection:
            _take_both(connection, one, other, lambda: barrier.wait(30))

    outcomes = at_once([lambda order=order: attempt(*order) for order in orders])
    failed = [outcome for outcome in outcomes if outcome is not None]
    assert len(failed) == 1, outcomes
    error = failed[0]
    assert isinstance(error, sa.exc.OperationalError)
    assert not isinstance(error, SequenceError)
    assert retry.worth_retrying(error)  # SQLSTATE 40P01 / MariaDB error 1213

    one, other = orders[outcomes.index(error)]
    retry.run_in_transaction(engine, lambda session: _take_both(session, one, other, time.time))
    with engine.connect() as connection:
        assert first.last(connection) == second.last(connection) == 2


@servers
def test_lock_timeout_reaches_the_caller(engine: Engine) -> None:
    """A lock wait bounded by the caller's own setting ends in the database's error, not in
    SequenceLocked (that is nowait's); after the holder commits, the caller goes on."""
    with engine.begin() as connection:
        audit = register_sequence("audit", connection)
    with engine.connect() as holder, engine.connect() as waiter:
        assert audit.next(holder) == 1
        if waiter.dialect.name == "postgresql":
            waiter.exec_driver_sql("SET lock_timeout = '200ms'")
        else:
            waiter.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
        with pytest.raises(sa.exc.OperationalError) as caught:
            audit.next(waiter)
        assert not isinstance(caught.value, SequenceError)
        assert retry.worth_retrying(caught.value)
        waiter.rollback()
        holder.commit()
        assert audit.next(waiter) == 2
        waiter.commit()


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_serialization_failure_reaches_the_caller(engine: Engine, isolation: str) -> None:
    """Above READ COMMITTED, PostgreSQL fails the transaction that waited for the row with
    a serialization failure (SQLSTATE 40001), which the library does not wrap."""
    with engine.begin() as connection:
        audit = register_sequence("audit", connection)
    strict = engine.execution_options(isolation_level=isolation)
    with strict.connect() as holder, strict.connect() as waiter:
        waiter.exec_driver_sql("SELECT 1")  # the waiter's snapshot predates the holder's commit
        assert audit.next(holder) == 1
        timer = threading.Timer(0.3, holder.commit)
        timer.start()
        with pytest.raises(sa.exc.OperationalError) as caught:
            audit.next(waiter)  # waits for the holder, then fails
        timer.join()
        assert not isinstance(caught.value, SequenceError)
        assert getattr(caught.value.orig, "sqlstate", None) == "40001"
        waiter.rollback()
        assert audit.next(waiter) == 2  # a new transaction goes on
        waiter.commit()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("database", "isolation"),
    [
        ("postgresql", "REPEATABLE READ"),
        ("postgresql", "SERIALIZABLE"),
        ("mariadb", "REPEATABLE READ"),
        ("mariadb", "SERIALIZABLE"),
    ],
    indirect=["database"],
)
def test_retry_recipe_finishes_gapless(
    engine: Engine, isolation: str, record_property: Any
) -> None:
    """A pool of workers at a strict isolation level, retrying with the documented recipe."""
    names = _register(engine)
    workers, target = 4, 20
    with _steady_workers(engine, names, workers, target, isolation=isolation) as reports:
        pass
    _assert_gapless(engine, names, workers * target)
    record_property("retries", sum(report[2] for report in reports))


@pytest.mark.slow
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_load(engine: Engine, record_property: Any) -> None:
    """16 processes x 200 committed values on one gapless sequence, a third rolled back."""
    names = _register(engine)[:1]  # the one gapless sequence
    workers, target = 16, 200
    started = time.monotonic()
    with _steady_workers(engine, names, workers, target, rollback_every=3, template=None):
        pass
    record_property("seconds", round(time.monotonic() - started, 1))
    _assert_gapless(engine, names, workers * target, template=False)
    record_property("committed", workers * target)


@pytest.mark.slow
def test_server_restart_between_batches(record_property: Any) -> None:
    """A private PostgreSQL cluster restarts between two batches: the first transaction
    after it succeeds on a pre-pinged pool, and numbering goes on without a gap."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(
            "NO POSTGRESQL SERVER BINARIES (initdb, pg_ctl): the restart scenario is skipped"
        )
    with private_cluster(binaries) as cluster, fresh_registry():
        engine = sa.create_engine(cluster.url, pool_pre_ping=True)
        mortar_seq.create_tables(engine)
        test_metadata.create_all(engine)
        names = _register(engine)
        with _steady_workers(engine, names, 2, 10):
            pass
        with engine.connect() as connection:  # a pooled connection that the restart will break
            assert get_sequence("audit", connection).last(connection) == 20
        cluster.pg_ctl("-m", "fast", "restart")
        with Session(engine) as session, session.begin():  # the first transaction after it
            fault_workers.take_and_record(session, names, "T", 0)
        with _steady_workers(engine, names, 2, 10):
            pass
        _assert_gapless(engine, names, 41)
        engine.dispose()
    record_property("faults", "1 server restart between two batches")
