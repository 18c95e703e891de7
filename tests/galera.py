"""A private 3-node MariaDB Galera cluster on loopback ports, in a temporary folder.

Each node has its own data folder and SQL, group-communication, IST and SST ports. The
first node bootstraps the cluster (``--wsrep-new-cluster``); the others join it by rsync
SST. A node killed with SIGKILL is started again from its recovered position
(``--wsrep-recover``), so it catches up by IST.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .servers import free_port, require, wait_until

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "mariadb-install-db"
PROVIDER = "/usr/lib/galera/libgalera_smm.so"
DATABASE = "mortar_seq_galera"


@dataclass
class Node:
    index: int
    folder: Path
    port: int
    gcomm: int
    ist: int
    sst: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = DATABASE) -> URL:
        return URL.create(
            "mysql+pymysql", username="root", host="127.0.0.1", port=self.port, database=database
        )


@dataclass
class Galera:
    folder: Path
    nodes: list[Node] = field(default_factory=list)

    def options(self, node: Node) -> list[str]:
        peers = ",".join(f"127.0.0.1:{other.gcomm}" for other in self.nodes)
        provider = (
            f"gmcast.listen_addr=tcp://127.0.0.1:{node.gcomm};ist.recv_addr=127.0.0.1:{node.ist};"
            "gcache.size=64M;evs.keepalive_period=PT0.3S;evs.inactive_check_period=PT0.5S;"
            "evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.install_timeout=PT3S"
        )
        return [
            MARIADBD,
            "--no-defaults",
            f"--datadir={node.data}",
            f"--socket={node.folder / 'mariadb.sock'}",
            f"--pid-file={node.folder / 'mariadb.pid'}",
            f"--log-error={node.folder / 'error.log'}",
            f"--port={node.port}",
            "--bind-address=127.0.0.1",
            "--user=mysql",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=2",
            "--innodb-autoinc-lock-mode=2",
            "--binlog-format=ROW",
            "--max-connections=200",
            "--wsrep-on=ON",
            f"--wsrep-provider={PROVIDER}",
            f"--wsrep-cluster-address=gcomm://{peers}",
            f"--wsrep-node-address=127.0.0.1:{node.gcomm}",
            f"--wsrep-node-incoming-address=127.0.0.1:{node.port}",
            f"--wsrep-node-name=node{node.index}",
            "--wsrep-cluster-name=mortar_seq",
            "--wsrep-sst-method=rsync",
            f"--wsrep-sst-receive-address=127.0.0.1:{node.sst}",
            f"--wsrep-provider-options={provider}",
        ]

    def start(self, node: Node, *extra: str) -> None:
        log = (node.folder / "stdout.log").open("ab")
        node.process = subprocess.Popen(
            [*self.options(node), *extra], stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(lambda: self.synced(node), f"Galera node {node.index}", 120)

    def synced(self, node: Node) -> bool:
        if node.process is not None and node.process.poll() is not None:
            tail = (node.folder / "error.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"Galera node {node.index} exited:\n{tail}")
        engine = sa.create_engine(node.url(""), poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                state = connection.exec_driver_sql(
                    "SHOW STATUS LIKE 'wsrep_local_state_comment'"
                ).one()[1]
                ready = connection.exec_driver_sql("SHOW STATUS LIKE 'wsrep_ready'").one()[1]
                return bool(state == "Synced" and ready == "ON")
        except sa.exc.DBAPIError:
            return False
        finally:
            engine.dispose()

    def kill(self, node: Node) -> None:
        """SIGKILL the node's server, as a crash would."""
        assert node.process is not None
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(30)
        node.process = None

    def rejoin(self, node: Node) -> None:
        """Start a killed node again from its recovered position: it catches up by IST."""
        recovered = subprocess.run(
            [*self.options(node), "--wsrep-recover", f"--log-error={node.folder / 'recover.log'}"],
            capture_output=True,
            check=False,
        )
        log = (node.folder / "recover.log").read_text(errors="replace")
        found = re.findall(r"Recovered position: (\S+:-?\d+)", log)
        extra = [f"--wsrep-start-position={found[-1]}"] if found else []
        assert found, (recovered.returncode, log[-2000:])
        self.start(node, *extra)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGKILL)
                with suppress(subprocess.TimeoutExpired):
                    node.process.wait(30)


def install_data(folder: Path, data: Path) -> None:
    """Make the system tables of a private MariaDB server in *data* (inside *folder*, which
    the mysql account must own when the tests run as root)."""
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "mysql:mysql", str(folder)], check=True)
    installed = subprocess.run(
        [
            INSTALL_DB,
            "--no-defaults",
            f"--datadir={data}",
            "--user=mysql",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr


@contextmanager
def galera_cluster(size: int = 3) -> Iterator[Galera]:
    """Start a *size*-node Galera cluster with an empty database DATABASE; remove it after."""
    require(MARIADBD, INSTALL_DB, PROVIDER, "rsync")
    folder = Path(tempfile.mkdtemp(prefix="mortar_seq_galera_"))
    cluster = Galera(folder)
    try:
        for index in range(1, size + 1):
            home = folder / f"node{index}"
            home.mkdir()
            cluster.nodes.append(
                Node(index, home, free_port(), free_port(), free_port(), free_port())
            )
        first = cluster.nodes[0]
        first.data.mkdir()
        install_data(folder, first.data)
        for node in cluster.nodes[1:]:
            node.data.mkdir()  # empty: it joins by SST
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "mysql:mysql", str(folder)], check=True)
        cluster.start(first, "--wsrep-new-cluster")
        for node in cluster.nodes[1:]:
            cluster.start(node)
        admin = sa.create_engine(first.url(""), poolclass=sa.NullPool)
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {DATABASE}")
        admin.dispose()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
