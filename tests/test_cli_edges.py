"""The command line at its edges: pipes, interrupts, huge counts, locks and wrong setups.

Run as a user would, in a new folder, on the embedded SQLite default; pipes, signals and
memory limits in a process of its own (the console script).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import __version__
from mortar_seq.cli import main

from .test_cli import SCRIPT, fails, ok

# Address space for a command that takes 2,000,000 values: enough to import everything and
# hold a chunk, not enough to hold them all (about 70 MB as ints, 130 MB as identifiers).
MEMORY_CAP = 120 * 2**20

# (what to create, what to take): a gapless sequence, a pooled one, a gapless template.
KINDS = {
    "plain": (["create", "big"], ["next", "big"]),
    "pooled": (["create", "big", "--pooled"], ["next", "big"]),
    "template": (["create", "big", "T-{k}-{counter}"], ["next", "big", "k=a"]),
}


def number(line: str) -> int:
    """The counter in a printed value ('7' or 'T-a-7')."""
    return int(line.rpartition("-")[2])


def capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def shell(folder: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run *command* in bash with ``pipefail`` (so a pipeline's status is its first failure)."""
    environment = {key: value for key, value in os.environ.items() if key != "MORTAR_SEQ_URL"}
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=capped,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_closed_pipe_leaves_a_gap_never_a_duplicate(tmp_path: Path, kind: str) -> None:
    create, take = KINDS[kind]
    ok(tmp_path, *create)
    piped = shell(tmp_path, f"{SCRIPT} {' '.join(take)} -n 300000 | head -3")
    printed = [number(line) for line in piped.stdout.splitlines()]
    assert printed == [1, 2, 3]
    assert number(ok(tmp_path, *take)[0]) > max(printed)
    assert (piped.returncode, piped.stderr) == (141, "")  # quiet, 128 + SIGPIPE


@pytest.mark.parametrize("kind", KINDS)
def test_an_interrupt_leaves_a_gap_never_a_duplicate(tmp_path: Path, kind: str) -> None:
    create, take = KINDS[kind]
    ok(tmp_path, *create)
    environment = {key: value for key, value in os.environ.items() if key != "MORTAR_SEQ_URL"}
    process = subprocess.Popen(
        [SCRIPT, *take, "-n", "3000000"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)  # mid-output: the pipe is full, nothing is read
    rest = process.stdout.read()
    status = process.wait(timeout=60)
    whole_lines = (first + rest).split("\n")[:-1]  # a line cut short by the signal is left out
    printed = [number(line) for line in whole_lines]
    assert printed[:2] == [1, 2]
    assert number(ok(tmp_path, *take)[0]) > max(printed)
    assert (status, process.stderr.read()) == (130, "mortar-seq: interrupted\n")


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_large_counts_in_bounded_memory(tmp_path: Path, kind: str) -> None:
    create, take = KINDS[kind]
    ok(tmp_path, *create)
    done = shell(tmp_path, f"{SCRIPT} {' '.join(take)} -n 2000000 | tail -1")
    assert (done.returncode, done.stderr) == (0, "")
    assert number(done.stdout) >= 2_000_000
    huge = shell(tmp_path, f"{SCRIPT} {' '.join(take)} -n 1000000000 | head -1")
    assert (huge.returncode, huge.stderr) == (141, "")
    assert number(huge.stdout) > number(done.stdout)


def test_out_of_memory_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MORTAR_SEQ_URL", raising=False)
    assert main(["create", "x"]) == 0

    def exhausted(values: object) -> None:
        raise MemoryError

    monkeypatch.setattr("mortar_seq.cli.output.write_lines", exhausted)
    assert main(["next", "x"]) == 1
    assert capsys.readouterr().err == "mortar-seq: out of memory\n"


def test_keyword_values_are_text(tmp_path: Path) -> None:
    ok(tmp_path, "create", "D", "{dept}-{counter}")
    assert ok(tmp_path, "next", "D", "dept=0042") == ["0042-1"]
    assert ok(tmp_path, "next", "D", "dept=42") == ["42-1"]
    assert ok(tmp_path, "next", "D", "dept=007") == ["007-1"]
    assert ok(tmp_path, "next", "D", "dept= 7") == [" 7-1"]
    assert ok(tmp_path, "last", "D", "dept=0042") == ["0042-1"]
    ok(tmp_path, "create", "Y", "{year:04d}/{n:x}/{counter}")
    assert ok(tmp_path, "next", "Y", "year=24", "n=255") == ["0024/ff/1"]
    assert ok(tmp_path, "next", "Y", "year=0024", "n=255") == ["0024/ff/2"]  # renders alike
    stderr = fails(tmp_path, "next", "Y", "year=MMXXIV", "n=1")
    assert stderr == "mortar-seq: {year:04d} needs an integer, not 'MMXXIV'\n"


def test_delete(tmp_path: Path) -> None:
    ok(tmp_path, "create", "x")
    ok(tmp_path, "next", "x")
    assert ok(tmp_path, "delete", "x") == []
    assert fails(tmp_path, "delete", "x") == "mortar-seq: no sequence named 'x'\n"
    assert fails(tmp_path, "next", "x") == "mortar-seq: no sequence named 'x'\n"
    ok(tmp_path, "create", "x")
    assert ok(tmp_path, "next", "x") == ["1"]  # anew
    ok(tmp_path, "create", "T", "{k}-{counter}")
    ok(tmp_path, "next", "T", "k=a")
    assert ok(tmp_path, "delete", "T") == []
    assert ok(tmp_path, "list") == ["x\ttable\tstart=1 step=1\tlast=1"]


def test_delete_refuses_a_parent_in_use(tmp_path: Path) -> None:
    ok(tmp_path, "create", "PL", "{year}: Playlist {counter}")
    ok(tmp_path, "create", "AF", "{PL} > Audio File {counter:02d}")
    stderr = fails(tmp_path, "delete", "PL")
    assert stderr == (
        "mortar-seq: template 'PL' is the parent of 'AF': delete the children first\n"
    )
    assert ok(tmp_path, "next", "PL", "year=2015") == ["2015: Playlist 1"]  # still there
    assert ok(tmp_path, "delete", "AF") == ok(tmp_path, "delete", "PL") == []


def test_version_and_python_m(tmp_path: Path) -> None:
    assert ok(tmp_path, "--version") == [f"mortar-seq {__version__}"]
    environment = {key: value for key, value in os.environ.items() if key != "MORTAR_SEQ_URL"}

    def module(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mortar_seq", *args]
        return subprocess.run(
            command, cwd=tmp_path, env=environment, capture_output=True, text=True
        )

    ok(tmp_path, "create", "x")
    done = module("next", "x", "-n", "2")
    assert (done.returncode, done.stdout, done.stderr) == (0, "1\n2\n", "")


def test_url_after_the_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    ok(tmp_path, "create", "x", "--start", "5", "--url", url)
    assert ok(tmp_path, "next", "x", "--url", url) == ["5"]
    assert ok(tmp_path, "--url", url, "last", "x") == ["5"]
    assert not (tmp_path / "mortar_seq.sqlite").exists()


def test_help_tells_what_count_means(tmp_path: Path) -> None:
    assert "how many values to take" in " ".join(ok(tmp_path, "next", "--help"))


def test_list_json(tmp_path: Path) -> None:
    ok(tmp_path, "create", "a", "--reset", "9")
    ok(tmp_path, "create", "ids", "--pooled")
    ok(tmp_path, "next", "ids")
    ok(tmp_path, "create", "PL", "{year}: Playlist {counter}")
    ok(tmp_path, "create", "AF", "{PL} > {counter:02d}")
    ok(tmp_path, "next", "PL", "year=2015", "-n", "2")
    ok(tmp_path, "next", "PL", "year=2016")
    ok(tmp_path, "next", "AF", "PL=2015: Playlist 2")
    listed = json.loads("\n".join(ok(tmp_path, "list", "--json")))
    assert listed == [
        {
            "name": "AF",
            "kind": "table",
            "settings": {"start": 1, "step": 1},
            "pattern": "{PL} > {counter:02d}",
            "parent": "PL",
            "last": None,
            "counters": {"2015: Playlist 2 > {counter:02d}": "2015: Playlist 2 > 01"},
        },
        {
            "name": "PL",
            "kind": "table",
            "settings": {"start": 1, "step": 1},
            "pattern": "{year}: Playlist {counter}",
            "parent": None,
            "last": None,
            "counters": {
                "2015: Playlist {counter}": "2015: Playlist 2",
                "2016: Playlist {counter}": "2016: Playlist 1",
            },
        },
        {
            "name": "a",
            "kind": "table",
            "settings": {"start": 1, "step": 1, "reset": 9},
            "pattern": None,
            "parent": None,
            "last": None,
            "counters": None,
        },
        {
            "name": "ids",
            "kind": "pooled",
            "settings": {"start": 1, "step": 1, "reset": None},
            "pattern": None,
            "parent": None,
            "last": 1000,
            "counters": None,
        },
    ]


def test_last_of_a_pooled_sequence_is_the_end_of_its_last_block(tmp_path: Path) -> None:
    ok(tmp_path, "create", "ids", "--pooled")
    assert ok(tmp_path, "last", "ids") == []
    assert ok(tmp_path, "next", "ids", "-n", "2") == ["1", "2"]
    assert ok(tmp_path, "last", "ids") == ["1000"]  # no value beyond it was handed out
    assert ok(tmp_path, "next", "ids") == ["1001"]
    assert ok(tmp_path, "last", "ids") == ["2000"]
    ok(tmp_path, "create", "T", "{k}-{counter}", "--pooled")
    ok(tmp_path, "next", "T", "k=a")
    assert ok(tmp_path, "last", "T", "k=a") == ["a-1000"]
    assert ok(tmp_path, "last", "T", "k=b") == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://nobody:s3cret@127.0.0.1:1/none",  # nothing listens there
        "postgresql+pg8000://nobody:s3cret@127.0.0.1:1/none",  # no such driver installed
        "postgresql+psycopg://nobody:s3cret@127.0.0.1:port/none",  # cannot be parsed
    ],
)
def test_passwords_are_masked(tmp_path: Path, url: str) -> None:
    stderr = fails(tmp_path, "--url", url, "list")
    assert "s3cret" not in stderr
    assert stderr.count("\n") == 1
    if "port" not in url:
        assert "nobody:***@127.0.0.1:1/none" in stderr


@pytest.mark.parametrize("command", [["list"], ["last", "x"], ["next", "x"], ["delete", "x"]])
def test_only_create_makes_a_database_file(tmp_path: Path, command: list[str]) -> None:
    stderr = fails(tmp_path, *command)
    assert stderr == (
        "mortar-seq: no database file 'mortar_seq.sqlite' here ('mortar-seq create' makes one)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_locked_sqlite_says_why(tmp_path: Path) -> None:
    ok(tmp_path, "create", "x")
    holder = sqlite3.connect(tmp_path / "mortar_seq.sqlite", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as another process's transaction
        stderr = fails(tmp_path, "next", "x", "--wait", "0.2")
        assert stderr.startswith("mortar-seq: database error: database is locked (")
        assert "another process holds the database's write lock" in stderr
        assert "--wait SECONDS" in stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ok(tmp_path, "next", "x") == ["1"]


@pytest.mark.parametrize(
    ("url", "driver", "extra"),
    [
        ("postgresql+pg8000://nobody@127.0.0.1:1/none", "pg8000", "mortar_seq[postgresql]"),
        ("postgresql+psycopg2://nobody@127.0.0.1:1/none", "psycopg2", "mortar_seq[postgresql]"),
        ("mysql+mysqldb://root@127.0.0.1:1/none", "MySQLdb", "mortar_seq[mariadb]"),
    ],
)
def test_a_missing_driver_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, driver: str, extra: str
) -> None:
    # Missing as in a new process, even where a test before made it importable here
    # (test_importing_django's pymysql.install_as_MySQLdb()).
    monkeypatch.setitem(sys.modules, driver, None)
    stderr = fails(tmp_path, "--url", url, "list")
    assert "driver is missing" in stderr
    assert f"pip install '{extra}'" in stderr


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (["x"], ["x", "{y}-{counter}"], "'x' already exists as a sequence"),
        (["x", "{y}-{counter}"], ["x"], "'x' already exists as a template"),
    ],
)
def test_creating_the_other_kind_says_what_exists(
    tmp_path: Path, first: list[str], second: list[str], message: str
) -> None:
    ok(tmp_path, "create", *first)
    assert fails(tmp_path, "create", *second) == f"mortar-seq: {message}\n"


ledger = sa.Table(
    "cli_edge_ledger",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("year", sa.Integer),
    sa.Column("day", sa.Date),
    sa.Column("code", sa.Text),
    sa.Column("amount", sa.Float),
    sa.Column("number", sa.BigInteger),
)


@pytest.fixture
def ledger_url(engine: Engine) -> Iterator[str]:
    """The URL of a database (each of them) holding the ledger table, empty."""
    ledger.create(engine)
    try:
        yield engine.url.render_as_string(hide_password=False)
    finally:
        ledger.drop(engine)


def audit_ledger(
    capsys: pytest.CaptureFixture[str], url: str, *args: str
) -> tuple[int, list[str], str]:
    """Run ``audit cli_edge_ledger ARGS`` in this process: status, stdout's lines, stderr."""
    status = main(["--url", url, "audit", "cli_edge_ledger", *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


@pytest.mark.parametrize(("column", "kind"), [("code", "TEXT"), ("amount", "FLOAT")])
def test_audit_of_a_column_that_is_not_of_integers(
    ledger_url: str, capsys: pytest.CaptureFixture[str], column: str, kind: str
) -> None:
    status, out, err = audit_ledger(capsys, ledger_url, column)
    assert (status, out) == (1, [])
    assert err.startswith(f"mortar-seq: cli_edge_ledger.{column} holds ")
    assert err.endswith(": only a column of integers can be audited\n")
    assert err.count("\n") == 1


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the only one that stores it
def test_audit_of_a_stored_value_that_is_not_an_integer(
    engine: Engine, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with engine.begin() as connection:
        connection.execute(ledger.insert(), [{"number": n} for n in (1, 2, "n/a")])
    status, out, err = audit_ledger(capsys, ledger_url, "number")
    assert (status, out) == (1, [])
    assert err == "mortar-seq: cli_edge_ledger.number holds 'n/a': only integers can be audited\n"


def test_audit_where_key_takes_the_columns_type(
    engine: Engine, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    day = dt.date(2026, 3, 1)
    with engine.begin() as connection:
        rows = [(2025, 1), (2025, 2), (2026, 1), (2026, 2), (2026, 4)]
        connection.execute(ledger.insert(), [{"year": y, "number": n, "day": day} for y, n in rows])
    found = audit_ledger(capsys, ledger_url, "number", "--where-key", "year=2025")
    assert found == (0, ["count\t2", "first\t1", "last\t2"], "")
    status, out, err = audit_ledger(
        capsys, ledger_url, "number", "--where-key=year=2026", "--where-key=day=2026-03-01"
    )
    assert (status, out) == (1, ["count\t3", "first\t1", "last\t4", "gap\t3..3"])
    assert "cli_edge_ledger.number is not clean: 1 gap(s)" in err
    status, out, err = audit_ledger(capsys, ledger_url, "number", "--where-key", "year=MMXXV")
    assert (status, out) == (1, [])
    assert err == "mortar-seq: --where-key year=MMXXV: cli_edge_ledger.year holds int values\n"


def test_audit_of_no_rows_is_not_clean(
    engine: Engine, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert audit_ledger(capsys, ledger_url, "number") == (
        1,
        ["count\t0", "first\t", "last\t"],
        "mortar-seq: cli_edge_ledger.number: no rows to audit\n",
    )
    with engine.begin() as connection:
        connection.execute(ledger.insert(), [{"year": 2025, "number": 1}])
    status, out, err = audit_ledger(capsys, ledger_url, "number", "--where-key", "year=2024")
    assert (status, out[0], err) == (
        1,
        "count\t0",
        "mortar-seq: cli_edge_ledger.number: no rows to audit where year=2024\n",
    )
    assert audit_ledger(capsys, ledger_url, "number")[0] == 0
