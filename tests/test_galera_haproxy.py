"""Galera behind HAProxy in single-writer mode, with a Synced-only health check.

Four worker processes number invoices through HAProxy with the shipped retry helper. The
writer node (the first) is killed with SIGKILL; HAProxy sends the workers to the next Synced
node; the killed node rejoins by IST and, once Synced, takes the writes back (HAProxy closes
the sessions on the backup). Asserted: the committed numbers are exactly 1..N, every
acknowledged commit is there, every node holds the same rows, no unit of work given up and
none committed twice. The figures go to the JUnit report as properties.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import mortar_seq
from mortar_seq import TableSequence, register_sequence

from . import orchestrated_workers
from .conftest import fresh_registry
from .galera import DATABASE, Galera, Node, galera_cluster
from .galera_check import synced_check
from .haproxy import Backend, haproxy
from .orchestrated_workers import INVOICE, Report, check, committed_rows, invoices
from .servers import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]

WORKERS = 4
RETRY_SECONDS = 30.0  # longer than a Galera view change here (evs timeouts of a few seconds)
# Each writer in turn (node 1, node 2, node 1 again) commits for a few seconds and some rows.
PHASE_SECONDS = 3.0
PHASE_ROWS = 100


@contextmanager
def _behind_haproxy(cluster: Galera) -> Iterator[tuple[int, list[Backend]]]:
    """HAProxy before the cluster, node 1 the writer, the others backups in order; yield its
    port and the backends."""
    with ExitStack() as stack:
        backends = [
            Backend(f"node{node.index}", node.port, stack.enter_context(synced_check(node.port)))
            for node in cluster.nodes
        ]
        yield stack.enter_context(haproxy(backends, single_writer=True)), backends


def _check_answer(backend: Backend) -> int:
    """The HTTP status the Synced-only check of *backend* answers now."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{backend.check_port}/", timeout=5) as got:
            return int(got.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def _count(engine: Engine) -> int | None:
    """How many invoices *engine*'s node holds (None while it cannot tell: a failover)."""
    try:
        with engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(invoices)
            return int(connection.execute(query).scalar_one())
    except sa.exc.DBAPIError:
        return None


def _wait_for_more(
    engine: Engine, what: str, rows: int = PHASE_ROWS, seconds: float = PHASE_SECONDS
) -> int:
    """Wait until *rows* more invoices are committed than now, and at least *seconds*; return
    the new count."""
    counts: list[int] = []
    until = time.monotonic() + seconds

    def counted() -> bool:
        count = _count(engine)
        if count is not None:
            counts.append(count)
        return bool(counts) and counts[-1] >= counts[0] + rows and time.monotonic() >= until

    wait_until(counted, what, 60)
    return counts[-1]


def _writer_port(url: str) -> int | None:
    """The port of the node a fresh connection through HAProxy lands on (None: refused)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT @@port").scalar_one())
    except sa.exc.DBAPIError:
        return None
    finally:
        engine.dispose()


def _node_engine(node: Node) -> Engine:
    # Reads wait until the node has applied what the cluster committed before them.
    causal = {"init_command": "SET SESSION wsrep_sync_wait = 1"}
    return sa.create_engine(node.url(), poolclass=sa.NullPool, connect_args=causal)


def _given_up_before(reports: list[Report], moment: float) -> int:
    """How many units were given up before *moment*: their worker's next unit was
    acknowledged by then."""
    acknowledged = {unit: at for report in reports for unit, _, at in report.acknowledged}
    count = 0
    for report in reports:
        for unit, _ in report.gave_up:
            serial = int(unit.split("-")[1])
            count += acknowledged.get(f"{report.worker}-{serial + 1}", moment) < moment
    return count


def test_writer_killed_rejoins_and_takes_writes_back(record_property: Any) -> None:
    """Kill the writer behind HAProxy, ride out the move to a backup, move writes back."""
    with (
        galera_cluster() as cluster,
        _behind_haproxy(cluster) as (port, backends),
        fresh_registry(),
    ):
        writer, backup = cluster.nodes[0], cluster.nodes[1]
        assert [_check_answer(backend) for backend in backends] == [200, 200, 200]
        url = f"mysql+pymysql://root@127.0.0.1:{port}/{DATABASE}"
        through = sa.create_engine(url, pool_pre_ping=True)
        mortar_seq.create_tables(through)
        orchestrated_workers.units_metadata.create_all(through)
        with through.begin() as connection:
            register_sequence(INVOICE, connection, TableSequence())
        assert _writer_port(url) == writer.port

        started = time.monotonic()
        with orchestrated_workers.running(url, WORKERS, RETRY_SECONDS) as reports:
            before_kill = _wait_for_more(through, "commits on node 1")
            cluster.kill(writer)
            assert _check_answer(backends[0]) == 503
            wait_until(lambda: _writer_port(url) == backup.port, "writes moved to node 2", 30)
            _wait_for_more(through, "commits on node 2")
            rejoined_at = time.monotonic()
            cluster.rejoin(writer)  # returns once it is Synced
            wait_until(lambda: _writer_port(url) == writer.port, "writes moved back to node 1", 30)
            moved_back = _wait_for_more(through, "a count through HAProxy", 0, 0)
            back_on_writer = _wait_for_more(through, "commits on node 1 again")
        wall_time = time.monotonic() - started
        through.dispose()

        engines = [_node_engine(node) for node in cluster.nodes]
        for node in cluster.nodes:
            wait_until(partial(cluster.synced, node), f"node {node.index} Synced", 60)
        rows = committed_rows(engines[0])
        for node, engine in zip(cluster.nodes, engines, strict=True):
            assert committed_rows(engine) == rows, f"node {node.index} holds other rows"
            engine.dispose()
        outcome = check(rows, reports, wall_time)
        # A unit given up although its row is there: its COMMIT was cut off after the node
        # had committed it (the outcome the helper could not know).
        given_up = [unit for report in reports for unit in report.gave_up]
        stored = {unit for unit, _ in rows}
        committed_anyway = [unit for unit, _ in given_up if unit in stored]
        figures = {
            **outcome.as_properties(),
            "gave_up_but_committed": len(committed_anyway),
            "gave_up_at_kill": _given_up_before(reports, rejoined_at),
            "rows_before_kill": before_kill,
            "rows_on_backup": moved_back - before_kill,
            "rows_after_moving_back": back_on_writer - moved_back,
        }
        for key, value in figures.items():
            record_property(key, value)
        print(f"\nGalera behind HAProxy: {figures}")
        assert outcome.gave_up == 0, (
            f"units of work given up: {given_up}; committed all the same: {committed_anyway}"
        )
        assert outcome.committed_twice == 0, "a unit of work committed twice"
