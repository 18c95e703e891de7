"""Highly available databases, each run by the test itself on loopback ports: a 3-node
Galera cluster with a node killed and rejoined, a PostgreSQL primary killed and its
synchronous standby promoted, and PgBouncer in transaction pooling mode.

Only invariants are asserted: the committed values of a gapless sequence (and of a
template's counter) read exactly 1..N, the others hold no duplicate, every node holds the
same rows, and every value whose COMMIT returned is among them. Figures go to the JUnit
report as properties.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import mortar_seq
from mortar_seq import (
    NativeSequence,
    PooledSequence,
    SequenceConfigError,
    register_sequence,
    register_template,
)
from mortar_seq.model import Counter

from . import cluster_workers
from .conftest import at_once, fresh_registry
from .galera import DATABASE as GALERA_DATABASE
from .galera import Galera, galera_cluster
from .pg_standby import DATABASE as PG_DATABASE
from .pg_standby import primary_and_standby
from .pgbouncer import pgbouncer
from .private_cluster import private_cluster, server_binaries
from .servers import require, wait_until
from .tables import committed, issued, test_metadata

# xdist_group: under pytest-xdist one worker runs the private servers' tests, one at a time
# (beside the "serial" group on the other: they share CPU, not the shared servers' locks).
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]

SPAWN = multiprocessing.get_context("spawn")
Report = tuple[int, list[tuple[str, int]], int, int, str | None]


def _prepare(engine: Engine, *, native: bool) -> tuple[str, ...]:
    """Create the tables and register the sequences the workers take; return their names,
    the gapless "audit" first."""
    mortar_seq.create_tables(engine)
    test_metadata.create_all(engine)
    with engine.begin() as connection:
        register_sequence("audit", connection)
        register_template(cluster_workers.TEMPLATE, "{key}#{counter}", connection)
        register_sequence("pooled", connection, PooledSequence(block=7))
        if native:
            register_sequence("native", connection, NativeSequence)
    return ("audit", "pooled", "native") if native else ("audit", "pooled")


@contextmanager
def _workers(
    jobs: list[dict[str, Any]], names: tuple[str, ...], target: int, *, rollback_every: int = 4
) -> Iterator[list[Report]]:
    """Run one worker per job (url, galera nodes, nowait) during the block; then report."""
    results = SPAWN.Queue()
    processes = [
        SPAWN.Process(
            target=cluster_workers.steady,
            args=(
                job.get("url", ""),
                job.get("galera"),
                job.get("database", ""),
                names,
                target,
                rollback_every,
                job.get("nowait", False),
                worker,
                results,
            ),
            daemon=True,  # a failing test must not leave them behind
        )
        for worker, job in enumerate(jobs)
    ]
    for process in processes:
        process.start()
    reports: list[Report] = []
    try:
        yield reports
    finally:
        reports.extend(results.get(timeout=150) for _ in processes)
        for process in processes:
            process.join(30)
    failures = [(report[0], report[4]) for report in reports if report[4] is not None]
    assert not failures, failures


def _check(engine: Engine, names: tuple[str, ...], reports: list[Report]) -> dict[str, int]:
    """Assert the invariants on *engine*'s database; return the committed count per name."""
    gapless = [names[0], cluster_workers.TEMPLATE]
    counts: dict[str, int] = {}
    for name in [*names, cluster_workers.TEMPLATE]:
        values = committed(engine, name)
        counts[name] = len(values)
        duplicates = [value for value, seen in Tally(values).items() if seen > 1]
        assert duplicates == [], (name, duplicates)
        if name in gapless:
            assert values == list(range(1, len(values) + 1)), name
        acknowledged = {value for report in reports for seq, value in report[1] if seq == name}
        assert acknowledged <= set(values), (name, sorted(acknowledged - set(values)))
    assert len(set(counts.values())) == 1, counts  # every committed transaction took each once
    return counts


def _snapshot(engine: Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(issued.c.sequence, issued.c.value, issued.c.worker).order_by(issued.c.id)
        ).all()
        counters = connection.execute(
            sa.select(Counter.name, Counter.key, Counter.value).order_by(Counter.name, Counter.key)
        ).all()
    return [tuple(row) for row in rows], [tuple(row) for row in counters]


def _wait_for_rows(engine: Engine, count: int) -> None:
    deadline = time.monotonic() + 120
    with engine.connect() as connection:
        while connection.execute(sa.select(sa.func.count()).select_from(issued)).scalar_one() < (
            count
        ):
            assert time.monotonic() < deadline, f"the workers never committed {count} rows"
            connection.rollback()
            time.sleep(0.1)


def _figures(record: Callable[[str, object], None], reports: list[Report], **more: object) -> None:
    record("workers", len(reports))
    record("retries", sum(report[2] for report in reports))
    record("most_attempts", max(report[3] for report in reports))
    for key, value in more.items():
        record(key, value)


# -- Galera --------------------------------------------------------------------------------


def _galera_engines(cluster: Galera) -> list[Engine]:
    # Reads wait until the node has applied what the cluster committed before them.
    causal = {"init_command": "SET SESSION wsrep_sync_wait = 1"}
    return [
        sa.create_engine(node.url(), pool_pre_ping=True, connect_args=causal)
        for node in cluster.nodes
    ]


def _first_use_races(engines: list[Engine], rounds: int) -> None:
    """Each round, one new name is registered (gapless, pooled) on every node at once, and a
    pooled block reserved on every node at once: the library's own short transactions run
    again after a certification conflict, so none reaches the caller."""

    def register(engine: Engine, name: str, impl: object) -> None:
        with fresh_registry(), engine.begin() as connection:
            sequence = register_sequence(name, connection, impl)
            sequence.next(connection)

    for round_ in range(rounds):
        for impl in (None, PooledSequence(block=3)):
            name = f"race{round_}_{'pooled' if impl else 'table'}"
            outcomes = at_once(
                [lambda e=engine, n=name, i=impl: register(e, n, i) for engine in engines]
            )
            failed = [outcome for outcome in outcomes if outcome is not None]
            # The gapless ones serialise on one row across nodes: the caller's own transaction
            # may fail certification at COMMIT (the recipe retries that), never earlier.
            if impl is None:
                failed = [f for f in failed if not _certification_at_commit(f)]
            assert failed == [], (name, failed)


def _certification_at_commit(error: BaseException) -> bool:
    return isinstance(error, sa.exc.DBAPIError) and getattr(error.orig, "args", [None])[0] == 1213


def test_galera_node_killed_and_rejoined(record_property: Any) -> None:
    """Workers on every node of a 3-node Galera cluster take gapless, pooled and template
    values; one node is killed with SIGKILL mid-run and rejoins by IST."""
    with galera_cluster() as cluster, fresh_registry():
        engines = _galera_engines(cluster)
        first = engines[0]
        names = _prepare(first, native=False)
        with engines[1].begin() as connection, pytest.raises(SequenceConfigError) as refused:
            register_sequence("native", connection, NativeSequence)
        assert "PooledSequence" in str(refused.value)
        _first_use_races(engines, rounds=5)

        nodes = [("127.0.0.1", node.port) for node in cluster.nodes]
        jobs = [
            {"galera": nodes[index:] + nodes[:index], "database": GALERA_DATABASE}
            for index in (0, 1, 2, 0, 1, 2)
        ]
        workers, target = len(jobs), 10
        victim = cluster.nodes[2]
        with _workers(jobs, names, target) as reports:
            _wait_for_rows(first, len(jobs) * 3 * (len(names) + 1))
            cluster.kill(victim)
            time.sleep(1)
            cluster.rejoin(victim)
        counts = _check(first, names, reports)
        assert counts[names[0]] >= workers * target
        wait_until(lambda: cluster.synced(victim), "the rejoined node")
        for engine in engines:  # every node, the rejoined one included, holds the same rows
            assert _snapshot(engine) == _snapshot(first)
        _figures(record_property, reports, committed=counts[names[0]], faults="node 3 SIGKILL")
        for engine in engines:
            engine.dispose()


# -- PostgreSQL failover -------------------------------------------------------------------


def test_postgresql_failover_to_synchronous_standby(record_property: Any) -> None:
    """Workers on a two-host URL (target_session_attrs=read-write); the primary is killed
    with SIGKILL mid-run and the synchronous standby promoted: no acknowledged value lost."""
    with primary_and_standby() as pair, fresh_registry():
        engine = sa.create_engine(pair.primary.url(PG_DATABASE))
        names = _prepare(engine, native=True)
        engine.dispose()
        url = pair.url().render_as_string(hide_password=False)
        jobs = [{"url": url}] * 4
        workers, target = len(jobs), 15
        with _workers(jobs, names, target) as reports:
            survivor = sa.create_engine(pair.standby.url(PG_DATABASE))
            _wait_for_rows(survivor, workers * 4 * (len(names) + 1))
            pair.kill_primary()
            time.sleep(0.5)  # the workers meet a dead primary and a read-only standby
            pair.promote()
        counts = _check(survivor, names, reports)
        assert counts[names[0]] >= workers * target
        native = committed(survivor, "native")
        jump = max(b - a for a, b in itertools.pairwise(native))
        _figures(record_property, reports, committed=counts[names[0]], native_jump=jump)
        survivor.dispose()


# -- PgBouncer -----------------------------------------------------------------------------


def test_pgbouncer_transaction_pooling(record_property: Any) -> None:
    """Workers through PgBouncer in transaction mode (prepare_threshold=None), fewer server
    connections than clients, each implementation, half of them with nowait."""
    binaries = server_binaries()
    require(binaries)
    assert binaries is not None
    workers = 4
    # More server connections than transactions open at once, fewer than client connections
    # (each worker has the library's side connection too). With as many or fewer, every
    # server connection may be held by a transaction waiting for the gapless row, whose
    # holder waits for a server connection to reserve a pooled block: PgBouncer then waits
    # until query_wait_timeout.
    with (
        private_cluster(binaries) as server,
        pgbouncer(server, pool_size=workers + 2) as url,
        fresh_registry(),
    ):
        engine = sa.create_engine(url, connect_args={"prepare_threshold": None})
        names = _prepare(engine, native=True)
        rendered = url.render_as_string(hide_password=False)
        jobs = [{"url": rendered, "nowait": bool(n % 2)} for n in range(workers)]
        with _workers(jobs, names, 15) as reports:
            pass
        counts = _check(engine, names, reports)
        assert counts[names[0]] == len(jobs) * 15
        _figures(record_property, reports, committed=counts[names[0]])
        engine.dispose()
