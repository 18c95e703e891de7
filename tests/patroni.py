"""Three Patroni nodes in synchronous mode with a private etcd, on loopback ports, for the tests.

A single-member etcd holds the leader lock; each Patroni node runs its own PostgreSQL (its
data folder, PostgreSQL port and REST port of its own) in a temporary folder, trust
authentication from 127.0.0.1 only. Timings are shortened for CI (TTL, LOOP_WAIT,
RETRY_TIMEOUT). A switchover goes through Patroni's REST API; a crash is a SIGKILL of a
node's Patroni and of its PostgreSQL; everything is stopped and removed on the way out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .haproxy import Backend
from .private_cluster import server_binaries
from .servers import free_port, require, stop_process, wait_until

PATRONI = "patroni"
ETCD = "etcd"
DATABASE = "mortar_seq_patroni"
# Patroni's defaults are 30 / 10 / 10 (s); it wants loop_wait + 2 * retry_timeout <= ttl.
# A leader that dies holds its lock until the TTL runs out: 10 s keeps a failover within
# the workers' budget and the scenario within a minute; a loop of 1 s notices a free lock
# (and a switchover request) at once; 3 s of DCS retries are plenty for etcd on loopback.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 10, 1, 3
NODES = 3


@dataclass
class Node:
    name: str
    folder: Path
    port: int
    rest_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def backend(self) -> Backend:
        """What HAProxy needs: the PostgreSQL port, checked on Patroni's REST port."""
        return Backend(self.name, self.port, self.rest_port)

    def url(self, database: str = DATABASE) -> URL:
        return URL.create(
            "postgresql+psycopg", username="postgres", host="127.0.0.1", port=self.port,
            database=database,
        )  # fmt: skip

    def rest(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, JSON or text) of a REST call; (0, None) when Patroni does not answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.rest_port}{path}", data=data)
        try:
            with urllib.request.urlopen(request, timeout=30 if data else 2) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except OSError:
            return 0, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def postmaster(self) -> int | None:
        with suppress(OSError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().split()[0])
        return None

    def log_tail(self, size: int = 3000) -> str:
        with suppress(OSError):
            return (self.folder / "patroni.log").read_text(errors="replace")[-size:]
        return ""


@dataclass
class Patroni:
    folder: Path
    binaries: Path
    etcd_port: int
    nodes: list[Node]
    scope: str
    killed: set[str] = field(default_factory=set)

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def alive(self) -> list[Node]:
        return [node for node in self.nodes if node.process and node.process.poll() is None]

    def members(self) -> list[dict[str, Any]]:
        """The members as Patroni's REST ``/cluster`` lists them (from any node that answers)."""
        for node in self.alive():
            status, answer = node.rest("/cluster")
            if status == 200 and isinstance(answer, dict):
                return list(answer["members"])
        return []

    def leader(self) -> str | None:
        """The name of the running leader, if there is one."""
        for member in self.members():
            if member["role"] == "leader" and member["state"] == "running":
                return str(member["name"])
        return None

    def wait_for_leader(self, *, other_than: str | None = None, seconds: float = 60) -> str:
        """Wait until a leader (not *other_than*) runs and takes writes; return its name."""
        found: list[str] = []

        def ready() -> bool:
            name = self.leader()
            if name is None or name == other_than:
                return False
            found[:] = [name]
            return self.node(name).rest("/primary")[0] == 200 and _writable(self.node(name))

        self._wait(ready, "a new leader" if other_than else "a leader", seconds)
        return found[0]

    def wait_for_sync_standby(self, seconds: float = 60) -> str:
        """Wait until a running standby is synchronous (``/sync`` answers 200); return its name."""
        found: list[str] = []

        def ready() -> bool:
            for member in self.members():
                if member["role"] == "sync_standby" and member["state"] == "running":
                    name = str(member["name"])
                    # /sync checks the synchronous state against the current leader.
                    if self.node(name).rest("/sync")[0] == 200:
                        found[:] = [name]
                        return True
            return False

        self._wait(ready, "a synchronous standby", seconds)
        return found[0]

    def wait_for_replicas(self, seconds: float = 60) -> None:
        """Wait until every live node runs, the standbys streaming from the current leader."""
        leader = self.wait_for_leader(seconds=seconds)

        def ready() -> bool:
            members = self.members()
            timelines = {m.get("timeline") for m in members if m["name"] == leader}
            live = {node.name for node in self.alive()}
            running = [
                m
                for m in members
                if m["name"] in live and m["state"] == "running" and m.get("timeline") in timelines
            ]
            return len(running) == len(live)

        self._wait(ready, "the standbys", seconds)

    def caught_up(self, leader: str, seconds: float = 60) -> None:
        """Wait until every other live node has replayed what *leader* has written so far."""
        with _connect(self.node(leader).url("postgres")) as connection:
            target = connection.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar_one()
        for node in self.alive():
            if node.name != leader:
                self._wait(lambda n=node: _replayed(n, target), f"{node.name} at {target}", seconds)

    def switchover(self) -> str:
        """Hand the leadership over to the synchronous standby; return the new leader's name."""
        leader = self.wait_for_leader()
        status, answer = self.node(leader).rest("/switchover", {"leader": leader})
        if status != 200:
            raise RuntimeError(f"switchover refused: {status} {answer}")
        return self.wait_for_leader(other_than=leader)

    def kill(self, name: str) -> None:
        """SIGKILL the node's Patroni, its PostgreSQL and every backend, as a crash would."""
        node = self.node(name)
        self.killed.add(name)
        pids = [pid for pid in (node.process and node.process.pid, node.postmaster()) if pid]
        for each in [*pids, *(child for pid in pids for child in _descendants(pid))]:
            with suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)
        if node.process is not None:
            node.process.wait()
        wait_until(lambda: not any(_alive(pid) for pid in pids), f"{name}'s exit", 30)

    def start(self, node: Node) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
        with (node.folder / "patroni.log").open("ab") as log:
            node.process = subprocess.Popen(
                [PATRONI, str(node.folder / "patroni.yml")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # PostgreSQL refuses to run as root: Patroni (and so PostgreSQL) runs as postgres.
                **_as_postgres(),
            )

    def stop(self) -> None:
        """Stop every node (Patroni stops its PostgreSQL), then etcd's and any leftover process."""
        for node in self.alive():
            assert node.process is not None
            node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()
        # A postmaster whose Patroni was killed, or whose shutdown did not finish.
        for node in self.nodes:
            pid = node.postmaster()
            if pid and _alive(pid) and _command_line(pid).find(str(node.data)) >= 0:
                for each in [pid, *_descendants(pid)]:
                    with suppress(ProcessLookupError):
                        os.kill(each, signal.SIGKILL)

    def _wait(self, ready: Any, what: str, seconds: float) -> None:
        def checked() -> bool:
            for node in self.nodes:
                if node.name in self.killed or node.process is None:
                    continue
                if (code := node.process.poll()) is not None:
                    raise RuntimeError(f"Patroni {node.name} exited ({code}):\n{node.log_tail()}")
            return bool(ready())

        wait_until(checked, what, seconds)


def _connect(url: URL) -> Any:
    return sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT").connect()


def _writable(node: Node) -> bool:
    try:
        with _connect(node.url("postgres")) as connection:
            return not connection.exec_driver_sql("SELECT pg_is_in_recovery()").scalar_one()
    except sa.exc.DBAPIError:
        return False


def _replayed(node: Node, target: str) -> bool:
    # Streaming from the leader: a standby still on a timeline the leader left (before its
    # pg_rewind) may be past the leader's position with other contents.
    query = (
        "SELECT pg_last_wal_replay_lsn() >= CAST(%(target)s AS pg_lsn)"
        " AND EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming')"
    )
    try:
        with _connect(node.url("postgres")) as connection:
            return bool(connection.exec_driver_sql(query, {"target": target}).scalar_one())
    except sa.exc.DBAPIError:
        return False


def _as_postgres() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(pid: int) -> list[int]:
    parents = _parents()
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def _command_line(pid: int) -> str:
    with suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie until its parent reaps it (PostgreSQL's postmaster is detached from Patroni).
    with suppress(OSError):
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    return False


def _etcd_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def _node_config(cluster: Patroni, node: Node) -> dict[str, Any]:
    trust = ["host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"]
    return {
        "scope": cluster.scope,
        "namespace": "/mortar_seq/",
        "name": node.name,
        "restapi": {
            "listen": f"127.0.0.1:{node.rest_port}",
            "connect_address": f"127.0.0.1:{node.rest_port}",
        },
        "etcd3": {"hosts": [f"127.0.0.1:{cluster.etcd_port}"]},
        "bootstrap": {
            "dcs": {
                "ttl": TTL,
                "loop_wait": LOOP_WAIT,
                "retry_timeout": RETRY_TIMEOUT,
                "maximum_lag_on_failover": 1024 * 1024,
                "synchronous_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {
                        "wal_level": "replica",
                        "hot_standby": "on",
                        "wal_log_hints": "on",
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                        "max_connections": 100,
                        # A SIGKILL is not a power cut: the page cache keeps what was written.
                        "fsync": "off",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"auth": "trust"}],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{node.port}",
            "connect_address": f"127.0.0.1:{node.port}",
            "data_dir": str(node.data),
            "bin_dir": str(cluster.binaries),
            "pgpass": str(node.folder / "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres"},
                "replication": {"username": "postgres"},
                "rewind": {"username": "postgres"},
            },
            "pg_hba": trust,
            "parameters": {"unix_socket_directories": str(node.folder)},
        },
        "watchdog": {"mode": "off"},
    }


@contextmanager
def _etcd(folder: Path) -> Iterator[int]:
    client, peer = free_port(), free_port()
    peer_url = f"http://127.0.0.1:{peer}"
    command = [
        ETCD,
        "--name=etcd0",
        f"--data-dir={folder / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=etcd0={peer_url}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token=mortar_seq_{uuid.uuid4().hex[:8]}",
    ]
    with (folder / "etcd.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _etcd_healthy(client), "etcd", 30)
        yield client
    finally:
        stop_process(process)


@contextmanager
def patroni_cluster() -> Iterator[Patroni]:
    """Start etcd and three Patroni nodes with database DATABASE, a synchronous standby
    among them; stop and remove everything afterwards."""
    found = server_binaries()
    # pg_ctl may be a link in PATH: the other server tools sit beside its target.
    binaries = None if found is None else (found / "pg_ctl").resolve().parent
    require(PATRONI, ETCD, binaries, binaries and binaries / "pg_rewind")
    assert binaries is not None
    folder = Path(tempfile.mkdtemp(prefix="mortar_seq_patroni_"))
    if os.geteuid() == 0:  # Patroni runs as postgres: it must reach its node's folder
        shutil.chown(folder, "postgres", "postgres")
    try:
        with _etcd(folder) as etcd_port:
            nodes = [
                Node(f"node{index}", folder / f"node{index}", free_port(), free_port())
                for index in range(NODES)
            ]
            scope = f"mortar_seq_{uuid.uuid4().hex[:8]}"
            cluster = Patroni(folder, binaries, etcd_port, nodes, scope)
            for node in nodes:
                node.folder.mkdir()
                (node.folder / "patroni.yml").write_text(json.dumps(_node_config(cluster, node)))
                if os.geteuid() == 0:
                    shutil.chown(node.folder, "postgres", "postgres")
            try:
                for node in nodes:
                    cluster.start(node)
                leader = cluster.wait_for_leader(seconds=120)
                with _connect(cluster.node(leader).url("postgres")) as connection:
                    connection.exec_driver_sql(f"CREATE DATABASE {DATABASE}")
                cluster.wait_for_replicas(seconds=120)
                cluster.wait_for_sync_standby(seconds=60)
                yield cluster
            except BaseException:
                for node in nodes:
                    print(f"--- {node.name} patroni.log\n{node.log_tail()}", file=sys.stderr)
                raise
            finally:
                cluster.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
