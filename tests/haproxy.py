"""A private HAProxy on a free loopback port, routing by an HTTP health check, for the tests."""

from __future__ import annotations

import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .servers import free_port, require, stop_process, wait_until

HAPROXY = "haproxy"


@dataclass(frozen=True)
class Backend:
    """A database server HAProxy may send clients to, and the port of its HTTP health check.

    The check answers 200 when the server should take writes (Patroni's REST ``/primary``;
    a small checker of ``wsrep_local_state`` for Galera) and anything else when not.
    """

    name: str
    port: int
    check_port: int


def _config(port: int, backends: Sequence[Backend], check_path: str, single_writer: bool) -> str:
    servers = []
    for index, backend in enumerate(backends):
        backup = " backup" if single_writer and index else ""
        servers.append(
            f"    server {backend.name} 127.0.0.1:{backend.port}"
            f" check port {backend.check_port}{backup}"
        )
    return "\n".join(
        [
            "global",
            "    maxconn 200",
            "defaults",
            "    mode tcp",
            "    timeout connect 2s",
            "    timeout client 60s",
            "    timeout server 60s",
            "    timeout check 1s",
            "frontend writes",
            f"    bind 127.0.0.1:{port}",
            "    default_backend writers",
            "backend writers",
            f"    option httpchk GET {check_path}",
            "    http-check expect status 200",
            # A server that stops passing its check loses its clients at once (they reconnect to
            # the new writer); when the preferred writer is back, clients leave the backup.
            "    default-server inter 300ms fall 2 rise 2 on-marked-down shutdown-sessions"
            " on-marked-up shutdown-backup-sessions",
            *servers,
            "",
        ]
    )


def _accepting(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def haproxy(
    backends: Sequence[Backend], *, check_path: str = "/", single_writer: bool = False
) -> Iterator[int]:
    """Run HAProxy in front of *backends*; yield the loopback port clients connect to.

    Every server that passes its check takes clients, unless *single_writer*: then the first
    passing one in order takes them all and the others are backups (Galera in single-writer
    mode). HAProxy is stopped on the way out.
    """
    require(HAPROXY)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="mortar_seq_haproxy_") as folder:
        config = Path(folder) / "haproxy.cfg"
        config.write_text(_config(port, backends, check_path, single_writer))
        subprocess.run([HAPROXY, "-c", "-q", "-f", str(config)], check=True)
        process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: _accepting(port), "HAProxy", seconds=20)
            yield port
        finally:
            stop_process(process)
