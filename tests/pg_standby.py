"""A private PostgreSQL primary with a synchronous streaming standby, on loopback ports.

The primary names the standby in ``synchronous_standby_names``, so a COMMIT returns only
once the standby has the commit record: what makes an acknowledged value survive a
failover. The standby is made with ``pg_basebackup -R`` and promoted by the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .private_cluster import server_binaries
from .servers import free_port, require, wait_until

DATABASE = "mortar_seq_ha"


@dataclass
class Server:
    folder: Path
    port: int
    settings: tuple[str, ...] = ()

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = DATABASE) -> URL:
        return URL.create(
            "postgresql+psycopg", username="postgres", host="127.0.0.1", port=self.port,
            database=database,
        )  # fmt: skip


@dataclass
class PrimaryAndStandby:
    binaries: Path
    primary: Server
    standby: Server

    def url(self) -> URL:
        """Both hosts, the writable one chosen at connect time (libpq multi-host)."""
        hosts = [f"127.0.0.1:{server.port}" for server in (self.primary, self.standby)]
        return URL.create(
            "postgresql+psycopg",
            username="postgres",
            database=DATABASE,
            query={"host": hosts, "target_session_attrs": "read-write"},
        )

    def run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root: run it as the postgres account there.
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        with (self.primary.folder.parent / "command.log").open("a") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)

    def pg_ctl(self, server: Server, *args: str) -> None:
        options = " ".join(
            [f"-p {server.port} -k {server.folder} -c listen_addresses=127.0.0.1", *server.settings]
        )
        log = str(server.folder / "server.log")
        self.run(str(self.binaries / "pg_ctl"), "-D", str(server.data), "-l", log, "-o", options,
                 "-w", *args)  # fmt: skip

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster and every backend, as a crash of its host would."""
        pid = int((self.primary.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        for each in [pid, *map(int, children.stdout.split())]:
            with suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), "the killed primary's exit", 30)

    def promote(self) -> None:
        self.run(str(self.binaries / "pg_ctl"), "-D", str(self.standby.data), "-w", "promote")

    def synchronous(self) -> bool:
        query = "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
        engine = sa.create_engine(self.primary.url("postgres"), poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                return bool(connection.exec_driver_sql(query).scalar_one())
        finally:
            engine.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie until its parent (pg_ctl's shell, long gone: init) reaps it.
    with suppress(OSError):
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    return False


@contextmanager
def primary_and_standby() -> Iterator[PrimaryAndStandby]:
    """Start a primary and its synchronous standby with database DATABASE; remove them after."""
    found = server_binaries()
    # pg_ctl may be a link in PATH: the other server tools sit beside its target.
    binaries = None if found is None else (found / "pg_ctl").resolve().parent
    require(binaries, binaries and binaries / "pg_basebackup")
    assert binaries is not None
    folder = Path(tempfile.mkdtemp(prefix="mortar_seq_pg_ha_"))
    primary = Server(folder / "primary", free_port(), (
        "-c synchronous_standby_names=standby",
        "-c synchronous_commit=on",
        "-c wal_level=replica",
        "-c fsync=off",
    ))  # fmt: skip
    standby = Server(folder / "standby", free_port(), ("-c cluster_name=standby", "-c fsync=off"))
    pair = PrimaryAndStandby(binaries, primary, standby)
    started: list[Server] = []
    try:
        for server in (primary, standby):
            server.folder.mkdir()
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres", str(folder)], check=True)
        pair.run(str(binaries / "initdb"), "-D", str(primary.data), "-U", "postgres",
                 "-A", "trust", "--no-sync")  # fmt: skip
        pair.pg_ctl(primary, "start")
        started.append(primary)
        pair.run(str(binaries / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                 "-U", "postgres", "-D", str(standby.data), "-R", "--checkpoint=fast")  # fmt: skip
        pair.pg_ctl(standby, "start")
        started.append(standby)
        wait_until(pair.synchronous, "the synchronous standby", 60)
        admin = sa.create_engine(
            primary.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
        )
        with admin.connect() as connection:
            # With "on" the COMMIT returns once the standby has flushed the record, before it
            # has replayed it: a connection to the standby could still find no such database.
            # remote_apply returns only once the standby has replayed it (this session only:
            # the workers' commits keep "on", the guarantee under test).
            connection.exec_driver_sql("SET synchronous_commit = remote_apply")
            connection.exec_driver_sql(f"CREATE DATABASE {DATABASE}")
        admin.dispose()
        yield pair
    finally:
        for server in reversed(started):
            if (server.data / "postmaster.pid").exists():
                with suppress(subprocess.CalledProcessError):
                    pair.pg_ctl(server, "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
