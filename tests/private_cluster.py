"""A PostgreSQL cluster of the test's own, in a temporary folder, that it may restart."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None where PostgreSQL's server is absent."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivateCluster:
    binaries: Path
    folder: Path
    port: int

    @property
    def url(self) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username="postgres",
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        )

    def pg_ctl(self, *args: str) -> None:
        data = str(self.folder / "data")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run(str(self.binaries / "pg_ctl"), "-D", data, "-o", options, "-w", *args)

    def _run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root: run it as the postgres account there.
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        log = self.folder / "command.log"
        with log.open("a") as output:
            subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT)


@contextmanager
def private_cluster(binaries: Path) -> Iterator[PrivateCluster]:
    """initdb a cluster in a new temporary folder, start it, and remove it all afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="mortar_seq_pg_"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    cluster = PrivateCluster(binaries, folder, _free_port())
    try:
        cluster._run(
            str(binaries / "initdb"),
            "-D",
            str(folder / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )
        cluster.pg_ctl("-l", str(folder / "server.log"), "start")
        try:
            yield cluster
        finally:
            cluster.pg_ctl("-m", "immediate", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
