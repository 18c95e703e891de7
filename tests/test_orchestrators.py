"""Behind a real orchestrator: Patroni (three nodes, synchronous mode, etcd) and HAProxy.

Four worker processes number invoices through HAProxy, which sends them to the node whose
Patroni REST ``/primary`` answers 200, with the shipped retry helper. Mid-run, Patroni
hands the leadership over (a switchover); once a synchronous standby is back, the new
leader's Patroni and PostgreSQL are killed with SIGKILL and Patroni fails over. Asserted:
the committed numbers are exactly 1..N, every acknowledged commit is there, every
surviving node holds the same rows, no unit of work given up and none committed twice.
The figures go to the JUnit report as properties, and to the output.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

import mortar_seq
from mortar_seq import TableSequence, register_sequence

from . import orchestrated_workers
from .conftest import fresh_registry
from .haproxy import haproxy
from .orchestrated_workers import INVOICE, check, committed_rows, invoices
from .patroni import DATABASE, LOOP_WAIT, RETRY_TIMEOUT, TTL, patroni_cluster
from .servers import wait_until

# xdist_group: under pytest-xdist one worker runs these, and the other private servers' tests,
# one at a time.
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]

WORKERS = 4
# run_in_transaction's default: more than a failover with Patroni's default timings
# (ttl + loop_wait + retry_timeout = 50 s), so far more than with the CI timings (16 s).
RETRY_SECONDS = 60.0
# Between two faults the workers commit for a few seconds and some rows, on the leader of
# the moment: proof that they rode out the fault before the next one.
PHASE_SECONDS = 3.0
PHASE_ROWS = 100


def _only_to_the_leader(url: str, servers: int) -> bool:
    """Whether HAProxy sends every new connection to a writable server.

    HAProxy starts with every server up until its checks say otherwise: for a moment it
    sends connections to standbys too, in turn (round robin), so one probe per server.
    """
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        for _ in range(servers):
            with engine.connect() as connection:
                if connection.exec_driver_sql("SELECT pg_is_in_recovery()").scalar_one():
                    return False
        return True
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


def _count(url: str) -> int | None:
    """How many invoices the leader holds (None while HAProxy has no leader to offer)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(invoices)
            return int(connection.execute(query).scalar_one())
    except sa.exc.DBAPIError:
        return None
    finally:
        engine.dispose()


def _wait_for_more(url: str, what: str) -> None:
    """Wait until PHASE_ROWS more invoices are committed than now, and PHASE_SECONDS pass."""
    counts: list[int] = []
    until = time.monotonic() + PHASE_SECONDS

    def counted() -> bool:
        count = _count(url)
        if count is not None:
            counts.append(count)
        enough = len(counts) > 1 and counts[-1] >= counts[0] + PHASE_ROWS
        return enough and time.monotonic() >= until

    wait_until(counted, what, RETRY_SECONDS)


def test_patroni_switchover_then_leader_killed(record_property: Any) -> None:
    """Ride out a switchover and a SIGKILL of the leader behind HAProxy; every unit once."""
    started = time.monotonic()
    with (
        patroni_cluster() as cluster,
        haproxy([node.backend for node in cluster.nodes], check_path="/primary") as port,
        fresh_registry(),
    ):
        moments = {"cluster_ready_s": time.monotonic() - started}
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"
        wait_until(lambda: _only_to_the_leader(url, len(cluster.nodes)), "HAProxy's checks", 30)
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        mortar_seq.create_tables(engine)
        orchestrated_workers.units_metadata.create_all(engine)
        with engine.begin() as connection:
            register_sequence(INVOICE, connection, TableSequence())
        engine.dispose()

        with orchestrated_workers.running(url, WORKERS, RETRY_SECONDS) as reports:
            _wait_for_more(url, "commits before the switchover")
            before = time.monotonic()
            leader = cluster.switchover()
            moments["switchover_s"] = time.monotonic() - before
            cluster.wait_for_sync_standby()
            _wait_for_more(url, "commits after the switchover")
            before = time.monotonic()
            cluster.kill(leader)
            leader = cluster.wait_for_leader(other_than=leader)
            moments["failover_s"] = time.monotonic() - before
            _wait_for_more(url, "commits after the failover")
        wall_time = time.monotonic() - started

        cluster.caught_up(leader)
        rows = {node.name: _rows(node.url()) for node in cluster.alive()}
        outcome = check(rows[leader], reports, wall_time)
        for name, held in rows.items():  # every surviving node holds the same rows
            assert held == rows[leader], f"{name} differs from the leader {leader}"

    figures: dict[str, object] = {
        **outcome.as_properties(),
        **{key: round(value, 1) for key, value in moments.items()},
    }
    figures["patroni_timings"] = f"ttl={TTL} loop_wait={LOOP_WAIT} retry_timeout={RETRY_TIMEOUT}"
    for key, value in figures.items():
        record_property(key, value)
    print(f"\nPatroni behind HAProxy: {figures}")
    given_up = [unit for report in reports for unit in report.gave_up]
    assert outcome.gave_up == 0, f"{outcome.gave_up} units given up, first: {given_up[:3]}"
    assert outcome.committed_twice == 0


def _rows(url: sa.URL) -> list[tuple[str, int]]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        return committed_rows(engine)
    finally:
        engine.dispose()
