"""What the private-server helpers share: free loopback ports, binaries, a loud skip."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .databases import IN_CI

_taken: set[int] = set()  # handed out in this process: a port is bound only once its server starts


def free_port() -> int:
    """A loopback port nobody listens on (nor was given to another server of this run)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _taken:
            _taken.add(port)
            return port


def require(*paths: str | Path | None) -> None:
    """Skip loudly where a binary is missing; under CI=true fail instead."""
    missing = [str(path) for path in paths if path is None or not _exists(path)]
    if not missing:
        return
    message = f"MISSING SERVER BINARIES {missing}: the cluster scenario cannot run here"
    if IN_CI:
        installs = "galera-4, rsync, pgbouncer, patroni, etcd-server, haproxy"
        pytest.fail(f"CI=true and {message} (.ci/run installs {installs})")
    pytest.skip(message)


def _exists(path: str | Path) -> bool:
    return Path(path).exists() if "/" in str(path) else shutil.which(str(path)) is not None


def wait_until(ready: Callable[[], bool], what: str, seconds: float = 120) -> None:
    """Poll *ready* until it says yes; fail naming *what* after *seconds*."""
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {seconds} s")
        time.sleep(0.2)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Ask *process* to end, then kill it if it has not after ten seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
