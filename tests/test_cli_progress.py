"""Progress on stderr for long ``next -n``, ``audit`` and ``import`` runs: one line redrawn
on a terminal, nothing where stderr is a pipe (scripts see no change).

Each command runs as a new process with stderr on a pseudo-terminal (or a pipe), made long
by another connection holding SQLite's lock until the progress line shows: a lock wait is
a long run too, and the line says how long. The line is the command line's own output, the
same on every database, so SQLite alone (whose lock a test can hold from outside) runs it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a new process per test, each waiting for a lock

# Long enough for a loaded machine to start the command and reach its wait.
_PATIENCE_SECONDS = 30
# How long a lock is held where no progress line is expected (stderr on a pipe).
_HELD_SECONDS = 1.5


class Terminal:
    """A pseudo-terminal: a process writes to its far end; what it wrote is read as it comes."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self._read: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # the far end closed
                return
            if not data:
                return
            self._read.append(data)

    @property
    def text(self) -> str:
        return b"".join(self._read).decode()

    def shows(self, text: str) -> bool:
        """Wait until *text* shows (at most _PATIENCE_SECONDS); tell whether it did."""
        deadline = time.monotonic() + _PATIENCE_SECONDS
        while text not in self.text:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> str:
        time.sleep(0.2)  # what the process wrote last reaches this end
        os.close(self.slave)
        self._reader.join(5)
        os.close(self.master)
        return self.text


@contextmanager
def locked(database: Path, how: str) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's lock on *database*: IMMEDIATE keeps writers out, EXCLUSIVE readers too."""
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute(f"BEGIN {how}")
    try:
        yield connection
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def start(folder: Path, *argv: str, stdout: int, stderr: int) -> subprocess.Popen[bytes]:
    environment = {key: value for key, value in os.environ.items() if key != "MORTAR_SEQ_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "mortar_seq", *argv, "--wait", "60"],
        cwd=folder,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )


def on_terminal(folder: Path, lock: str, shown: str, *argv: str) -> tuple[int, bytes, str]:
    """Run ``mortar-seq ARGV`` with stderr on a terminal while *lock* is held, until *shown*
    is on it; return its exit status, its stdout and what the terminal showed."""
    terminal = Terminal()
    try:
        with locked(folder / "mortar_seq.sqlite", lock):
            process = start(folder, *argv, stdout=subprocess.PIPE, stderr=terminal.slave)
            waited = terminal.shows(shown)
        out, _ = process.communicate(timeout=60)
    finally:
        text = terminal.close()
    assert waited, f"no {shown!r} on the terminal: {text!r}"
    return process.returncode, out, text


def on_pipe(folder: Path, lock: str, *argv: str) -> tuple[int, bytes, bytes]:
    """Run ``mortar-seq ARGV`` with stderr on a pipe while *lock* is held a while."""
    with locked(folder / "mortar_seq.sqlite", lock):
        process = start(folder, *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(_HELD_SECONDS)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder whose database has a sequence 'x', a table t(n) of 1, 2, 4 and the table
    django-sequences keeps, with one sequence to carry over."""
    subprocess.run([sys.executable, "-m", "mortar_seq", "create", "x"], cwd=tmp_path, check=True)
    with sqlite3.connect(tmp_path / "mortar_seq.sqlite") as connection:
        connection.execute("CREATE TABLE t (n INTEGER)")
        connection.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (4,)])
        connection.execute("CREATE TABLE sequences_sequence (name TEXT PRIMARY KEY, last INTEGER)")
        connection.execute("INSERT INTO sequences_sequence VALUES ('invoices', 41)")
    return tmp_path


def test_next(folder: Path) -> None:
    status, out, shown = on_terminal(
        folder, "IMMEDIATE", "mortar-seq next x: 0 of 5 (", "next", "x", "-n", "5"
    )
    assert (status, out) == (0, b"1\n2\n3\n4\n5\n")
    # Redrawn in place, then erased: the terminal is left as it was.
    assert shown.startswith("\rmortar-seq next x: 0 of 5 (")
    assert "\n" not in shown
    assert shown.endswith("\r")
    assert shown.rstrip(" \r").endswith(")")


def test_next_on_a_pipe(folder: Path) -> None:
    assert on_pipe(folder, "IMMEDIATE", "next", "x", "-n", "5") == (0, b"1\n2\n3\n4\n5\n", b"")


def test_next_printing_on_the_terminal_too(folder: Path) -> None:
    """The values scrolling by show how far it is: no line to cut through them."""
    terminal = Terminal()
    try:
        with locked(folder / "mortar_seq.sqlite", "IMMEDIATE"):
            process = start(
                folder, "next", "x", "-n", "3", stdout=terminal.slave, stderr=terminal.slave
            )
            time.sleep(_HELD_SECONDS)
        assert process.wait(timeout=60) == 0
    finally:
        text = terminal.close()
    assert text == "1\r\n2\r\n3\r\n"  # the terminal's newlines


def test_audit(folder: Path) -> None:
    status, out, shown = on_terminal(
        folder, "EXCLUSIVE", "mortar-seq audit t.n: ", "audit", "t", "n"
    )
    assert status == 1  # a gap at 3
    assert b"gap\t3..3" in out
    assert shown.startswith("\rmortar-seq audit t.n: ")
    # The line is erased before the summary of what is not clean.
    assert re.search(r"\r +\rmortar-seq: t\.n is not clean: 1 gap\(s\)", shown)


def test_audit_on_a_pipe(folder: Path) -> None:
    status, out, err = on_pipe(folder, "EXCLUSIVE", "audit", "t", "n")
    assert (status, out) == (1, b"count\t3\nfirst\t1\nlast\t4\ngap\t3..3\n")
    assert err.decode().startswith("mortar-seq: t.n is not clean")
    assert b"mortar-seq audit" not in err


def test_import(folder: Path) -> None:
    shown_text = "mortar-seq import django-sequences: "
    status, out, shown = on_terminal(folder, "IMMEDIATE", shown_text, "import", "django-sequences")
    assert (status, out) == (0, b"invoices\t42\n")
    assert shown.startswith("\r" + shown_text)
    assert shown.endswith("\r")


def test_import_on_a_pipe(folder: Path) -> None:
    assert on_pipe(folder, "IMMEDIATE", "import", "django-sequences") == (0, b"invoices\t42\n", b"")
